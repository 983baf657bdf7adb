/*
 * The background prefetcher (fs/prefetch.h).
 */
#include "fs/prefetch.h"
#include "lib/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/stats.h"

/* Prefetch requests allowed while an on-demand fault is in flight: one, so
 * the profile keeps moving but the link is the fault's. */
#define PREFETCH_UNDER_DEMAND 1

struct prefetch_stats prefetch_stats;

struct prefetch {
	struct prefetch_opts o;
	size_t *order;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t next;          /* position in order */
	uint64_t next_chunk;  /* chunk of order[next] to take next */
	unsigned active;      /* requests in flight */
	unsigned demand;      /* on-demand faults in flight */
	unsigned running;     /* threads not yet done */
	bool stop;
	unsigned n_threads;
	pthread_t threads[PREFETCH_MAX_PARALLEL];
};

static uint64_t chunks_to_take(const struct manifest_entry *e)
{
	if (!e->n_chunks)
		return 1;
	return e->n_chunks < PREFETCH_FILE_CHUNKS ? e->n_chunks : PREFETCH_FILE_CHUNKS;
}

/* Take the next (entry, chunk) when the priority rule allows; false when
 * the profile is done or we are stopping. Called with the lock held. */
static bool take(struct prefetch *p, size_t *idx, uint64_t *chunk)
{
	for (;;) {
		if (p->stop || p->next >= p->o.n_order)
			return false;
		unsigned limit = p->demand ? PREFETCH_UNDER_DEMAND : p->o.parallel;
		if (p->active < limit)
			break;
		pthread_cond_wait(&p->cond, &p->lock);
	}
	const struct manifest_entry *e = &p->o.mf->entries[p->order[p->next]];
	*idx = p->order[p->next];
	*chunk = p->next_chunk;
	if (++p->next_chunk >= chunks_to_take(e)) {
		p->next++;
		p->next_chunk = 0;
	}
	p->active++;
	return true;
}

/* Bring one blob or chunk into the cache unless it is there. */
static void fetch_one(struct prefetch *p, size_t idx, uint64_t chunk)
{
	const struct manifest_entry *e = &p->o.mf->entries[idx];
	if (!e->has_digest || !e->size)
		return;
	char err[FETCH_ERR_LEN];
	int fd = -1;
	const uint8_t *digest;
	uint64_t bytes;
	bool fetched;
	if (!e->n_chunks) {
		digest = e->digest;
		bytes = e->size;
		if (cache_has(p->o.cache, e->digest, e->size)) {
			prefetch_stats.already_cached++;
			return;
		}
		bool hit = false;
		if (cache_get_blob(p->o.cache, p->o.fc, p->o.blobs_url, e->digest, e->size, &fd, &hit,
				   err, sizeof(err)) < 0)
			goto fail;
		fetched = !hit;
	} else {
		if (chunk >= e->n_chunks || manifest_chunk_hole(e, p->o.chunk_size, chunk))
			return; /* a hole: zeros, nothing to fetch */
		digest = e->chunks[chunk];
		if (cache_has_chunk(p->o.cache, e->digest, e->size, p->o.chunk_size, chunk, digest)) {
			prefetch_stats.already_cached++;
			return;
		}
		uint64_t off = 0, len = 0;
		if (cache_get_chunk_from(p->o.cache, p->o.fc, p->o.blobs_url, e->digest, e->size,
					 p->o.chunk_size, chunk, digest, manifest_blob_name(e),
					 manifest_chunk_offset(e, p->o.chunk_size, chunk), &fd, &off,
					 &len, err, sizeof(err)) < 0)
			goto fail;
		bytes = len;
		fetched = true; /* or another process did: counted as ours, see claim */
	}
	close(fd);
	if (fetched && p->o.claim(p->o.claim_ctx, digest)) {
		prefetch_stats.bytes += bytes;
		prefetch_stats.requests++;
		if (!(atomic_fetch_or(&p->o.flags[idx], PREFETCH_F_FETCHED) & PREFETCH_F_FETCHED))
			prefetch_stats.files++;
	}
	return;
fail:
	prefetch_stats.errors++;
	log_debug("prefetch of '%s' failed: %s", e->path, err);
}

