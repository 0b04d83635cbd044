/* backend_sim.c: a GPIO backend that drives no pins and timestamps every edge into a ring. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stepgen.h"

typedef struct sim_backend {
    sg_backend base;
    sg_edge *ring;
    size_t capacity;
    /* Single producer (the pulse thread) and a reader serialised by read_mu: a lock-free
     * ring, so recording an edge never waits on a Python thread that is reading. */
    _Atomic uint64_t head; /* edges ever written */
    _Atomic uint64_t tail; /* edges ever read */
    _Atomic uint64_t dropped;
    pthread_mutex_t read_mu;
    unsigned values;
} sim_backend;

static int sim_set(sg_backend *b, unsigned mask, unsigned values, int64_t *t_ns)
{
    sim_backend *s = (sim_backend *)b;
    int64_t now = sg_now_ns();
    *t_ns = now;
    for (unsigned line = 0; line < SG_NUM_LINES; line++) {
        unsigned bit = 1u << line;
        if (!(mask & bit) || ((s->values ^ values) & bit) == 0)
            continue; /* not an edge */
        s->values = (s->values & ~bit) | (values & bit);
        uint64_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
        uint64_t tail = atomic_load_explicit(&s->tail, memory_order_acquire);
        if (head - tail >= s->capacity) {
            atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
            continue;
        }
        sg_edge *e = &s->ring[head % s->capacity];
        e->t_ns = now;
        e->line = (uint8_t)line;
        e->value = (values & bit) ? 1 : 0;
        atomic_store_explicit(&s->head, head + 1, memory_order_release);
    }
    return 0;
}

static long sim_read_edges(sg_backend *b, sg_edge *out, size_t max, uint64_t *dropped)
{
    sim_backend *s = (sim_backend *)b;
    pthread_mutex_lock(&s->read_mu);
    uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&s->head, memory_order_acquire);
    size_t n = 0;
    while (tail != head && n < max) {
        out[n++] = s->ring[tail % s->capacity];
        tail++;
    }
    atomic_store_explicit(&s->tail, tail, memory_order_release);
    pthread_mutex_unlock(&s->read_mu);
    if (dropped)
        *dropped = atomic_load_explicit(&s->dropped, memory_order_relaxed);
    return (long)n;
}

static void sim_close(sg_backend *b)
{
    sim_backend *s = (sim_backend *)b;
    pthread_mutex_destroy(&s->read_mu);
    free(s->ring);
    free(s);
}

sg_backend *sg_backend_sim_open(size_t capacity, char *err, size_t errlen)
{
    if (capacity == 0 || capacity > ((size_t)1 << 26)) {
        snprintf(err, errlen, "simulated backend: ring capacity %zu must be 1..%zu edges",
                 capacity, (size_t)1 << 26);
        return NULL;
    }
    sim_backend *s = calloc(1, sizeof(*s));
    sg_edge *ring = calloc(capacity, sizeof(*ring));
    if (!s || !ring) {
        free(s);
        free(ring);
        snprintf(err, errlen, "simulated backend: out of memory for %zu edges", capacity);
        return NULL;
    }
    /* Write every page now: the pulse thread records into it and must never take a page
     * fault there (calloc leaves large blocks as untouched zero pages). */
    memset(ring, 0, capacity * sizeof(*ring));
    s->ring = ring;
    s->capacity = capacity;
    pthread_mutex_init(&s->read_mu, NULL);
    s->base.set = sim_set;
    s->base.read_edges = sim_read_edges;
    s->base.close = sim_close;
    s->base.concurrent_safe = 0;
    return &s->base;
}

void sg_backend_close(sg_backend *b)
{
    if (b)
        b->close(b);
}
