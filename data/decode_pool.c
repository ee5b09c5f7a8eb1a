#include "data/decode_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

enum { POOL_ERR = 1024 };

typedef struct {
    int64_t position; // list position the slot holds, -1 while empty or being loaded
    float *image;
    ImageItem item;
    int rc;
    char err[POOL_ERR];
} Slot;

struct DecodePool {
    const ImageSource *src;
    int64_t *items, n;
    int window, workers;
    Slot *slots; // list position k lives in slots[k % window]
    pthread_t *threads;
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    int64_t claimed;  // next list position a worker takes
    int64_t consumed; // list positions below this were handed out and released
    int holding;      // the consumer still reads slot `consumed`
    int stop;
};

static void *worker_main(void *arg) {
    DecodePool *p = arg;
    pthread_mutex_lock(&p->mutex);
    for (;;) {
        while (!p->stop && p->claimed < p->n && p->claimed >= p->consumed + p->window)
            pthread_cond_wait(&p->changed, &p->mutex);
        if (p->stop || p->claimed >= p->n) break;
        int64_t k = p->claimed++;
        Slot *s = &p->slots[k % p->window];
        pthread_mutex_unlock(&p->mutex);
        int rc = image_source_load(p->src, p->items[k], s->image, &s->item, s->err, POOL_ERR);
        pthread_mutex_lock(&p->mutex);
        s->rc = rc;
        s->position = k;
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->mutex);
    return NULL;
}

DecodePool *decode_pool_start(const ImageSource *src, const int64_t *items, int64_t n, int workers, int window) {
    DecodePool *p = xcalloc(1, sizeof(*p));
    p->src = src;
    p->n = n;
    p->items = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    memcpy(p->items, items, sizeof(int64_t) * (size_t)n);
    p->workers = workers < 1 ? 1 : workers;
    p->window = window < p->workers ? p->workers : window;
    p->slots = xcalloc((size_t)p->window, sizeof(Slot));
    size_t numel = (size_t)src->channels * src->size * src->size;
    for (int i = 0; i < p->window; i++) {
        p->slots[i].position = -1;
        p->slots[i].image = xmalloc(numel * sizeof(float));
    }
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->changed, NULL);
    p->threads = xcalloc((size_t)p->workers, sizeof(pthread_t));
    for (int i = 0; i < p->workers; i++)
        if (pthread_create(&p->threads[i], NULL, worker_main, p)) die("cannot start decoding thread %d", i);
    return p;
}

int decode_pool_next(DecodePool *p, const float **image, ImageItem *item, char *err, int err_size) {
    pthread_mutex_lock(&p->mutex);
    if (p->holding) { // the caller is done with the previous item: its slot may be refilled
        p->slots[p->consumed % p->window].position = -1;
        p->consumed++;
        p->holding = 0;
        pthread_cond_broadcast(&p->changed);
    }
    if (p->consumed >= p->n) {
        pthread_mutex_unlock(&p->mutex);
        snprintf(err, (size_t)err_size, "decode pool: all %lld items were taken", (long long)p->n);
        return -1;
    }
    Slot *s = &p->slots[p->consumed % p->window];
    while (s->position != p->consumed) pthread_cond_wait(&p->changed, &p->mutex);
    p->holding = 1;
    pthread_mutex_unlock(&p->mutex);
    *image = s->image;
    *item = s->item;
    if (s->rc) snprintf(err, (size_t)err_size, "%s", s->err);
    return s->rc;
}

void decode_pool_stop(DecodePool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mutex);
    p->stop = 1;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 0; i < p->workers; i++) pthread_join(p->threads[i], NULL);
    for (int i = 0; i < p->window; i++) free(p->slots[i].image);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->changed);
    free(p->slots);
    free(p->threads);
    free(p->items);
    free(p);
}
