/*
 * The cache's accounting and eviction: stats (cache_get_stats), usage
 * (`cache stats`: cache_usage), gc by LRU (cache_gc, cache_clear, and the
 * automatic one after a commit), sweeping abandoned downloads and locks.
 * Eviction takes LOCK_EX|LOCK_NB on a blob, so it skips blobs in use.
 */
#include "fetch/cache_priv.h"
#include "lib/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_ABANDONED_S 60       /* an unlocked tmp file this old is garbage */
#define AUTO_GC_PERCENT 90       /* automatic gc shrinks to this share of max */

/* --- stats, usage, gc --- */

void cache_get_stats(struct cache *c, struct cache_stats *o)
{
	o->hits = atomic_load(&c->hits);
	o->misses = atomic_load(&c->misses);
	o->waits = atomic_load(&c->waits);
	o->bytes_fetched = atomic_load(&c->bytes_fetched);
	o->bytes_served_from_cache = atomic_load(&c->bytes_served);
	o->corrupt_refetched = atomic_load(&c->corrupt);
	o->evictions = atomic_load(&c->evictions);
	o->bytes_evicted = atomic_load(&c->bytes_evicted);
	o->tmp_removed = atomic_load(&c->tmp_removed);
}

struct ent {
	char name[FETCH_SHA256_HEX];
	uint64_t size;
	struct timespec mtime;
};

/* Every entry under blobs/ (names that are not 64 hex digits are ignored). */
static int list_entries(struct cache *c, struct ent **out, size_t *n)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", c->dir, BLOBS_SUB);
	DIR *dp = opendir(path);
	if (!dp)
		return -1;
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	struct dirent *de;
	uint8_t d[FETCH_SHA256_LEN];
	while ((de = readdir(dp))) {
		if (fetch_hex_to_sha256(de->d_name, d) < 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			struct ent *p = realloc(*out, cap * sizeof(**out));
			if (!p) {
				closedir(dp);
				free(*out);
				*out = NULL;
				return -1;
			}
			*out = p;
		}
		struct ent *en = &(*out)[(*n)++];
		fetch_sha256_to_hex(d, en->name);
		en->size = (uint64_t)st.st_size;
		en->mtime = st.st_mtim;
	}
	closedir(dp);
	return 0;
}

uint64_t cache_scan_bytes(struct cache *c)
{
	struct ent *e;
	size_t n;
	uint64_t sum = 0;
	if (list_entries(c, &e, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		sum += e[i].size;
	free(e);
	return sum;
}

static int cmp_lru(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Seconds since st's mtime; 0 for a time ahead of ours. File times can be
 * finer-grained than time(2) (multigrain timestamps, Linux 6.13), so a file
 * written this instant may look up to a second in the future: as an
 * unsigned difference that was an age of 2^64 s, and gc removed a download
 * in progress as "abandoned". */
static uint64_t file_age_s(const struct stat *st)
{
	int64_t age = (int64_t)time(NULL) - (int64_t)st->st_mtime;
	return age > 0 ? (uint64_t)age : 0;
}

/* Remove dir/sub/name if nobody holds a lock on it: 1 removed, 0 in use. */
static int remove_if_unlocked(struct cache *c, const char *sub, const char *name, uint64_t min_age_s)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s/%s", c->dir, sub, name);
	int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0)
		return 0;
	int removed = 0;
	struct stat a, b;
	if (flock(f, LOCK_EX | LOCK_NB) == 0 && fstat(f, &a) == 0 &&
	    file_age_s(&a) >= min_age_s && stat(path, &b) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev && unlink(path) == 0)
		removed = 1;
	close(f);
	return removed;
}

/* Remove what nobody holds in dir/sub; returns how many. */
static uint64_t sweep_dir(struct cache *c, const char *sub, uint64_t min_age_s, bool locks_of_absent)
{
	char path[PATH_MAX];
	uint64_t removed = 0;
	snprintf(path, sizeof(path), "%s/%s", c->dir, sub);
	DIR *dp = opendir(path);
	if (!dp)
		return 0;
	struct dirent *de;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		if (locks_of_absent) {
			uint8_t d[FETCH_SHA256_LEN];
			if (fetch_hex_to_sha256(de->d_name, d) < 0 || cache_has(c, d, UINT64_MAX))
				continue;
		}
		removed += (uint64_t)remove_if_unlocked(c, sub, de->d_name, min_age_s);
	}
	closedir(dp);
	return removed;
}

static long gc_to(struct cache *c, uint64_t target, uint64_t tmp_age_s)
{
	struct ent *e;
	size_t n;
	if (list_entries(c, &e, &n) < 0)
		return -1;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += e[i].size;
	long evicted = 0;
	if (total > target) {
		qsort(e, n, sizeof(*e), cmp_lru);
		for (size_t i = 0; i < n && total > target; i++) {
			if (!remove_if_unlocked(c, BLOBS_SUB, e[i].name, 0))
				continue; /* in use by a running VM */
			total -= e[i].size;
			evicted++;
			atomic_fetch_add(&c->evictions, 1);
			atomic_fetch_add(&c->bytes_evicted, e[i].size);
		}
	}
	atomic_store(&c->approx_bytes, total);
	free(e);
	/* Downloads of killed processes: unlocked, and old enough not to be
	 * one that has not taken its lock yet. */
	atomic_fetch_add(&c->tmp_removed, sweep_dir(c, TMP_SUB, tmp_age_s, false));
	sweep_dir(c, LOCKS_SUB, 0, true);
	return evicted;
}

long cache_gc(struct cache *c, uint64_t max_bytes)
{
	return gc_to(c, max_bytes == UINT64_MAX ? c->max : max_bytes, TMP_ABANDONED_S);
}

long cache_clear(struct cache *c)
{
	return gc_to(c, 0, 0);
}

void cache_maybe_gc(struct cache *c)
{
	if (atomic_load(&c->approx_bytes) <= c->max)
		return;
	if (atomic_flag_test_and_set(&c->gc_busy))
		return; /* another thread is at it */
	long n = gc_to(c, c->max / 100 * AUTO_GC_PERCENT, TMP_ABANDONED_S);
	if (n > 0)
		log_debug("cache: evicted %ld blobs", n);
	atomic_flag_clear(&c->gc_busy);
}

int cache_usage(struct cache *c, struct cache_usage *u)
{
	memset(u, 0, sizeof(*u));
	struct ent *e;
	size_t n;
	if (list_entries(c, &e, &n) < 0)
		return -1;
	char path[PATH_MAX];
	for (size_t i = 0; i < n; i++) {
		u->blobs++;
		u->bytes += e[i].size;
		snprintf(path, sizeof(path), "%s/%s/%s", c->dir, BLOBS_SUB, e[i].name);
		int f = open(path, O_RDONLY | O_CLOEXEC);
		if (f < 0)
			continue;
		if (flock(f, LOCK_EX | LOCK_NB) < 0)
			u->in_use++;
		close(f);
	}
	free(e);
	snprintf(path, sizeof(path), "%s/%s", c->dir, TMP_SUB);
	DIR *dp = opendir(path);
	if (dp) {
		struct dirent *de;
		while ((de = readdir(dp)))
			if (de->d_name[0] != '.')
				u->tmp_files++;
		closedir(dp);
	}
	return 0;
}
