// train/stop_request.h: a graceful stop on SIGINT or SIGTERM. Job schedulers pre-empt with SIGTERM
// (and a grace period), a user presses Ctrl-C: training then finishes its current step, writes a
// checkpoint and exits 0, so no work is lost. A second signal ends the process at once.
#pragma once

// Installs the handlers (idempotent).
void stop_request_install(void);
// 1 once SIGINT or SIGTERM arrived, else 0; the signal's number in *signo when not NULL.
int stop_requested(int *signo);
