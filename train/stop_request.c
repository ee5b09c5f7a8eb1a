#include "train/stop_request.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t requested; // the first signal's number, 0 before

static void on_signal(int signo) {
    if (requested) { // the second: the default action (termination) now
        signal(signo, SIG_DFL);
        raise(signo);
        return;
    }
    requested = signo;
}

void stop_request_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; // interrupted reads and writes resume: the step in flight completes
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int stop_requested(int *signo) {
    if (signo) *signo = requested;
    return requested != 0;
}
