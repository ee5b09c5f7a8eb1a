// libFuzzer target: JPEG and PNG decoding from memory, as dydit encode's workers call it.
#include <stdint.h>

#include "data/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    Image im;
    if (image_decode(data, size, "input", &im, err, sizeof(err)) == 0) {
        volatile uint8_t sink = im.rgb[(size_t)im.width * im.height * 3 - 1];
        (void)sink;
        image_free(&im);
    }
    return 0;
}
