// libFuzzer target: the IDX reader, plain and gzip-compressed, as 3-dim images and 1-dim labels.
#include "tests/fuzz/memfile.h"

#include "data/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    const char *path = memfile_path(data, size);
    for (int ndim = 1; ndim <= 3; ndim += 2) {
        IdxArray a;
        if (idx_read(path, ndim, &a, err, sizeof(err)) == 0) {
            int64_t total = 1;
            for (int d = 0; d < a.ndim; d++) total *= a.dims[d];
            volatile uint8_t sink = a.data[total - 1]; // the whole promised buffer exists
            (void)sink;
            idx_free(&a);
        }
    }
    return 0;
}
