// common/output_files.h: the files one command writes, all or nothing. Every output is declared
// before the work starts (so a path that cannot be written, or that names one of the command's
// inputs, is refused before anything is computed), written under a temporary name beside it, and
// renamed into place only once all of them are complete. A failure on any path, die() included,
// removes the temporaries and leaves every existing file as it was.
#pragma once

enum { OUTPUT_FILES_MAX = 16 };

typedef struct {
    int count;
    const char *option[OUTPUT_FILES_MAX]; // "--grid": how the user named it, for messages
    const char *path[OUTPUT_FILES_MAX];   // where it ends up
    char *staged[OUTPUT_FILES_MAX];       // where it is written meanwhile
} OutputFiles;

// Declares the output `path` given by `option` and returns the temporary name to write it under.
// Creates missing parent directories; dies with one line when the path is a directory, cannot be
// created, or is another output already declared.
const char *output_files_add(OutputFiles *o, const char *option, const char *path);
// Dies with one line when an output is the file `path` that `option` reads (the same file after
// links are followed: device and inode).
void output_files_refuse_input(const OutputFiles *o, const char *option, const char *path);
// Renames every output into place; dies on failure. Empties o.
void output_files_commit(OutputFiles *o);

// Dies with one line when out_path and in_path name the same existing file.
void refuse_same_file(const char *out_option, const char *out_path, const char *in_option, const char *in_path);
