// data/npz.c: .npz (ZIP of one stored .npy) writer, ZIP64 when needed (PKWARE APPNOTE 4.3, 4.5.3).
#include "data/npz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/temp_files.h"
#include "common/util.h"

#define MEMBER_NAME "arr_0.npy"
// A 32-bit field holding this value says "see the ZIP64 extra field".
#define ZIP32_ESCAPE 0xFFFFFFFFu
#define VERSION_ZIP32 20 // 2.0: stored members, directories
#define VERSION_ZIP64 45 // 4.5: ZIP64 extensions
#define MADE_BY_UNIX 3
#define DOS_DATE_1980_01_01 0x0021 // a fixed timestamp keeps archives of the same data identical
#define NPY_ALIGN 64

/* ---------------------------------------------------------------------------------------------
 * ZIP records (little-endian fields)
 * ------------------------------------------------------------------------------------------- */

static uint8_t *put16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
    return p + 2;
}
static uint8_t *put32(uint8_t *p, uint32_t v) { return put16(put16(p, v & 0xFFFF), v >> 16); }
static uint8_t *put64(uint8_t *p, uint64_t v) { return put32(put32(p, (uint32_t)v), (uint32_t)(v >> 32)); }
static uint8_t *put_bytes(uint8_t *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}

// The value of a 32-bit size or offset field: the escape when ZIP64 carries it instead.
static uint32_t field32(const ZipMember *m, uint64_t v) { return m->zip64 ? ZIP32_ESCAPE : (uint32_t)v; }

// Version, flags (none), method (stored), time, date, CRC-32, both sizes: shared by both headers.
static uint8_t *put_member_fields(uint8_t *p, const ZipMember *m) {
    p = put16(p, m->zip64 ? VERSION_ZIP64 : VERSION_ZIP32);
    p = put16(p, 0);
    p = put16(p, 0);
    p = put16(p, 0);
    p = put16(p, DOS_DATE_1980_01_01);
    p = put32(p, m->crc);
    p = put32(p, field32(m, m->size));
    return put32(p, field32(m, m->size));
}

size_t zip_local_header(uint8_t *out, const ZipMember *m) {
    size_t name = strlen(m->name);
    uint8_t *p = put32(out, 0x04034b50);
    p = put_member_fields(p, m);
    p = put16(p, (uint32_t)name);
    p = put16(p, m->zip64 ? 20 : 0);
    p = put_bytes(p, m->name, name);
    if (m->zip64) { // extra field 0x0001: uncompressed and compressed size
        p = put16(p, 0x0001);
        p = put16(p, 16);
        p = put64(p, m->size);
        p = put64(p, m->size);
    }
    return (size_t)(p - out);
}

size_t zip_directory(uint8_t *out, const ZipMember *m, uint64_t directory_offset) {
    size_t name = strlen(m->name);
    uint8_t *p = put32(out, 0x02014b50);
    p = put16(p, (MADE_BY_UNIX << 8) | (m->zip64 ? VERSION_ZIP64 : VERSION_ZIP32));
    p = put_member_fields(p, m);
    p = put16(p, (uint32_t)name);
    p = put16(p, m->zip64 ? 28 : 0);
    p = put16(p, 0);              // comment length
    p = put16(p, 0);              // disk number
    p = put16(p, 0);              // internal attributes
    p = put32(p, 0100644u << 16); // external attributes: a regular file, rw-r--r--
    p = put32(p, field32(m, m->local_offset));
    p = put_bytes(p, m->name, name);
    if (m->zip64) { // every escaped field, in the order of the header: sizes, then the offset
        p = put16(p, 0x0001);
        p = put16(p, 24);
        p = put64(p, m->size);
        p = put64(p, m->size);
        p = put64(p, m->local_offset);
    }
    uint64_t directory_size = (uint64_t)(p - out), end64 = directory_offset + directory_size;
    if (m->zip64) {
        p = put32(p, 0x06064b50); // ZIP64 end of central directory record
        p = put64(p, ZIP64_END_SIZE - 12);
        p = put16(p, (MADE_BY_UNIX << 8) | VERSION_ZIP64);
        p = put16(p, VERSION_ZIP64);
        p = put32(p, 0); // this disk
        p = put32(p, 0); // the directory's disk
        p = put64(p, 1); // entries on this disk
        p = put64(p, 1); // entries
        p = put64(p, directory_size);
        p = put64(p, directory_offset);
        p = put32(p, 0x07064b50); // its locator
        p = put32(p, 0);
        p = put64(p, end64);
        p = put32(p, 1); // disks
    }
    p = put32(p, 0x06054b50);
    p = put16(p, 0);
    p = put16(p, 0);
    p = put16(p, 1);
    p = put16(p, 1);
    p = put32(p, (uint32_t)directory_size);
    p = put32(p, field32(m, directory_offset));
    p = put16(p, 0); // comment length
    return (size_t)(p - out);
}

// Every offset of the archive lies below the directory's, which lies just after the member.
int zip_needs_zip64(uint64_t size, uint64_t local_header_bytes) {
    return size >= ZIP32_ESCAPE || local_header_bytes + size >= ZIP32_ESCAPE;
}

/* ---------------------------------------------------------------------------------------------
 * The writer
 * ------------------------------------------------------------------------------------------- */

struct NpzWriter {
    char *path, *tmp_path;
    FILE *file;
    ZipMember member;
    uint64_t local_bytes;      // local header length; the member's bytes start there
    uint64_t expected, actual; // array bytes
};

