// tests/test_stop_request.c: the stop requests of train/stop_request.h. Durations against their
// values in seconds, malformed ones refused; signals raised in this process are recorded by
// reason, a repeated signal leaves the process running (it used to end it), and a time limit
// reports itself once it has passed and not before.
#include <signal.h>
#include <time.h>

#include "tests/check.h"
#include "train/stop_request.h"

static void check_durations(void) {
    const struct {
        const char *text;
        double seconds;
    } good[] = {{"3h50m", 13800}, {"90m", 5400},  {"45s", 45},  {"1h30m15s", 5415}, {"2h", 7200},
                {"1m30s", 90},    {"3600", 3600}, {"0.5", 0.5}, {"1.5h", 5400}};
    int ok = 1;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        double s = -1;
        ok &= parse_duration(good[i].text, &s) == 0 && s == good[i].seconds;
    }
    check(ok, "stop.durations", "3h50m = 13800 s, 90m, 45s, 1h30m15s, 2h, 1m30s, 3600, 0.5, 1.5h");
    const char *bad[] = {"", "0", "0s", "-5m", "5x", "1m30h", "h", "1h 30m", "3h50", "inf", "nan", "1e999"};
    ok = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double s;
        ok &= parse_duration(bad[i], &s) == -1;
    }
    check(ok, "stop.bad_durations", "empty, zero, negative, unknown unit, units out of order, non-finite");
}

static int arrived(StopReason r) {
    double why[STOP_REASONS];
    stop_requests(why);
    return why[r] != 0;
}

int main(void) {
    check_durations();
    stop_request_install();
    double why[STOP_REASONS];
    check_true(!stop_requests(why), "stop.none_before");
    raise(SIGUSR1);
    check_true(arrived(STOP_SIGUSR1) && !arrived(STOP_SIGTERM), "stop.sigusr1");
    raise(SIGTERM);
    raise(SIGTERM); // a second one must not end the process
    raise(SIGINT);
    check_true(arrived(STOP_SIGTERM) && arrived(STOP_SIGINT), "stop.repeated_signals_survived");
    check_true(!arrived(STOP_TIME_LIMIT), "stop.no_time_limit");
    stop_request_deadline(0.2);
    int early = arrived(STOP_TIME_LIMIT);
    nanosleep(&(struct timespec){.tv_nsec = 300000000}, NULL);
    check(!early && arrived(STOP_TIME_LIMIT), "stop.time_limit", "not at once, after 0.2 s");
    return check_exit();
}
