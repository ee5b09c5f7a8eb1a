// data/npz.h: a streaming writer of .npz archives holding one uint8 array `arr_0`, the layout of
// the ADM evaluator's sample batches (docs/algorithm.md 9.1, 9.2): a ZIP with one stored (uncompressed) member
// arr_0.npy, an npy v1.0 header padded so the data start on a 64-byte boundary, then the bytes in
// C order. Archives whose member or directory would pass 4 GiB (50,000 256x256 RGB images are
// 9.8 GB) get ZIP64 records; `zip64` asks for them at any size. The CRC-32 is computed while
// streaming and patched into the local header at the end, so the data pass through once.
//
// The archive is written under a temporary name in the target's directory and renamed by
// npz_close, so a crash never leaves a truncated file under the final name. Errors are one line
// "PATH: problem" in err.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct NpzWriter NpzWriter;

// Starts an archive whose arr_0 has shape (shape[0], ..., shape[ndim - 1]), 1 <= ndim <= 8.
NpzWriter *npz_open(const char *path, int ndim, const int64_t *shape, int zip64, char *err, int err_size);
// Appends the next `bytes` bytes of arr_0. On failure the archive is abandoned (as by npz_abort).
int npz_append(NpzWriter *w, const void *data, size_t bytes, char *err, int err_size);
// Finishes the archive and renames it into place; it is an error unless exactly the array's bytes
// were appended. Frees w either way.
int npz_close(NpzWriter *w, char *err, int err_size);
// Abandons the archive: removes the temporary file and frees w.
void npz_abort(NpzWriter *w);

// ---- the ZIP records, exposed for tests ----

// One stored member; the record writers below take everything from here.
typedef struct {
    const char *name;
    uint64_t size;         // bytes of the member (stored: compressed size = size)
    uint64_t local_offset; // of its local header
    uint32_t crc;
    int zip64;
} ZipMember;

enum {
    ZIP_LOCAL_FIXED = 30, // local file header without name and extra field
    ZIP64_END_SIZE = 56,  // ZIP64 end of central directory record
    ZIP_RECORDS_MAX = 512 // bound on either record writer's output for names under 256 bytes
};

// The local file header; returns its length.
size_t zip_local_header(uint8_t *out, const ZipMember *m);
// The central directory (at directory_offset) and the end records that follow it; returns their length.
size_t zip_directory(uint8_t *out, const ZipMember *m, uint64_t directory_offset);
// Whether an archive holding a member of `size` bytes behind a local header of up to
// local_header_bytes needs ZIP64 records.
int zip_needs_zip64(uint64_t size, uint64_t local_header_bytes);
