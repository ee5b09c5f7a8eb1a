// libFuzzer target: the safetensors reader (header, offsets, coverage, every tensor read and
// converted). Whatever st_open accepts must read back without a fault.
#include "tests/fuzz/memfile.h"

#include "data/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    StFile *f = st_open(memfile_path(data, size), err, sizeof(err));
    if (!f) return 0;
    for (int i = 0; i < st_count(f); i++) {
        const StTensor *t = st_tensor(f, i);
        int64_t n = st_numel(t);
        if (n > (1 << 20)) continue; // the data lies inside the input, so this is only a 0-byte-element guard
        void *out = malloc((size_t)(n ? n : 1) * 8);
        st_read_bytes(f, t, out, err, sizeof(err));
        st_read_f32(f, t, out, err, sizeof(err));
        st_read_i64(f, t, out, err, sizeof(err));
        free(out);
    }
    for (int i = 0; i < st_meta_count(f); i++) {
        const char *k, *v;
        st_meta_at(f, i, &k, &v);
        if (st_meta(f, k) == NULL) abort();
    }
    st_close(f);
    return 0;
}
