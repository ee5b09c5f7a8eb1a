// tests/test_sizes.c: checked 64-bit size arithmetic and the size limits of a configuration: a
// shape whose tokens, activations or parameters overflow is refused before any size is derived,
// and the largest shapes that fit are counted exactly (against sums written out by hand here).
#include <stdint.h>
#include <string.h>

#include "common/util.h"
#include "model/config.h"
#include "model/flops.h"
#include "tests/check.h"

static void test_checked_arithmetic(void) {
    int64_t out = 0;
    int rc = mul_i64(3037000499, 3037000499, &out);
    check(rc == 0 && out == INT64_C(9223372030926249001), "sizes.mul_largest_square", "%lld", (long long)out);
    check_true(mul_i64(3037000500, 3037000500, &out) == -1, "sizes.mul_overflow");
    check_true(mul_i64(INT64_MAX, 2, &out) == -1 && mul_i64(-1, 2, &out) == -1, "sizes.mul_refuses_negative_and_max");
    rc = add_i64(INT64_MAX - 1, 1, &out);
    check(rc == 0 && out == INT64_MAX, "sizes.add_largest", "%lld", (long long)out);
    check_true(add_i64(INT64_MAX, 1, &out) == -1 && add_i64(-5, 1, &out) == -1, "sizes.add_overflow");
}

// A configuration that validate() must refuse, with words in the reason.
static void refused(DitConfig c, const char *words, const char *name) {
    char why[256] = "";
    int rc = dit_config_validate(&c, why, sizeof(why));
    check(rc == -1 && strstr(why, words) != NULL, name, "%s", why);
}

static void test_limits(void) {
    DitConfig c = dit_config_default();
    c.input_size = 65536; // within the field's bound, but 2^32 tokens with patch 1
    c.patch = 1;
    refused(c, "per-sample activations", "sizes.tokens_overflow");
    c = dit_config_default();
    c.input_size = 1000000;
    refused(c, "input size must be in [1, 65536]", "sizes.input_size_bound");
    c = dit_config_default();
    c.num_classes = 2147483647; // num_classes + 1 null row would overflow int
    refused(c, "num_classes must be in [1, 10000000]", "sizes.num_classes_bound");
    c = dit_config_default();
    c.hidden = 65536;
    c.num_classes = 10000000; // a 6.6e11-parameter label table
    refused(c, "parameters", "sizes.parameters_bound");
    c = dit_config_default();
    c.patch = 1073741824;
    c.input_size = 1073741824;
    refused(c, "patch must be in [1, 4096]", "sizes.patch_bound");
    c = dit_config_default();
    c.learn_sigma = 5;
    refused(c, "learn_sigma must be 0 or 1", "sizes.learn_sigma_flag");
    c = dit_config_default();
    c.depth = 1025;
    refused(c, "depth must be in [1, 1024]", "sizes.depth_bound");
}

// The largest token grid that fits (hidden 2, one head: 3 x tokens x 2 activations <= 2^31) is
// accepted, and its parameters are counted without wrapping: the table against a hand count.
static void test_largest_grid(void) {
    DitConfig c = dit_config_default();
    c.depth = 1;
    c.hidden = 2;
    c.heads = 1;
    c.patch = 16;
    c.input_size = 16 * 181; // 181^2 = 32761 tokens: attention probabilities 1.07e9 elements
    c.in_channels = 1;
    c.learn_sigma = 0;
    c.num_classes = 1;
    c.class_dropout = 0;
    c.mlp_ratio = 1;
    c.frequency_size = 2;
    char why[256] = "";
    check(dit_config_validate(&c, why, sizeof(why)) == 0, "sizes.largest_grid_accepted", "%s", why);
    // x_embedder 256 -> 2 (+2), pos_embed 32761 x 2, t_embedder 2 -> 2 -> 2 (+2 +2), y 1 x 2,
    // block: adaLN 2 -> 12 (+12), qkv 2 -> 6 (+6), proj 2 -> 2 (+2), fc1/fc2 2 -> 2 (+2 each),
    // final: adaLN 2 -> 4 (+4), linear 2 -> 256 (+256)
    size_t want =
        (512 + 2) + 65522 + (4 + 2 + 4 + 2) + 2 + (24 + 12 + 12 + 6 + 4 + 2 + 4 + 2 + 4 + 2) + (8 + 4) + (512 + 256);
    check(dit_param_count(&c) == want, "sizes.largest_grid_params", "%zu, by hand %zu", dit_param_count(&c), want);
    c.input_size = 16 * 182; // 33124 tokens: 1.097e9 probabilities, still fine; 16 x 256 is not
    check(dit_config_validate(&c, why, sizeof(why)) == 0, "sizes.grid_182_accepted", "%s", why);
    c.input_size = 16 * 256;
    refused(c, "per-sample activations", "sizes.grid_256_refused");
}

int main(void) {
    test_checked_arithmetic();
    test_limits();
    test_largest_grid();
    return check_exit();
}
