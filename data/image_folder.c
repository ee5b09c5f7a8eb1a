#include "data/image_folder.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"

enum { FOLDER_MAX_DEPTH = 32 };

typedef struct {
    char **items;
    int64_t count, capacity;
} Names;

static void names_push(Names *n, char *s) {
    if (n->count == n->capacity) {
        n->capacity = n->capacity ? 2 * n->capacity : 64;
        n->items = xrealloc(n->items, sizeof(char *) * (size_t)n->capacity);
    }
    n->items[n->count++] = s;
}

static void names_free(Names *n) {
    for (int64_t i = 0; i < n->count; i++) free(n->items[i]);
    free(n->items);
    memset(n, 0, sizeof(*n));
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// The visible entries of dir, sorted; 0, or -1 with err.
static int list_dir(const char *dir, Names *out, char *err, int err_size) {
    DIR *d = opendir(dir);
    if (!d) return fail_at(err, err_size, dir, "cannot open folder: %s", strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') names_push(out, xstrdup(e->d_name));
    closedir(d);
    // an empty folder leaves items NULL, which qsort must not be given even for zero elements
    if (out->count > 1) qsort(out->items, (size_t)out->count, sizeof(char *), compare_strings);
    return 0;
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    char ext[8];
    size_t n = strlen(dot + 1);
    if (n >= sizeof(ext)) return 0;
    for (size_t i = 0; i < n; i++) ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    ext[n] = '\0';
    return !strcmp(ext, "jpg") || !strcmp(ext, "jpeg") || !strcmp(ext, "png");
}

// Appends the images below dir (sorted, depth first) to f with the given label.
static int scan_class(ImageFolder *f, Names *paths, const char *dir, int label, int depth, char *err, int err_size) {
    if (depth > FOLDER_MAX_DEPTH) return fail_at(err, err_size, dir, "folders nest deeper than %d", FOLDER_MAX_DEPTH);
    Names entries = {0};
    int rc = list_dir(dir, &entries, err, err_size);
    for (int64_t i = 0; i < entries.count && rc == 0; i++) {
        char *path = xasprintf("%s/%s", dir, entries.items[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            rc = scan_class(f, paths, path, label, depth + 1, err, err_size);
            free(path);
        } else if (is_image_name(entries.items[i])) {
            names_push(paths, path);
            f->labels = xrealloc(f->labels, sizeof(int32_t) * (size_t)paths->capacity); // grows with paths
            f->labels[paths->count - 1] = label;
        } else {
            f->ignored++;
            free(path);
        }
    }
    names_free(&entries);
    return rc;
}

int image_folder_scan(const char *root, ImageFolder *f, char *err, int err_size) {
    memset(f, 0, sizeof(*f));
    Names entries = {0}, classes = {0}, paths = {0};
    int rc = list_dir(root, &entries, err, err_size);
    for (int64_t i = 0; i < entries.count && rc == 0; i++) {
        char *path = xasprintf("%s/%s", root, entries.items[i]);
        if (dir_exists(path))
            names_push(&classes, xstrdup(entries.items[i]));
        else
            f->ignored++;
        free(path);
    }
    if (rc == 0 && classes.count == 0)
        rc = fail_at(err, err_size, root, "has no class folders (want ROOT/CLASS/IMAGE.jpg)");
    if (rc == 0 && classes.count > INT32_MAX) rc = fail_at(err, err_size, root, "has too many class folders");
    for (int64_t k = 0; k < classes.count && rc == 0; k++) {
        char *dir = xasprintf("%s/%s", root, classes.items[k]);
        rc = scan_class(f, &paths, dir, (int)k, 1, err, err_size);
        free(dir);
    }
    if (rc == 0 && paths.count == 0) rc = fail_at(err, err_size, root, "holds no .jpg, .jpeg or .png files");
    names_free(&entries);
    f->num_classes = (int)classes.count;
    f->classes = classes.items;
    f->count = paths.count;
    f->paths = paths.items;
    if (rc) image_folder_free(f);
    return rc;
}

void image_folder_free(ImageFolder *f) {
    for (int k = 0; k < f->num_classes; k++) free(f->classes[k]);
    for (int64_t i = 0; i < f->count; i++) free(f->paths[i]);
    free(f->classes);
    free(f->paths);
    free(f->labels);
    memset(f, 0, sizeof(*f));
}
