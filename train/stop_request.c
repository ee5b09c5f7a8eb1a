#include "train/stop_request.h"

#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static volatile sig_atomic_t arrived[STOP_REASONS]; // set by the handlers, never cleared
static double deadline;                             // now_seconds() of the time limit; 0: none

static void on_signal(int signo) {
    switch (signo) {
    case SIGTERM:
        arrived[STOP_SIGTERM] = 1;
        break;
    case SIGINT:
        arrived[STOP_SIGINT] = 1;
        break;
    case SIGUSR1:
        arrived[STOP_SIGUSR1] = 1;
        break;
    }
}

void stop_request_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; // interrupted reads and writes resume: the step in flight completes
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

void stop_request_deadline(double seconds) { deadline = now_seconds() + seconds; }

int stop_requests(double reasons[STOP_REASONS]) {
    int any = 0;
    for (int r = 0; r < STOP_REASONS; r++) {
        reasons[r] = r == STOP_TIME_LIMIT ? deadline > 0 && now_seconds() >= deadline : arrived[r];
        any |= reasons[r] != 0;
    }
    return any;
}

const char *stop_reason_name(StopReason reason) {
    static const char *names[STOP_REASONS] = {"SIGTERM", "SIGINT", "SIGUSR1", "the time limit (--stop-after)"};
    return reason >= 0 && reason < STOP_REASONS ? names[reason] : "?";
}

int parse_duration(const char *text, double *seconds) {
    double plain;
    if (!parse_double(text, &plain)) {
        *seconds = plain;
        return plain > 0 && isfinite(plain) ? 0 : -1;
    }
    static const struct {
        char unit;
        double seconds;
    } units[] = {{'h', 3600}, {'m', 60}, {'s', 1}};
    double total = 0;
    const char *p = text;
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]) && *p; u++) { // h, m, s in this order
        if (!isdigit((unsigned char)*p) && *p != '.') return -1;          // strtod would skip spaces, take signs
        char *end;
        double v = strtod(p, &end);
        if (end == p || *end != units[u].unit) continue; // this unit is absent; try the next
        if (!isfinite(v)) return -1;
        total += v * units[u].seconds;
        p = end + 1;
    }
    if (*p || !(total > 0)) return -1;
    *seconds = total;
    return 0;
}
