/*
 * Sources of figures for the --stats JSON file and the report at exit.
 *
 * A subsystem with something to report (the fetch client, a device)
 * registers a callback once it exists; vm_write_stats calls each with a
 * JSON object to fill under the given key.
 */
#ifndef MINIVMM_STATS_H
#define MINIVMM_STATS_H

#include <jansson.h>
#include <stdint.h>

typedef void (*stats_fill_fn)(void *opaque, json_t *obj);

int stats_register(const char *key, stats_fill_fn fill, void *opaque);
/* Forget every source registered with opaque: a source's owner calls it
 * before freeing what the callback reads. */
void stats_unregister(const void *opaque);
void stats_unregister_all(void);
/* Add every registered source to root, each under its key. */
void stats_fill_all(json_t *root);

/* Percentiles over an array of samples (sorted in place). p in [0, 100]. */
uint64_t stats_percentile(uint64_t *samples, size_t n, double p);

#endif
