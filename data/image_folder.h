// data/image_folder.h: an ImageNet-style tree, one sub-folder per class (class index = position of
// the folder name in byte order, like torchvision's ImageFolder), images anywhere below it.
// Files ending in .jpg, .jpeg or .png (any case) are listed class by class, each folder's entries
// in byte order, depth first; other files are counted and left out; hidden names (a leading '.')
// are skipped.
#pragma once
#include <stdint.h>

typedef struct {
    int num_classes;
    char **classes; // (num_classes) folder names
    int64_t count;
    char **paths;    // (count) full paths
    int32_t *labels; // (count)
    int64_t ignored; // files that are not .jpg/.jpeg/.png
} ImageFolder;

// 0, or -1 with a one-line "PATH: problem" (no class folders, no images, unreadable folders).
int image_folder_scan(const char *root, ImageFolder *out, char *err, int err_size);
void image_folder_free(ImageFolder *f);
