/*
 * What the cache's files share (fetch/cache.c: entries, locks, pending
 * downloads; cache_get.c: downloads; cache_trail.c: hashing on a second
 * thread; cache_gc.c: stats, usage, eviction). Private to fetch/cache*.c:
 * the contract for everyone else is cache.h. Every function here takes a
 * cache opened by cache_open; errors are written to err, as in cache.h.
 */
#ifndef MINIVMM_FETCH_CACHE_PRIV_H
#define MINIVMM_FETCH_CACHE_PRIV_H

#include "fetch/cache.h"

#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define HASH_BUF (1 << 20)       /* bytes hashed per read */

struct cache {
	char *dir;
	uint64_t max;
	enum cache_verify verify;
	bool nosync;
	pthread_mutex_t lock;
	/* Entries this process has verified (open addressing, linear probe). */
	struct vent *verified;
	size_t n_verified, cap_verified;
	_Atomic uint64_t approx_bytes;
	atomic_flag gc_busy;
	_Atomic uint64_t hits, misses, waits, bytes_fetched, bytes_served, corrupt, evictions,
		bytes_evicted, tmp_removed;
};

#define BLOBS_SUB "blobs/sha256"
#define LOCKS_SUB "locks"
#define TMP_SUB "tmp"

/* DIR/sub/<hex of d> into out; -1 if it does not fit. */
int cache_path_of(const struct cache *c, const char *sub, const uint8_t d[FETCH_SHA256_LEN],
		  char *out, size_t len);

/* SHA-256 of [off, off+len) of fd; -1 on a read error. */
int cache_hash_fd(int fd, uint64_t off, uint64_t len, uint8_t out[FETCH_SHA256_LEN]);

enum { ENTRY_ABSENT = 0, ENTRY_OK = 1, ENTRY_BAD = 2 };

/* Open the entry for digest, held LOCK_SH. Returns ENTRY_OK with *fd,
 * ENTRY_ABSENT, ENTRY_BAD (wrong size or digest; removed if remove_bad,
 * which the caller may only ask while holding the fetch lock), or -1. */
int cache_entry_open(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], uint64_t size,
		     bool remove_bad, int *fd, char *err, size_t errlen);

/* The fetch lock of d (locks/<hex>): the lock fd or -1; *waited is set if
 * another process or thread held it. Unlock drops it and its file. */
int cache_fetch_lock(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], bool block,
		     bool *waited, char *err, size_t errlen);
void cache_fetch_unlock(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], int lfd);

/* A download in progress: a tmp file under LOCK_EX. */
struct trail;
struct pending {
	int fd;
	int werr;              /* errno of a failed write to the tmp file */
	uint64_t written, flushed;
	uint64_t max;          /* bytes the download may have (0: no bound) */
	struct trail *trail;   /* hashing on another thread, or NULL */
	char tmp[PATH_MAX];    /* the fallback's name, or dir for an unnamed file */
	bool named;            /* the O_TMPFILE fallback: a name under tmp/ */
	char dir[PATH_MAX];    /* DIR/tmp */
	char hex[FETCH_SHA256_HEX];
};

/* A tmp file for d under DIR/tmp (unnamed where the file system can). */
int cache_pending_create(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], struct pending *p,
			 char *err, size_t errlen);
/* Drop a download: nothing of it stays. */
void cache_pending_abort(struct pending *p);
/* Make a finished, verified download the entry d (fsync, name, and with
 * fd open it read-only under LOCK_SH); on failure it is aborted. */
int cache_pending_commit(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], struct pending *p,
			 uint64_t bytes, int *fd, char *err, size_t errlen);

/* SHA-256 of a large download on a second thread, which reads back from
 * the page cache what the network thread has written so far: hashing then
 * overlaps receiving instead of adding to it. Bytes are appended in order
 * exactly once (fetch.h), so the file's prefix is always final. */
struct trail {
	pthread_t th;
	int fd;
	pthread_mutex_t m;
	pthread_cond_t cv;
	uint64_t avail, hashed;
	bool done, failed;
	EVP_MD_CTX *md;
};

/* Start hashing fd from offset 0 on a second thread; -1 if it cannot. */
int cache_trail_start(struct trail *t, int fd);
/* The file's first avail bytes are written and final. */
void cache_trail_feed(struct trail *t, uint64_t avail);
/* Wait for the hasher; 0 with the digest, -1 if it could not read. */
int cache_trail_finish(struct trail *t, uint8_t out[FETCH_SHA256_LEN]);

/* A hit on the entry open as fd, counted in the stats. */
void cache_count_hit(struct cache *c, int fd);
/* "blob sha256:<hex>: what" into err (what may point into err). */
void cache_name_err(char *err, size_t errlen, const uint8_t d[FETCH_SHA256_LEN], const char *what);

/* Bytes of every entry (a directory scan). */
uint64_t cache_scan_bytes(struct cache *c);
/* Evict down to AUTO_GC_PERCENT of the bound if the cache is over it. */
void cache_maybe_gc(struct cache *c);

#endif
