#include "common/output_files.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/temp_files.h"
#include "common/util.h"

static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

void refuse_same_file(const char *out_option, const char *out_path, const char *in_option, const char *in_path) {
    if (out_path && in_path && same_file(out_path, in_path))
        die("%s %s is the file %s reads (%s): refusing to overwrite an input", out_option, out_path, in_option,
            in_path);
}

const char *output_files_add(OutputFiles *o, const char *option, const char *path) {
    if (o->count == OUTPUT_FILES_MAX) die("internal: more than %d output files", OUTPUT_FILES_MAX);
    if (dir_exists(path)) die("%s %s is a directory; it names a file to write", option, path);
    for (int i = 0; i < o->count; i++)
        if (!strcmp(o->path[i], path) || same_file(o->path[i], path))
            die("%s and %s name the same file %s", o->option[i], option, path);
    if (make_parent_dirs(path)) die("%s %s: cannot create its directory: %s", option, path, strerror(errno));
    int fd;
    char *staged = temp_file_create(path, &fd);
    if (!staged) die("%s %s: cannot create a file beside it: %s", option, path, strerror(errno));
    close(fd);
    o->option[o->count] = option;
    o->path[o->count] = path;
    o->staged[o->count] = staged;
    return o->staged[o->count++];
}

void output_files_refuse_input(const OutputFiles *o, const char *option, const char *path) {
    for (int i = 0; i < o->count; i++) refuse_same_file(o->option[i], o->path[i], option, path);
}

void output_files_commit(OutputFiles *o) {
    for (int i = 0; i < o->count; i++) {
        if (temp_file_commit(o->staged[i], o->path[i]))
            die("%s %s: cannot rename %s into place: %s", o->option[i], o->path[i], o->staged[i], strerror(errno));
        free(o->staged[i]);
    }
    o->count = 0;
}
