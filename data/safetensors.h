// data/safetensors.h: reader and writer of the safetensors format (docs/algorithm.md 7.5): an 8-byte
// little-endian header length N, N bytes of JSON describing each tensor (dtype, shape, byte range
// in the data buffer) plus optional string-to-string "__metadata__", then the data buffer.
//
// The reader validates the whole header at open time, so that every later read can trust the
// offsets; it reads with pread at 64-bit offsets and never maps or loads the whole file. The
// writer assembles the file from caller-owned buffers and replaces the target atomically.
// Every error is one line "PATH: problem" in the caller's err buffer.
#pragma once
#include <stdint.h>

typedef enum {
    ST_BOOL,
    ST_U8,
    ST_I8,
    ST_I16,
    ST_U16,
    ST_F16,
    ST_BF16,
    ST_I32,
    ST_U32,
    ST_F32,
    ST_F64,
    ST_I64,
    ST_U64,
    ST_F8_E5M2,
    ST_F8_E4M3,
    ST_DTYPE_COUNT
} StDtype;

enum { ST_MAX_DIMS = 8 };
// The reference implementation refuses larger headers; so do we, before allocating anything.
#define ST_MAX_HEADER_BYTES (100u * 1000u * 1000u)

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end; // bytes, relative to the start of the data buffer; end exclusive
} StTensor;

typedef struct StFile StFile;
typedef struct StWriter StWriter;

// "F32", "BF16", ...
const char *st_dtype_name(StDtype dtype);
// Bytes per element.
int st_dtype_size(StDtype dtype);
// Returns 0 and sets *out, or -1 when the name is not a safetensors dtype.
int st_dtype_from_name(const char *name, StDtype *out);

StFile *st_open(const char *path, char *err, int err_size);
void st_close(StFile *f);
const char *st_path(const StFile *f);

// Tensors in header order.
int st_count(const StFile *f);
const StTensor *st_tensor(const StFile *f, int i);
// NULL when absent.
const StTensor *st_find(const StFile *f, const char *name);
int64_t st_numel(const StTensor *t);
// "[2, 3]"
void st_shape_string(const StTensor *t, char *out, int size);

// Metadata value for key, NULL when absent; and the entries in header order.
const char *st_meta(const StFile *f, const char *key);
int st_meta_count(const StFile *f);
void st_meta_at(const StFile *f, int i, const char **key, const char **value);

// Read a whole tensor, converting: st_read_f32 from F32, F16, BF16 or F64 into st_numel floats;
// st_read_i64 from any integer dtype or BOOL (U64 values above INT64_MAX are an error);
// st_read_bytes copies the stored little-endian bytes (end - begin of them). 0 or -1 with err.
int st_read_f32(const StFile *f, const StTensor *t, float *out, char *err, int err_size);
int st_read_i64(const StFile *f, const StTensor *t, int64_t *out, char *err, int err_size);
int st_read_bytes(const StFile *f, const StTensor *t, void *out, char *err, int err_size);

// Writer: metadata and tensors are collected, then written by st_writer_save in one go. Tensors
// are stored in the order they were added; data must stay valid until save and holds the
// tensor's elements little-endian (the host order; the build refuses big-endian hosts). Setting
// a metadata key twice keeps the last value. Invalid input (duplicate names, bad shapes, names
// or values that are not UTF-8) is reported by st_writer_save.
StWriter *st_writer_new(void);
void st_writer_meta(StWriter *w, const char *key, const char *value);
void st_writer_add(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape, const void *data);
// Writes a temporary file in the target's directory, fsyncs it and renames it over path, so a
// crash never leaves a half-written file under that name. 0, or -1 with err.
int st_writer_save(StWriter *w, const char *path, char *err, int err_size);
void st_writer_free(StWriter *w);
