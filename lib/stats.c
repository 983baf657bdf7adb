#include "lib/stats.h"

#include <pthread.h>
#include <stdlib.h>

#define STATS_MAX_SOURCES 32

static struct {
	const char *key;
	stats_fill_fn fill;
	void *opaque;
} sources[STATS_MAX_SOURCES];
static int n_sources;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

int stats_register(const char *key, stats_fill_fn fill, void *opaque)
{
	pthread_mutex_lock(&lock);
	if (n_sources == STATS_MAX_SOURCES) {
		pthread_mutex_unlock(&lock);
		return -1;
	}
	sources[n_sources].key = key;
	sources[n_sources].fill = fill;
	sources[n_sources].opaque = opaque;
	n_sources++;
	pthread_mutex_unlock(&lock);
	return 0;
}

void stats_unregister(const void *opaque)
{
	pthread_mutex_lock(&lock);
	int out = 0;
	for (int i = 0; i < n_sources; i++)
		if (sources[i].opaque != opaque)
			sources[out++] = sources[i];
	n_sources = out;
	pthread_mutex_unlock(&lock);
}

void stats_unregister_all(void)
{
	pthread_mutex_lock(&lock);
	n_sources = 0;
	pthread_mutex_unlock(&lock);
}

void stats_fill_all(json_t *root)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < n_sources; i++) {
		json_t *obj = json_object();
		sources[i].fill(sources[i].opaque, obj);
		json_object_set_new(root, sources[i].key, obj);
	}
	pthread_mutex_unlock(&lock);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t stats_percentile(uint64_t *samples, size_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(samples, n, sizeof(*samples), cmp_u64);
	/* Nearest-rank method. */
	size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank == 0)
		rank = 1;
	if (rank > n)
		rank = n;
	return samples[rank - 1];
}
