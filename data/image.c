#include "data/image.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "common/util.h"

void image_free(Image *im) {
    free(im->rgb);
    memset(im, 0, sizeof(*im));
}

// Pixel buffers grow with the image (up to IMAGE_MAX_PIXELS): when one cannot be had, that image
// fails with its name, not the whole run, so these use malloc rather than xmalloc.
static void *image_buffer(size_t bytes) { return malloc(bytes ? bytes : 1); }

static int check_size(long long w, long long h, const char *name, char *err, int err_size) {
    if (w < 1 || h < 1 || w * h > IMAGE_MAX_PIXELS)
        return fail_at(err, err_size, name, "image size %lldx%lld is empty or over %lld pixels", w, h,
                       (long long)IMAGE_MAX_PIXELS);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * JPEG
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX + 16];
} JpegErrors;

static void jpeg_fail(j_common_ptr c) {
    JpegErrors *e = (JpegErrors *)c->err;
    char message[JMSG_LENGTH_MAX];
    c->err->format_message(c, message);
    snprintf(e->message, sizeof(e->message), "bad JPEG: %s", message);
    longjmp(e->jump, 1);
}

// Warnings are ignored, except the one libjpeg gives when the data ends early: it would pad the
// image with grey and call it decoded.
static void jpeg_message(j_common_ptr c, int level) {
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(((JpegErrors *)c->err)->message, JMSG_LENGTH_MAX, "bad JPEG: JPEG data ends early (truncated file?)");
        longjmp(((JpegErrors *)c->err)->jump, 1);
    }
}

// (255 - c)(255 - k) / 255 rounded to nearest, in integers; c and k as Adobe's inverted values
// when `inverted` (then the stored bytes are 255 - c, 255 - k).
static uint8_t cmyk_channel(int c, int k, int inverted) {
    int ink = inverted ? 255 - c : c, black = inverted ? 255 - k : k;
    int keep = 255 - black;
    return (uint8_t)(keep - (ink * keep + 127) / 255);
}