// "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }" behind the magic and length,
// padded with spaces and a newline so the data start at a multiple of NPY_ALIGN.
static size_t npy_header(char *out, size_t size, int ndim, const int64_t *shape) {
    char dict[512];
    int n = snprintf(dict, sizeof(dict), "{'descr': '|u1', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++) n += snprintf(dict + n, sizeof(dict) - (size_t)n, "%lld, ", (long long)shape[i]);
    n -= ndim > 1 ? 2 : 1; // "(2, 3)" but "(5,)"
    n += snprintf(dict + n, sizeof(dict) - (size_t)n, "), }");
    size_t total = (10 + (size_t)n + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN, len = total - 10;
    if (total > size) return 0;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (char)(len & 0xFF), out[9] = (char)(len >> 8);
    memcpy(out + 10, dict, (size_t)n);
    memset(out + 10 + n, ' ', len - (size_t)n - 1);
    out[total - 1] = '\n';
    return total;
}

static void discard(NpzWriter *w) {
    if (w->file) fclose(w->file);
    temp_file_discard(w->tmp_path);
    free(w->path), free(w->tmp_path), free(w);
}

void npz_abort(NpzWriter *w) {
    if (w) discard(w);
}

static int write_failed(NpzWriter *w, char *err, int err_size) {
    fail_at(err, err_size, w->path, "write failed: %s", strerror(errno ? errno : EIO));
    discard(w);
    return -1;
}

// Bytes to the file and into the member's CRC.
static int put(NpzWriter *w, const void *data, size_t bytes) {
    const uint8_t *p = data;
    for (size_t done = 0; done < bytes;) { // zlib's crc32 takes at most 4 GiB at a time
        uInt n = bytes - done > (1u << 30) ? (1u << 30) : (uInt)(bytes - done);
        w->member.crc = (uint32_t)crc32(w->member.crc, p + done, n);
        done += n;
    }
    return fwrite(data, 1, bytes, w->file) == bytes ? 0 : -1;
}

// Bytes of a uint8 array of this shape; -1 when the shape is not one npz_open takes.
static int64_t array_bytes(int ndim, const int64_t *shape) {
    if (ndim < 1 || ndim > 8) return -1;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && n > INT64_MAX / 2 / shape[i])) return -1;
        n *= shape[i];
    }
    return n;
}

NpzWriter *npz_open(const char *path, int ndim, const int64_t *shape, int zip64, char *err, int err_size) {
    int64_t bytes = array_bytes(ndim, shape);
    char header[1024];
    size_t header_bytes = bytes >= 0 ? npy_header(header, sizeof(header), ndim, shape) : 0;
    if (!header_bytes) {
        fail_at(err, err_size, path, "cannot store an array of %d dimensions with these sizes", ndim);
        return NULL;
    }
    int fd;
    char *tmp_path = temp_file_create(path, &fd);
    FILE *file = tmp_path ? fdopen(fd, "wb") : NULL;
    if (!file) {
        fail_at(err, err_size, path, "cannot create a temporary file beside it: %s", strerror(errno));
        if (tmp_path) close(fd), temp_file_discard(tmp_path);
        free(tmp_path);
        return NULL;
    }
    NpzWriter *w = xcalloc(1, sizeof(NpzWriter));
    w->path = xstrdup(path);
    w->tmp_path = tmp_path;
    w->file = file;
    w->expected = (uint64_t)bytes;
    w->member =
        (ZipMember){.name = MEMBER_NAME, .size = header_bytes + w->expected, .crc = (uint32_t)crc32(0, NULL, 0)};
    // the need for ZIP64 depends on the local header's length, which depends on ZIP64: decide
    // with the longer, ZIP64 header
    w->member.zip64 = zip64 || zip_needs_zip64(w->member.size, ZIP_LOCAL_FIXED + strlen(MEMBER_NAME) + 20);
    uint8_t local[ZIP_RECORDS_MAX];
    w->local_bytes = zip_local_header(local, &w->member);
    errno = 0;
    if (fwrite(local, 1, w->local_bytes, w->file) != w->local_bytes || put(w, header, header_bytes)) {
        write_failed(w, err, err_size);
        return NULL;
    }
    return w;
}

int npz_append(NpzWriter *w, const void *data, size_t bytes, char *err, int err_size) {
    if (bytes > w->expected - w->actual) {
        fail_at(err, err_size, w->path, "more than the array's %llu bytes appended", (unsigned long long)w->expected);
        discard(w);
        return -1;
    }
    w->actual += bytes;
    return put(w, data, bytes) ? write_failed(w, err, err_size) : 0;
}

int npz_close(NpzWriter *w, char *err, int err_size) {
    if (w->actual != w->expected) {
        fail_at(err, err_size, w->path, "only %llu of the array's %llu bytes were written",
                (unsigned long long)w->actual, (unsigned long long)w->expected);
        discard(w);
        return -1;
    }
    uint8_t records[ZIP_RECORDS_MAX];
    size_t n = zip_directory(records, &w->member, w->local_bytes + w->member.size);
    size_t local = zip_local_header(records + n, &w->member); // again, now with the CRC
    errno = 0;
    if (fwrite(records, 1, n, w->file) != n || fseeko(w->file, 0, SEEK_SET) ||
        fwrite(records + n, 1, local, w->file) != local || fflush(w->file) || fsync(fileno(w->file)))
        return write_failed(w, err, err_size);
    if (fclose(w->file)) {
        w->file = NULL;
        return write_failed(w, err, err_size);
    }
    w->file = NULL;
    if (temp_file_commit(w->tmp_path, w->path)) {
        fail_at(err, err_size, w->path, "cannot rename %s into place: %s", w->tmp_path, strerror(errno));
        discard(w);
        return -1;
    }
    free(w->path), free(w->tmp_path), free(w);
    return 0;
}
