// tests/test_model.c: configurations against docs/algorithm.md 1.2 (parameter counts and GMACs of every
// preset), preset-name parsing, validation, and DiT's initialisation (docs/algorithm.md 1.9) against its
// closed-form distributions.
#include <string.h>

#include "model/flops.h"
#include "model/init.h"
#include "model/tensors.h"
#include "tests/check.h"

typedef struct {
    const char *name;
    size_t params, trainable;
    double gmacs, attention, mlp; // forward GMACs; per-block GMACs of attention and MLP
} PresetRow;

// docs/algorithm.md 1.2 (parameters include the frozen pos_embed; 675,129,632 is what DiT's train.py logs).
static const PresetRow spec_rows[] = {
    {"DiT-S/2", 32963360, 32865056, 6.056, 0.201326592, 0.301989888},
    {"DiT-S/4", 32945024, 0, 1.413, 0.040894464, 0.075497472},
    {"DiT-S/8", 33148160, 0, 0.358, 0.009633792, 0.018874368},
    {"DiT-B/2", 130512416, 130315808, 23.005, 0.704643072, 1.207959552},
    {"DiT-B/4", 130475648, 0, 5.565, 0.157286400, 0.301989888},
    {"DiT-B/8", 130881536, 0, 1.418, 0.038141952, 0.075497472},
    {"DiT-L/2", 458102816, 457840672, 80.698, 1.207959552, 2.147483648},
    {"DiT-L/4", 458053760, 0, 19.696, 0.276824064, 0.536870912},
    {"DiT-L/8", 458594816, 0, 5.011, 0.067633152, 0.134217728},
    {"DiT-XL/2", 675129632, 674834720, 118.621, 1.509949440, 2.717908992},
    {"DiT-XL/4", 675074432, 0, 29.044, 0.349175808, 0.679477248},
    {"DiT-XL/8", 675683072, 0, 7.392, 0.085524480, 0.169869312},
};

static void test_presets(void) {
    for (size_t i = 0; i < sizeof(spec_rows) / sizeof(spec_rows[0]); i++) {
        const PresetRow *r = &spec_rows[i];
        DitConfig c = dit_config_default();
        char label[64];
        snprintf(label, sizeof(label), "preset.%s", r->name);
        if (dit_config_apply_preset(&c, r->name)) {
            check(0, label, "not recognised");
            continue;
        }
        BlockMacs b = dit_block_macs(&c);
        size_t params = dit_param_count(&c), trainable = dit_trainable_param_count(&c);
        double gmacs = dit_forward_macs(&c) / 1e9;
        int ok = params == r->params && (r->trainable == 0 || trainable == r->trainable) &&
                 fabs(gmacs - r->gmacs) < 5e-4 && fabs(b.attention / 1e9 - r->attention) < 5e-10 &&
                 fabs(b.mlp / 1e9 - r->mlp) < 5e-10 && !strcmp(dit_config_preset_name(&c), r->name);
        check(ok, label, "params %zu trainable %zu GMACs %.3f block %.9f / %.9f", params, trainable, gmacs,
              b.attention / 1e9, b.mlp / 1e9);
    }
    DitConfig c = dit_config_default();
    c.input_size = 64; // 512x512 images: DiT paper 524.6 G, docs/algorithm.md 1.2 derives 524.5
    check(fabs(dit_forward_macs(&c) / 1e9 - 524.5) < 0.05, "preset.DiT-XL/2_512", "%.3f GMACs",
          dit_forward_macs(&c) / 1e9);
}

// docs/algorithm.md 1.2: router parameters per model size (any patch) and the DyDiT total at patch 2.
static void test_dydit_counts(void) {
    const struct {
        const char *name;
        size_t routers, total;
    } rows[] = {{"DiT-S/2", 157380, 33120740},
                {"DiT-B/2", 646548, 131158964},
                {"DiT-L/2", 2313960, 460416776},
                {"DiT-XL/2", 3295012, 678424644}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        DitConfig c = dit_config_default();
        dit_config_apply_preset(&c, rows[i].name);
        size_t plain = dit_param_count(&c);
        c.dynamic = 1;
        size_t total = dit_param_count(&c);
        char label[64];
        snprintf(label, sizeof(label), "preset.Dy%s", rows[i].name);
        check(total == rows[i].total && total - plain == rows[i].routers, label, "routers %zu total %zu",
              total - plain, total);
    }
    DitConfig c = dit_config_default(); // docs/algorithm.md 5.5: XL/2 token routers 28 x 256 x (1152 x 72 + 72)
    c.dynamic = 1;
    double token = 28.0 * 256 * (1152.0 * 72 + 72), width = 28.0 * 2 * 15 * 1152;
    check(fabs(dydit_router_macs(&c) - (token + width)) < 1, "preset.DyDiT-XL/2_router_macs", "%.4f GMACs",
          dydit_router_macs(&c) / 1e9);
}

