// train/device_options.h: --device and --precision, the options that choose the backend of a
// command (kernels/backend.h).
#pragma once
#include "kernels/backend.h"
#include "train/options.h"

typedef struct {
    const char *device, *precision;
} DeviceOptions;

enum { DEVICE_OPTION_COUNT = 2 };

// Sets the defaults (device auto, the device's precision) and appends the options at options[at].
void device_options_add(DeviceOptions *d, Option *options, int at);
// The backend the options name; local_rank as for backend_open. Exits with a one-line error when
// it cannot be opened.
Backend device_options_open(const DeviceOptions *d, int local_rank);
// "device: cuda:0 (bf16)" on stderr.
void device_print(const Backend *b);
