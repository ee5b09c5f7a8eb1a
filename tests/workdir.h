// tests/workdir.h: the scratch directory a test program is given, and small helpers on it.
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static const char *workdir;

// Makes ROOT/<sub> (created with its parents) the directory path_in() resolves against.
static inline void workdir_init(const char *root, const char *sub) {
    char *dir = xasprintf("%s/%s", root, sub);
    if (make_dirs(dir)) {
        fprintf(stderr, "cannot create %s\n", dir);
        exit(2);
    }
    workdir = dir;
}

static inline char *path_in(const char *name) { return xasprintf("%s/%s", workdir, name); }

static inline int contains(const char *s, const char *word) { return s && strstr(s, word) != NULL; }