static void test_names_and_validation(void) {
    const char *good[] = {"DiT-XL/2", "dit-xl2", "XL/2", "dit_b_4", "DiT-S/8"};
    int ok = 1;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        DitConfig c = dit_config_default();
        ok &= dit_config_apply_preset(&c, good[i]) == 0;
    }
    check(ok, "config.preset_spellings", "DiT-XL/2, dit-xl2, XL/2, dit_b_4");
    const char *bad[] = {"DiT-XL/3", "DiT-M/2", "XL", "DiT-XL/22", ""};
    ok = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        DitConfig c = dit_config_default();
        ok &= dit_config_apply_preset(&c, bad[i]) == -1;
    }
    check_true(ok, "config.bad_presets_rejected");
    char why[256];
    DitConfig c = dit_config_default();
    c.heads = 5;
    check(dit_config_validate(&c, why, sizeof(why)) == -1 && strstr(why, "divisible"), "config.heads_must_divide", "%s",
          why);
    c = dit_config_default();
    c.input_size = 30;
    c.patch = 4;
    check(dit_config_validate(&c, why, sizeof(why)) == -1 && strstr(why, "multiple"), "config.patch_must_divide", "%s",
          why);
}

// Checks a tensor against U(-a, a): every value inside, mean ~ 0, variance ~ a^2 / 3.
static int is_uniform(const float *x, size_t n, double a) {
    double s = 0, s2 = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
        mx = fmax(mx, fabs(x[i]));
    }
    double mean = s / n, var = s2 / n - mean * mean, want = a * a / 3;
    // standard errors: mean a/sqrt(3n), variance ~ 0.9 a^2 / (3 sqrt(n)); allow 5 of them
    return mx <= a && fabs(mean) < 5 * a / sqrt(3.0 * n) && fabs(var - want) < 5 * 0.9 * want / sqrt((double)n);
}

static int is_normal(const float *x, size_t n, double sd) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    double mean = s / n, var = s2 / n - mean * mean;
    return fabs(mean) < 5 * sd / sqrt((double)n) && fabs(var / (sd * sd) - 1) < 5 * sqrt(2.0 / n);
}

static int all_zero(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f) return 0;
    return 1;
}

static void test_init(void) {
    DitConfig c = dit_config_default();
    dit_config_apply_preset(&c, "DiT-S/4");
    c.input_size = 16;
    TensorTable t = tensor_table_build(&c);
    float *w = malloc(t.total * sizeof(float));
    dit_init_host(&c, &t, w, 11);
    int xavier_ok = 1, zero_ok = 1, normal_ok = 1;
    for (int i = 0; i < t.count; i++) {
        const TensorInfo *e = &t.tensors[i];
        const float *x = w + e->offset;
        if (!strcmp(e->name, "pos_embed")) continue;
        if (strstr(e->name, ".bias") || strstr(e->name, "adaLN_modulation") || strstr(e->name, "final_layer.linear")) {
            zero_ok &= all_zero(x, e->numel);
        } else if (strstr(e->name, "y_embedder") || strstr(e->name, "t_embedder")) {
            normal_ok &= is_normal(x, e->numel, 0.02);
        } else { // Linear and patch-conv weights: fan_in = numel / rows, fan_out = rows
            double fan_out = (double)e->shape[0], fan_in = (double)e->numel / fan_out;
            xavier_ok &= is_uniform(x, e->numel, sqrt(6.0 / (fan_in + fan_out)));
        }
    }
    check(xavier_ok, "init.xavier_uniform", "qkv, proj, fc1, fc2, patch conv within +-sqrt(6/(fan_in+fan_out))");
    check_true(zero_ok, "init.zero_biases_adaln_final");
    check_true(normal_ok, "init.normal_0.02_embedders");
    // pos_embed against the closed form of docs/algorithm.md 1.4, element by element
    const TensorInfo *pe = tensor_table_find(&t, "pos_embed");
    int grid = c.input_size / c.patch, D = c.hidden, quarter = D / 4;
    double worst = 0;
    for (int i = 0; i < grid; i++)
        for (int j = 0; j < grid; j++)
            for (int k = 0; k < quarter; k++) {
                double omega = pow(10000.0, -(double)k / quarter);
                const float *row = w + pe->offset + ((size_t)i * grid + j) * D;
                worst = fmax(worst, fabs(row[k] - sin(j * omega)));
                worst = fmax(worst, fabs(row[quarter + k] - cos(j * omega)));
                worst = fmax(worst, fabs(row[2 * quarter + k] - sin(i * omega)));
                worst = fmax(worst, fabs(row[3 * quarter + k] - cos(i * omega)));
            }
    check(worst < 1e-7, "init.pos_embed_sincos", "column first, sin first: max err %.2e", worst);
    float *w2 = malloc(t.total * sizeof(float));
    dit_init_host(&c, &t, w2, 11);
    check_true(memcmp(w, w2, t.total * sizeof(float)) == 0, "init.deterministic");
    free(w);
    free(w2);
    tensor_table_free(&t);
}

int main(void) {
    test_presets();
    test_dydit_counts();
    test_names_and_validation();
    test_init();
    return check_exit();
}