static void *prefetch_thread(void *arg)
{
	struct prefetch *p = arg;
	pthread_mutex_lock(&p->lock);
	size_t idx;
	uint64_t chunk;
	while (take(p, &idx, &chunk)) {
		pthread_mutex_unlock(&p->lock);
		fetch_one(p, idx, chunk);
		pthread_mutex_lock(&p->lock);
		p->active--;
		pthread_cond_broadcast(&p->cond);
	}
	if (--p->running == 0 && !p->stop && p->next >= p->o.n_order) {
		prefetch_stats.finished_ms = (clock_now_ns() - prefetch_stats.start_ns) / 1000000;
		prefetch_stats.finished = true;
		log_debug("prefetch: profile done in %llu ms",
			  (unsigned long long)prefetch_stats.finished_ms);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct prefetch *prefetch_start(const struct prefetch_opts *o, char *err, size_t errlen)
{
	struct prefetch *p = calloc(1, sizeof(*p));
	if (!p || !(p->order = malloc((o->n_order ? o->n_order : 1) * sizeof(*p->order)))) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->o = *o;
	if (!p->o.parallel)
		p->o.parallel = PREFETCH_DEFAULT_PARALLEL;
	if (p->o.parallel > PREFETCH_MAX_PARALLEL)
		p->o.parallel = PREFETCH_MAX_PARALLEL;
	memcpy(p->order, o->order, o->n_order * sizeof(*p->order));
	p->o.order = p->order;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	prefetch_stats.parallel = p->o.parallel;
	prefetch_stats.start_ns = clock_now_ns();
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < p->o.parallel; i++) {
		if (pthread_create(&p->threads[i], NULL, prefetch_thread, p) != 0)
			break;
		p->n_threads++;
		p->running++;
	}
	pthread_mutex_unlock(&p->lock);
	if (!p->n_threads) {
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
		free(p->order);
		free(p);
		snprintf(err, errlen, "cannot start prefetch threads");
		return NULL;
	}
	return p;
}

void prefetch_demand_begin(struct prefetch *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->demand++;
	if (p->next < p->o.n_order)
		prefetch_stats.demand_while_prefetching++;
	pthread_mutex_unlock(&p->lock);
}

void prefetch_demand_end(struct prefetch *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->demand--;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void prefetch_stop(struct prefetch *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	fetch_client_destroy(p->o.fc);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->order);
	free(p);
}

static void stats_fill(void *opaque, json_t *o)
{
	struct prefetch_stats *s = opaque;
	json_object_set_new(o, "enabled", json_boolean(s->enabled));
	json_object_set_new(o, "parallel", json_integer(s->parallel));
	json_object_set_new(o, "profile_entries", json_integer((json_int_t)s->profile_entries));
	json_object_set_new(o, "profile_files", json_integer((json_int_t)s->profile_files));
	json_object_set_new(o, "profile_skipped", json_integer((json_int_t)s->profile_skipped));
	json_object_set_new(o, "files", json_integer((json_int_t)s->files));
	json_object_set_new(o, "bytes", json_integer((json_int_t)s->bytes));
	json_object_set_new(o, "requests", json_integer((json_int_t)s->requests));
	json_object_set_new(o, "already_cached", json_integer((json_int_t)s->already_cached));
	json_object_set_new(o, "errors", json_integer((json_int_t)s->errors));
	json_object_set_new(o, "demand_served_from_prefetch", json_integer((json_int_t)s->demand_served));
	json_object_set_new(o, "demand_faults_while_prefetching",
			    json_integer((json_int_t)s->demand_while_prefetching));
	json_object_set_new(o, "finished", json_boolean(s->finished));
	json_object_set_new(o, "finished_ms", s->finished ? json_integer((json_int_t)s->finished_ms)
							  : json_null());
}

void prefetch_stats_register(void)
{
	static atomic_bool done;
	if (!atomic_exchange(&done, true))
		stats_register("prefetch", stats_fill, &prefetch_stats);
}
