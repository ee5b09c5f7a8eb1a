#include "model/diffusion.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "kernels/ops.h"
#include "kernels/philox.h"

static double *table_alloc(int T) { return xmalloc(sizeof(double) * (size_t)T); }

DiffusionSchedule diffusion_schedule_from_betas(const double *betas, int T) {
    // T >= 2 because the clipped posterior log variance borrows entry 1 for entry 0.
    if (T < 2) die("diffusion schedule needs at least 2 steps, got %d", T);
    for (int k = 0; k < T; k++)
        if (!(betas[k] > 0.0 && betas[k] <= 1.0)) die("diffusion beta %d is %g, want (0, 1]", k, betas[k]);

    DiffusionSchedule s = {.T = T};
    s.timestep_map = xmalloc(sizeof(int) * (size_t)T);
    s.betas = table_alloc(T);
    s.alphas_cumprod = table_alloc(T);
    s.alphas_cumprod_prev = table_alloc(T);
    s.sqrt_alphas_cumprod = table_alloc(T);
    s.sqrt_one_minus_alphas_cumprod = table_alloc(T);
    s.sqrt_recip_alphas_cumprod = table_alloc(T);
    s.sqrt_recipm1_alphas_cumprod = table_alloc(T);
    s.posterior_variance = table_alloc(T);
    s.posterior_log_variance_clipped = table_alloc(T);
    s.posterior_mean_coef1 = table_alloc(T);
    s.posterior_mean_coef2 = table_alloc(T);
    s.log_betas = table_alloc(T);

    double abar = 1.0;
    for (int k = 0; k < T; k++) {
        double beta = betas[k], alpha = 1.0 - beta, abar_prev = abar;
        abar *= alpha; // sequential, like numpy.cumprod
        s.timestep_map[k] = k;
        s.betas[k] = beta;
        s.alphas_cumprod[k] = abar;
        s.alphas_cumprod_prev[k] = abar_prev;
        s.sqrt_alphas_cumprod[k] = sqrt(abar);
        s.sqrt_one_minus_alphas_cumprod[k] = sqrt(1.0 - abar);
        s.sqrt_recip_alphas_cumprod[k] = sqrt(1.0 / abar);
        s.sqrt_recipm1_alphas_cumprod[k] = sqrt(1.0 / abar - 1.0);
        s.posterior_variance[k] = beta * (1.0 - abar_prev) / (1.0 - abar);
        s.posterior_mean_coef1[k] = beta * sqrt(abar_prev) / (1.0 - abar);
        s.posterior_mean_coef2[k] = (1.0 - abar_prev) * sqrt(alpha) / (1.0 - abar);
        s.log_betas[k] = log(beta);
    }
    // beta~_0 = 0: its log is -inf, so step 0 borrows the variance of step 1.
    for (int k = 0; k < T; k++) s.posterior_log_variance_clipped[k] = log(s.posterior_variance[k > 0 ? k : 1]);
    return s;
}

DiffusionSchedule diffusion_schedule_linear(int T) {
    if (T < 2) die("diffusion schedule needs at least 2 steps, got %d", T);
    double scale = 1000.0 / T, start = scale * 0.0001, end = scale * 0.02;
    double step = (end - start) / (T - 1);
    double *betas = table_alloc(T);
    for (int k = 0; k < T; k++) betas[k] = (double)k * step + start;
    betas[T - 1] = end;
    DiffusionSchedule s = diffusion_schedule_from_betas(betas, T);
    free(betas);
    return s;
}

void diffusion_schedule_free(DiffusionSchedule *s) {
    double **tables[] = {&s->betas,
                         &s->alphas_cumprod,
                         &s->alphas_cumprod_prev,
                         &s->sqrt_alphas_cumprod,
                         &s->sqrt_one_minus_alphas_cumprod,
                         &s->sqrt_recip_alphas_cumprod,
                         &s->sqrt_recipm1_alphas_cumprod,
                         &s->posterior_variance,
                         &s->posterior_log_variance_clipped,
                         &s->posterior_mean_coef1,
                         &s->posterior_mean_coef2,
                         &s->log_betas};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        free(*tables[i]);
        *tables[i] = NULL;
    }
    free(s->timestep_map);
    s->timestep_map = NULL;
    s->T = 0;
}

// Parses a positive decimal count at *p, advancing p.
static int parse_count(const char **p, long *out) {
    if (!isdigit((unsigned char)**p)) return -1;
    char *end;
    *out = strtol(*p, &end, 10);
    *p = end;
    return *out > 0 ? 0 : -1;
}

