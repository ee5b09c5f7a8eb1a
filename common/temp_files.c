#include "common/temp_files.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static char **registry;
static int registered, registry_capacity, cleanup_installed;

static void remove_registered(void) {
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < registered; i++) unlink(registry[i]);
    pthread_mutex_unlock(&registry_lock);
}

static void remember(const char *path) {
    pthread_mutex_lock(&registry_lock);
    if (!cleanup_installed) cleanup_installed = atexit(remove_registered) == 0;
    if (registered == registry_capacity)
        registry = xrealloc(registry, sizeof(char *) * (size_t)(registry_capacity = 2 * registry_capacity + 4));
    registry[registered++] = xstrdup(path);
    pthread_mutex_unlock(&registry_lock);
}

static void forget(const char *path) {
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < registered; i++)
        if (!strcmp(registry[i], path)) {
            free(registry[i]);
            registry[i] = registry[--registered];
            break;
        }
    pthread_mutex_unlock(&registry_lock);
}

char *temp_file_create(const char *path, int *fd) {
    char *tmp = xasprintf("%s.tmp-XXXXXX", path);
    *fd = mkstemp(tmp);
    if (*fd < 0) {
        int e = errno;
        free(tmp);
        errno = e;
        return NULL;
    }
    fchmod(*fd, 0644); // what the final file would get from open(); mkstemp gives 0600
    remember(tmp);
    return tmp;
}

int temp_file_commit(const char *tmp, const char *path) {
    if (rename(tmp, path)) return -1;
    forget(tmp);
    return 0;
}

void temp_file_discard(const char *tmp) {
    unlink(tmp);
    forget(tmp);
}
