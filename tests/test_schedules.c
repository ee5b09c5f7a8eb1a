// tests/test_schedules.c: DyDiT's schedules against their definitions (docs/algorithm.md 4.2): the FLOPs target
// is 1 for the first 100 steps, then falls linearly to lambda over the warm-up; the temperature
// moves linearly from tau to tau_end over the run.
#include "tests/check.h"
#include "train/trainer.h"

int main(void) {
    DyditTraining d = {.lambda = 0.5, .lambda_warmup = 1000, .lambda_hold = -1, .tau = 5.0, .tau_end = 1.0};
    // (step, expected): the override below 100, the line 1 - 0.5 step / 1000 up to 1000, then 0.5
    const double cases[][2] = {{0, 1.0}, {99, 1.0}, {100, 0.95}, {500, 0.75}, {1000, 0.5}, {1001, 0.5}, {30000, 0.5}};
    int ok = 1;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ok &= fabs(dydit_target_at(&d, (long)cases[i][0]) - cases[i][1]) < 1e-12;
    check(ok, "schedule.target_warmup", "1 below step 100, 0.95 at 100, 0.75 at 500, 0.5 from 1000");
    d.lambda_warmup = 0;
    check_true(dydit_target_at(&d, 99) == 1.0 && dydit_target_at(&d, 100) == 0.5, "schedule.target_without_warmup");
    d.lambda = 0.7;
    d.lambda_warmup = 5000;
    check(fabs(dydit_target_at(&d, 2500) - 0.85) < 1e-12, "schedule.target_lambda_0.7", "%.4f at 2500",
          dydit_target_at(&d, 2500));
    check(dydit_tau_at(&d, 0, 11) == 5.0 && fabs(dydit_tau_at(&d, 5, 11) - 3.0) < 1e-12 &&
              dydit_tau_at(&d, 10, 11) == 1.0,
          "schedule.tau_linear", "5 -> 3 -> 1 over 11 steps");
    d.tau_end = d.tau;
    check_true(dydit_tau_at(&d, 7, 11) == 5.0, "schedule.tau_constant");

    // Hold 1 for 100 steps, then 1 - 0.5 (step - 100) / 100 down to 0.5 at step 200: the quickstart's
    // schedule, where the official one would jump from 1 to 0.5 at step 100.
    DyditTraining h = {.lambda = 0.5, .lambda_warmup = 100, .lambda_hold = 100};
    const double held[][2] = {{0, 1.0}, {99, 1.0}, {100, 1.0}, {101, 0.995}, {150, 0.75}, {200, 0.5}, {5000, 0.5}};
    ok = 1;
    for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++)
        ok &= fabs(dydit_target_at(&h, (long)held[i][0]) - held[i][1]) < 1e-12;
    check(ok, "schedule.hold_then_ramp", "1 to step 100, 0.995 at 101, 0.75 at 150, 0.5 from 200");
    double largest_step = 0;
    for (long s = 1; s < 300; s++) {
        double jump = fabs(dydit_target_at(&h, s) - dydit_target_at(&h, s - 1));
        largest_step = jump > largest_step ? jump : largest_step;
    }
    check(fabs(largest_step - 0.005) < 1e-12, "schedule.hold_then_ramp_is_smooth", "largest change per step %.4g",
          largest_step);
    d.lambda = 0.5;
    d.lambda_warmup = 100;
    check_true(dydit_target_at(&d, 99) == 1.0 && dydit_target_at(&d, 100) == 0.5, "schedule.official_jumps_at_100");
    h.lambda_hold = 0;
    check_true(dydit_target_at(&h, 0) == 1.0 && fabs(dydit_target_at(&h, 50) - 0.75) < 1e-12,
               "schedule.hold_0_ramps_from_the_start");
    return check_exit();
}