int diffusion_space_timesteps(int T, const char *spec, int *steps, char *why, int why_size) {
    // A set of kept steps: sections may round two strides onto the same step.
    unsigned char *kept = xcalloc((size_t)T, 1);
    long *sections = NULL;
    int count = -1;
    if (strncmp(spec, "ddim", 4) == 0) {
        const char *p = spec + 4;
        long n;
        if (parse_count(&p, &n) != 0 || *p) {
            snprintf(why, (size_t)why_size, "timestep respacing '%s': want ddimN with N > 0", spec);
            goto done;
        }
        for (int stride = 1; stride < T; stride++) {
            if ((T + stride - 1) / stride != n) continue; // len(range(0, T, stride))
            for (int k = 0; k < T; k += stride) kept[k] = 1;
            count = 0;
            break;
        }
        if (count < 0) {
            snprintf(why, (size_t)why_size, "timestep respacing '%s': no integer stride gives %ld steps of %d", spec, n,
                     T);
            goto done;
        }
    } else {
        int nsec = 0;
        sections = xmalloc(sizeof(long) * (strlen(spec) / 2 + 1)); // at most one count per two characters
        for (const char *p = spec;;) {
            if (parse_count(&p, &sections[nsec]) != 0 || (*p && *p != ',')) {
                snprintf(why, (size_t)why_size, "timestep respacing '%s': want N, N1,N2,... or ddimN", spec);
                goto done;
            }
            nsec++;
            if (!*p++) break;
        }
        int start = 0;
        for (int i = 0; i < nsec; i++) {
            int size = T / nsec + (i < T % nsec);
            if (sections[i] > size) {
                snprintf(why, (size_t)why_size, "timestep respacing '%s': section %d has %d steps, cannot keep %ld",
                         spec, i, size, sections[i]);
                goto done;
            }
            // Python's float arithmetic: stride accumulated in double, round() half to even
            // (nearbyint in the default rounding mode).
            double stride = sections[i] <= 1 ? 1.0 : (double)(size - 1) / (double)(sections[i] - 1), cur = 0.0;
            for (long j = 0; j < sections[i]; j++) {
                kept[start + (int)nearbyint(cur)] = 1;
                cur += stride;
            }
            start += size;
        }
        count = 0;
    }
    for (int k = 0; k < T; k++)
        if (kept[k]) steps[count++] = k;
    if (count < 2) {
        snprintf(why, (size_t)why_size, "timestep respacing '%s' keeps %d step, need at least 2", spec, count);
        count = -1;
    }
done:
    free(sections);
    free(kept);
    return count;
}

DiffusionSchedule diffusion_schedule_respace(const DiffusionSchedule *base, const int *steps, int count) {
    double *betas = table_alloc(count), last = 1.0;
    for (int k = 0; k < count; k++) {
        if (steps[k] < 0 || steps[k] >= base->T || (k > 0 && steps[k] <= steps[k - 1]))
            die("respaced steps must increase inside [0, %d)", base->T);
        double abar = base->alphas_cumprod[steps[k]];
        betas[k] = 1.0 - abar / last;
        last = abar;
    }
    DiffusionSchedule s = diffusion_schedule_from_betas(betas, count);
    free(betas);
    for (int k = 0; k < count; k++) s.timestep_map[k] = base->timestep_map[steps[k]];
    return s;
}

void diffusion_gather_coefs(const DiffusionSchedule *s, const int32_t *t, int B, float *coef) {
    for (int b = 0; b < B; b++) {
        int k = t[b];
        if (k < 0 || k >= s->T) die("timestep %d outside the schedule's [0, %d)", k, s->T);
        float *c = coef + (size_t)b * COEF_COUNT;
        c[COEF_SQRT_ALPHA_BAR] = (float)s->sqrt_alphas_cumprod[k];
        c[COEF_SQRT_ONE_MINUS_ALPHA_BAR] = (float)s->sqrt_one_minus_alphas_cumprod[k];
        c[COEF_SQRT_RECIP_ALPHA_BAR] = (float)s->sqrt_recip_alphas_cumprod[k];
        c[COEF_SQRT_RECIPM1_ALPHA_BAR] = (float)s->sqrt_recipm1_alphas_cumprod[k];
        c[COEF_POSTERIOR_MEAN_X0] = (float)s->posterior_mean_coef1[k];
        c[COEF_POSTERIOR_MEAN_XT] = (float)s->posterior_mean_coef2[k];
        c[COEF_POSTERIOR_LOGVAR] = (float)s->posterior_log_variance_clipped[k];
        c[COEF_LOG_BETA] = (float)s->log_betas[k];
        c[COEF_ALPHA_BAR] = (float)s->alphas_cumprod[k];
        c[COEF_ALPHA_BAR_PREV] = (float)s->alphas_cumprod_prev[k];
        c[COEF_IS_FIRST_STEP] = k == 0 ? 1.0f : 0.0f;
    }
}

void diffusion_sample_timesteps(int32_t *t, int B, int T, uint64_t seed, uint32_t step, uint32_t sample0) {
    for (int b = 0; b < B; b++)
        t[b] = (int32_t)rng_below(rng_u32(seed, RNG_TIMESTEP, step, sample0 + (uint32_t)b, 0), (uint32_t)T);
}

void diffusion_sample_timesteps_stratified(int32_t *t, int B, int T, uint64_t seed, uint32_t step, uint32_t sample0) {
    uint32_t quarter = (uint32_t)T / 4;
    for (int b = 0; b < B; b++) {
        uint32_t g = sample0 + (uint32_t)b;
        t[b] = (int32_t)((g % 4) * quarter + rng_below(rng_u32(seed, RNG_TIMESTEP, step, g, 0), quarter));
    }
}
