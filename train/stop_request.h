// train/stop_request.h: a graceful stop. Job schedulers pre-empt with SIGTERM (and a grace
// period), mpirun forwards SIGUSR1, a user presses Ctrl-C, and cluster jobs end at a wall-clock
// limit: training then finishes its current step, writes a checkpoint and exits 0, so no work is
// lost. Repeated signals change nothing: launchers signal a rank more than once (the scheduler
// signals every process, then mpirun forwards its own), and ending at the second one would lose
// the checkpoint being written. SIGKILL (or Ctrl-\, SIGQUIT) still ends a process at once.
#pragma once

// Why a run stops: the index of a reason, in the order they are named when several arrive.
typedef enum { STOP_SIGTERM, STOP_SIGINT, STOP_SIGUSR1, STOP_TIME_LIMIT, STOP_REASONS } StopReason;

// Installs the handlers of SIGTERM, SIGINT and SIGUSR1 (idempotent).
void stop_request_install(void);
// A stop once `seconds` have passed from now (seconds > 0), checked by stop_requests().
void stop_request_deadline(double seconds);
// reasons[STOP_REASONS]: 1 for each reason that arrived, else 0. Returns 1 when any did.
int stop_requests(double reasons[STOP_REASONS]);
// "SIGTERM", "SIGINT", "SIGUSR1" or "the time limit (--stop-after)".
const char *stop_reason_name(StopReason reason);

// Parses a duration: "3h50m", "90m", "1h30m15s", "45s" or plain seconds ("3600", "0.5").
// Returns 0 and the seconds in *seconds, or -1 when text is not one (or not positive).
int parse_duration(const char *text, double *seconds);
