#include "common/temp_files.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

// The registered names, in slots a signal handler can read at any moment: a slot is taken and
// given back atomically, and a name, once published, is never freed (a handler on another thread
// may be reading it; a command has a handful of temporaries).
enum { TEMP_FILES_MAX = 64 };
static _Atomic(char *) slots[TEMP_FILES_MAX];
static atomic_flag cleanup_installed = ATOMIC_FLAG_INIT;

static void remove_registered(void) {
    for (int i = 0; i < TEMP_FILES_MAX; i++) {
        char *path = atomic_load(&slots[i]);
        if (path) unlink(path);
    }
}

// A signal that would end the process removes the temporaries first, then ends it as it would have.
static void on_fatal_signal(int sig) {
    remove_registered();
    signal(sig, SIG_DFL);
    raise(sig);
}

// At exit, and on the signals whose default action ends the process; a signal the program handles
// itself or ignores (training's graceful stop, nohup) keeps its disposition.
static void install_cleanup(void) {
    if (atomic_flag_test_and_set(&cleanup_installed)) return;
    atexit(remove_registered);
    const int fatal[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
        struct sigaction old, cleanup = {.sa_handler = on_fatal_signal};
        if (sigaction(fatal[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL) sigaction(fatal[i], &cleanup, NULL);
    }
}

static void remember(const char *path) {
    install_cleanup();
    char *copy = xstrdup(path);
    for (int i = 0; i < TEMP_FILES_MAX; i++) {
        char *empty = NULL;
        if (atomic_compare_exchange_strong(&slots[i], &empty, copy)) return;
    }
    die("internal: more than %d temporary files at once", TEMP_FILES_MAX);
}

static void forget(const char *path) {
    for (int i = 0; i < TEMP_FILES_MAX; i++) {
        char *held = atomic_load(&slots[i]);
        if (held && !strcmp(held, path) && atomic_compare_exchange_strong(&slots[i], &held, NULL)) return;
    }
}

char *temp_file_create(const char *path, int *fd) {
    char *tmp = xasprintf("%s.tmp-XXXXXX", path);
    *fd = mkstemp(tmp);
    if (*fd < 0) {
        int e = errno;
        free(tmp);
        errno = e;
        return NULL;
    }
    fchmod(*fd, 0644); // what the final file would get from open(); mkstemp gives 0600
    remember(tmp);
    return tmp;
}

int temp_file_commit(const char *tmp, const char *path) {
    if (rename(tmp, path)) return -1;
    forget(tmp);
    return 0;
}

void temp_file_discard(const char *tmp) {
    unlink(tmp);
    forget(tmp);
}
