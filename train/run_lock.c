#include "train/run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/util.h"

int run_lock_take(const char *dir) {
    if (make_dirs(dir)) die("--out %s: cannot create the run directory: %s", dir, strerror(errno));
    char *path = xasprintf("%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) die("--out %s: cannot create the lock file %s: %s", dir, path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        if (errno == EWOULDBLOCK) die("--out %s: another training is writing into this run directory", dir);
        die("--out %s: cannot lock %s: %s", dir, path, strerror(errno));
    }
    free(path);
    return fd;
}

void run_lock_release(int fd) {
    if (fd >= 0) close(fd);
}
