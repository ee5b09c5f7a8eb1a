#include "train/device_options.h"

#include <stdio.h>

void device_options_add(DeviceOptions *d, Option *o, int at) {
    d->device = "auto";
    d->precision = NULL;
    const Option list[DEVICE_OPTION_COUNT] = {
        {"device", OPT_STRING, &d->device,
         "auto, cpu, cuda, cuda:N, or cpu-guarded (CPU arithmetic with backend memory closed to the host: a check, "
         "slow)",
         "auto: cuda when built with it and a GPU is present, else cpu", 0},
        {"precision", OPT_STRING, &d->precision, "dense products in bf16 (fp32 accumulation) or fp32; CPU: fp32 only",
         "bf16 on cuda, fp32 on cpu", 0},
    };
    for (int i = 0; i < DEVICE_OPTION_COUNT; i++) o[at + i] = list[i];
}

Backend device_options_open(const DeviceOptions *d, int local_rank) {
    return backend_open(d->device, d->precision, local_rank);
}

void device_print(const Backend *b) { fprintf(stderr, "device: %s (%s)\n", b->name, b->precision); }
