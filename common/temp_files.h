// common/temp_files.h: files a command writes under a temporary name before renaming them into
// place. Every such name is registered here, and whatever is still registered when the process
// exits (a die() included) or is ended by SIGINT, SIGTERM or SIGHUP is removed, so no failure
// path leaves a temporary behind.
#pragma once

// Creates "PATH.tmp-XXXXXX" beside path (mode 0644) and registers it; returns the new
// name and an open descriptor in *fd, or NULL with errno set.
char *temp_file_create(const char *path, int *fd);
// Renames tmp over path and forgets it; 0, or -1 with errno set (tmp stays registered).
int temp_file_commit(const char *tmp, const char *path);
// Removes tmp and forgets it.
void temp_file_discard(const char *tmp);
