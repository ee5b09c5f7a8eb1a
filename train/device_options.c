#include "train/device_options.h"

#include <stdio.h>

void device_options_add(DeviceOptions *d, Option *o, int at) {
    d->device = "auto";
    d->precision = NULL;
    const Option list[DEVICE_OPTION_COUNT] = {
        {"device", OPT_STRING, &d->device,
         "cpu, cuda, cuda:N, cpu-guarded (a slow check of host code), cuda-emulated (build-emu/dydit)",
         "auto: cuda when built with it and a GPU is present", 0, NO_RANGE},
        {"precision", OPT_STRING, &d->precision, "of dense products on cuda: bf16 or fp32 (CPU: fp32 only)",
         "bf16 on cuda", 0, NO_RANGE},
    };
    for (int i = 0; i < DEVICE_OPTION_COUNT; i++) o[at + i] = list[i];
}

Backend device_options_open(const DeviceOptions *d, int local_rank) {
    return backend_open(d->device, d->precision, local_rank);
}

void device_print(const Backend *b) { fprintf(stderr, "device: %s (%s)\n", b->name, b->precision); }
