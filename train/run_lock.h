// train/run_lock.h: one writer per run directory. Two trainings into the same --out would
// overwrite each other's checkpoints, weights and checkpoints/latest, so a training holds an
// exclusive lock (flock on OUT/.lock) for as long as it runs, and a second one is refused.
#pragma once

// Creates dir (and its parents) and locks it; returns the descriptor that holds the lock. Dies
// with one line when dir cannot be created or another process holds its lock.
int run_lock_take(const char *dir);
// Releases the lock. The lock file stays: removed, a process that had opened it before and one
// that creates it anew could both hold "the" lock.
void run_lock_release(int fd);