static int decode_jpeg(const uint8_t *data, size_t size, const char *name, Image *out, char *err, int err_size) {
    struct jpeg_decompress_struct cinfo;
    JpegErrors errors;
    uint8_t *volatile rgb = NULL, *volatile row = NULL;
    cinfo.err = jpeg_std_error(&errors.base);
    errors.base.error_exit = jpeg_fail;
    errors.base.emit_message = jpeg_message;
    if (setjmp(errors.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        free(row);
        return fail_at(err, err_size, name, "%s", errors.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    int inverted = cmyk && cinfo.saw_Adobe_marker;
    cinfo.out_color_space = cmyk ? JCS_CMYK : cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
    if (check_size(cinfo.image_width, cinfo.image_height, name, err, err_size)) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, n = cinfo.output_components;
    if (n != 1 && n != 3 && n != 4) {
        jpeg_destroy_decompress(&cinfo);
        return fail_at(err, err_size, name, "bad JPEG: %d colour components after conversion", n);
    }
    rgb = image_buffer((size_t)w * (size_t)h * 3);
    row = image_buffer((size_t)w * (size_t)n);
    if (!rgb || !row) {
        snprintf(errors.message, sizeof(errors.message), "out of memory decoding a %dx%d image", w, h);
        longjmp(errors.jump, 1);
    }
    while ((int)cinfo.output_scanline < h) {
        uint8_t *dst = rgb + (size_t)cinfo.output_scanline * (size_t)w * 3;
        JSAMPROW rows[1] = {n == 3 ? dst : row}; // RGB lands in place; gray and CMYK are converted
        jpeg_read_scanlines(&cinfo, rows, 1);
        if (n == 1)
            for (int x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x];
        else if (n == 4)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < 3; ch++)
                    dst[3 * x + ch] = cmyk_channel(row[4 * x + ch], row[4 * x + 3], inverted);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * PNG
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    char message[256];
} PngSource;

static void png_fail(png_structp png, png_const_charp message) {
    PngSource *src = png_get_error_ptr(png);
    snprintf(src->message, sizeof(src->message), "bad PNG: %s", message);
    png_longjmp(png, 1);
}

static void png_quiet(png_structp png, png_const_charp message) {}

static void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
    PngSource *src = png_get_io_ptr(png);
    if (n > src->size - src->pos) png_error(png, "PNG data ends early (truncated file?)");
    memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

// n-channel pixels packed from the buffer's start become RGB in place (gray replicated, alpha
// dropped). Narrowing (n = 4) walks forward and widening (n < 3) backward, so that every pixel is
// read before a later write reaches it.
static void pixels_to_rgb(uint8_t *buf, size_t pixels, int n) {
    if (n >= 3) {
        for (size_t p = 0; p < pixels; p++)
            for (int ch = 0; ch < 3; ch++) buf[3 * p + ch] = buf[(size_t)n * p + ch];
    } else {
        for (size_t p = pixels; p-- > 0;) buf[3 * p] = buf[3 * p + 1] = buf[3 * p + 2] = buf[(size_t)n * p];
    }
}

static int decode_png(const uint8_t *data, size_t size, const char *name, Image *out, char *err, int err_size) {
    PngSource src = {data, size, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return fail_at(err, err_size, name, "out of memory starting libpng");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        return fail_at(err, err_size, name, "%s", src.message);
    }
    png_set_read_fn(png, &src, png_read_memory);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (check_size(w, h, name, err, err_size)) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    // palette and low-bit gray to 8 bits, 16 bits to their high byte; alpha stays, and is skipped below
    png_set_expand(png);
    png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int n = png_get_channels(png, info);
    size_t stride = png_get_rowbytes(png, info);
    if (n < 1 || n > 4 || stride != (size_t)w * (size_t)n) png_error(png, "unexpected row layout after expansion");
    // one buffer, large enough for the decoded rows and for their RGB, which replaces them
    size_t area = (size_t)w * h;
    pixels = image_buffer(area * (n > 3 ? (size_t)n : 3));
    rows = image_buffer(sizeof(png_bytep) * h);
    if (!pixels || !rows) {
        snprintf(src.message, sizeof(src.message), "out of memory decoding a %ux%u image", (unsigned)w, (unsigned)h);
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + (size_t)y * stride;
    png_read_image(png, rows);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    pixels_to_rgb(pixels, area, n);
    uint8_t *rgb = pixels;
    if (n > 3 && (rgb = realloc(pixels, area * 3)) == NULL) rgb = pixels; // gives back the alpha's share
    out->width = (int)w;
    out->height = (int)h;
    out->rgb = rgb;
    return 0;
}

int image_decode(const uint8_t *data, size_t size, const char *name, Image *out, char *err, int err_size) {
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    memset(out, 0, sizeof(*out));
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        return decode_jpeg(data, size, name, out, err, err_size);
    if (size >= 8 && !memcmp(data, png_magic, 8)) return decode_png(data, size, name, out, err, err_size);
    return fail_at(err, err_size, name, "neither a JPEG nor a PNG file (%zu bytes)", size);
}

int image_load(const char *path, Image *out, char *err, int err_size) {
    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "rb");
    if (!f) return fail_at(err, err_size, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (1ll << 31)) {
        fclose(f);
        return fail_at(err, err_size, path, "not a regular file under 2 GiB");
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = image_buffer(size);
    if (!data) {
        fclose(f);
        return fail_at(err, err_size, path, "out of memory reading %zu bytes", size);
    }
    size_t got = fread(data, 1, size, f);
    fclose(f);
    int rc = got != size ? fail_at(err, err_size, path, "read %zu of %zu bytes", got, size)
                         : image_decode(data, size, path, out, err, err_size);
    free(data);
    return rc;
}
