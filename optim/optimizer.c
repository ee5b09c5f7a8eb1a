#include "optim/optimizer.h"

#include <math.h>

OptimConfig optim_config_default(void) {
    OptimConfig c = {
        .lr = 1e-4,
        .beta1 = 0.9,
        .beta2 = 0.999,
        .eps = 1e-8,
        .weight_decay = 0.0,
        .warmup_steps = 0,
        .policy = GRAD_POLICY_NONE,
        .max_grad_norm = 15.0,
        .ema_decay = 0.9999,
    };
    return c;
}

void optim_init(Optimizer *opt, const Ops *ops, const OptimConfig *cfg) {
    opt->ops = ops;
    opt->cfg = *cfg;
    opt->step = 0;
}

double optim_lr_at(const OptimConfig *cfg, long iteration) {
    if (iteration < cfg->warmup_steps) return cfg->lr * (double)(iteration + 1) / (double)cfg->warmup_steps;
    return cfg->lr;
}

double optim_sum_squares(Optimizer *opt, const float *x, size_t n) {
    double sum; // the op's result is a host double (kernels/ops.h)
    opt->ops->sum_squares(&sum, x, n);
    return sum;
}

double optim_grad_norm(Optimizer *opt, const float *grad, size_t n) { return sqrt(optim_sum_squares(opt, grad, n)); }

OptimStepInfo optim_step(Optimizer *opt, long iteration, double grad_norm, float *param, float *grad, float *m,
                         float *v, size_t n) {
    const OptimConfig *c = &opt->cfg;
    OptimStepInfo info = {.grad_norm = grad_norm};
    if (!isfinite(grad_norm)) {
        info.nonfinite = 1;
        return info;
    }
    if (c->policy == GRAD_POLICY_SKIP && grad_norm >= c->max_grad_norm) return info;
    if (c->policy == GRAD_POLICY_CLIP) {
        double scale = c->max_grad_norm / (grad_norm + 1e-6);
        if (scale < 1.0) {
            opt->ops->scale(grad, (float)scale, n);
            info.clipped = 1;
        }
    }
    opt->step++;
    info.lr = optim_lr_at(c, iteration);
    info.updated = 1;
    opt->ops->adamw_update(param, grad, m, v, n, info.lr, c->beta1, c->beta2, c->eps, c->weight_decay, opt->step);
    return info;
}

void optim_ema_update(Optimizer *opt, float *ema, const float *param, size_t n) {
    opt->ops->ema_update(ema, param, n, opt->cfg.ema_decay);
}
