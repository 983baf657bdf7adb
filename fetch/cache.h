/*
 * Content-addressed local cache of blobs, shared by every minivmm process
 * that uses the same directory (docs/storage.md).
 *
 *   DIR/blobs/sha256/<hex>   verified blob (or verified chunk of a blob,
 *                            stored under the chunk's own digest)
 *   DIR/locks/<hex>          per-blob fetch lock (flock LOCK_EX while one
 *                            process fetches it: the others wait, then hit)
 *   DIR/tmp/                 downloads in progress: unnamed files
 *                            (O_TMPFILE) linked in once verified, so a
 *                            killed process leaves nothing; where O_TMPFILE
 *                            is not supported, named and swept by gc
 *
 * An fd returned by cache_get_* holds a shared flock on the blob: eviction
 * (LRU by mtime, touched on use) skips locked blobs, so a running VM's
 * blobs stay. Close the fd to release it. Bytes that fail their digest
 * never get a name under blobs/.
 *
 * Integrity of existing entries: the size is checked on every use; the
 * SHA-256 is re-checked the first time a process uses an entry it did not
 * download itself, and again whenever the file changed since (its inode,
 * size or ctime differ: CACHE_VERIFY_FIRST_USE). A blob larger than the
 * cache's bound is refused before any byte is fetched. A bad entry is removed and
 * fetched again; so is anything else found under an entry's name (a
 * symlink is never followed, a FIFO never waited on, a directory never
 * served). A failed write of a download (ENOSPC) never leaves a partial
 * file with a name: a blob of known size up to 64 MiB is fetched again into
 * memory and served uncached; anything else fails with the errno named.
 *
 * All functions are thread-safe.
 */
#ifndef MINIVMM_CACHE_H
#define MINIVMM_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/fetch.h"

struct cache;
struct config;

#define CACHE_DEFAULT_MAX (10ULL << 30) /* 10 GiB */

enum cache_verify {
	CACHE_VERIFY_FIRST_USE, /* size always, digest once per process (default) */
	CACHE_VERIFY_SIZE,      /* size only: trust the local disk */
	CACHE_VERIFY_ALWAYS,    /* digest on every use (tests, paranoia) */
};

/* Open (creating) the cache at dir; dir NULL means the default,
 * $XDG_CACHE_HOME/minivmm or ~/.cache/minivmm. max_bytes 0 means
 * CACHE_DEFAULT_MAX. NULL with a message in err on failure. */
struct cache *cache_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen);
void cache_close(struct cache *c);
void cache_set_verify(struct cache *c, enum cache_verify v);
/* fsync each entry before naming it (default true). Without it an entry
 * may be torn by a host crash; CACHE_VERIFY_FIRST_USE then catches it on
 * the next run and fetches again, so turning it off trades a refetch after
 * a crash for fault latency (an fsync costs milliseconds). */
void cache_set_sync(struct cache *c, bool sync);
const char *cache_dir(const struct cache *c);
/* Default directory into buf; -1 if neither XDG_CACHE_HOME nor HOME is set. */
int cache_default_dir(char *buf, size_t len);

/* The verified blob digest (size bytes; size UINT64_MAX = unknown) as an
 * open read-only fd, fetched from blobs_base_url/<hex> if missing. Returns
 * 0, or -1 with a message naming the blob in err. *hit tells whether it was
 * already cached (may be NULL). */
int cache_get_blob(struct cache *c, struct fetch_client *fc, const char *blobs_base_url,
		   const uint8_t digest[FETCH_SHA256_LEN], uint64_t size, int *fd, bool *hit,
		   char *err, size_t errlen);
/* Same with the blob's full URL. */
int cache_get_url(struct cache *c, struct fetch_client *fc, const char *url,
		  const uint8_t digest[FETCH_SHA256_LEN], uint64_t size, int *fd, bool *hit,
		  char *err, size_t errlen);

/* Chunk chunk_index of a blob of blob_size bytes cut in chunk_size pieces
 * (the last may be short), verified against chunk_digest. If the whole blob
 * is cached, *fd is the blob and *offset the chunk's position in it;
 * otherwise only the chunk is fetched (HTTP Range), cached under
 * chunk_digest, and *offset is 0. *len gets the chunk's length. */
int cache_get_chunk(struct cache *c, struct fetch_client *fc, const char *blobs_base_url,
		    const uint8_t blob_digest[FETCH_SHA256_LEN], uint64_t blob_size,
		    uint64_t chunk_size, uint64_t chunk_index,
		    const uint8_t chunk_digest[FETCH_SHA256_LEN],
		    int *fd, uint64_t *offset, uint64_t *len, char *err, size_t errlen);

/* Same, for a chunk stored elsewhere than at chunk_index * chunk_size of
 * blob_digest: at src_offset of the blob named src (a packed file, image
 * format version 2: its blob holds only the chunks that are not zeros).
 * The whole file, when cached under blob_digest, still serves it. */
int cache_get_chunk_from(struct cache *c, struct fetch_client *fc, const char *blobs_base_url,
			 const uint8_t blob_digest[FETCH_SHA256_LEN], uint64_t blob_size,
			 uint64_t chunk_size, uint64_t chunk_index,
			 const uint8_t chunk_digest[FETCH_SHA256_LEN],
			 const uint8_t src[FETCH_SHA256_LEN], uint64_t src_offset,
			 int *fd, uint64_t *offset, uint64_t *len, char *err, size_t errlen);

/* The whole content of a packed file (digest, size bytes, n_chunks chunks
 * of chunk_size; hole[i]: chunk i is a whole chunk of zeros, left out) as
 * cache_get_blob gives a blob: fetched as the blob named src (src_size
 * bytes, checked against src), expanded into the cache sparse (holes as
 * holes), named digest once the expanded content hashes to it. */
int cache_get_packed(struct cache *c, struct fetch_client *fc, const char *blobs_base_url,
		     const uint8_t digest[FETCH_SHA256_LEN], uint64_t size, uint64_t chunk_size,
		     const bool *hole, size_t n_chunks, const uint8_t src[FETCH_SHA256_LEN],
		     uint64_t src_size, int *fd, bool *hit, char *err, size_t errlen);

/* Is the blob cached (a name under blobs/ of the right size)? No fetch. */
bool cache_has(struct cache *c, const uint8_t digest[FETCH_SHA256_LEN], uint64_t size);
/* Bytes in chunk chunk_index of a blob of blob_size cut in chunk_size
 * pieces (the last one may be short). The index must be in range. */
uint64_t cache_chunk_len(uint64_t blob_size, uint64_t chunk_size, uint64_t chunk_index);
/* Is that chunk readable without a fetch: the chunk itself, or the whole
 * blob, which serves every chunk (as cache_get_chunk reads them)? */
bool cache_has_chunk(struct cache *c, const uint8_t blob_digest[FETCH_SHA256_LEN],
		     uint64_t blob_size, uint64_t chunk_size, uint64_t chunk_index,
		     const uint8_t chunk_digest[FETCH_SHA256_LEN]);

/* Statistics of this process's use of the cache. */
struct cache_stats {
	uint64_t hits, misses, waits;  /* waits: another process was fetching it */
	uint64_t bytes_fetched, bytes_served_from_cache;
	uint64_t corrupt_refetched, evictions, bytes_evicted;
	uint64_t tmp_removed; /* abandoned temporary files gc removed */
};
void cache_get_stats(struct cache *c, struct cache_stats *out);

/* What is on disk now. */
struct cache_usage {
	uint64_t blobs, bytes, in_use, tmp_files;
};
int cache_usage(struct cache *c, struct cache_usage *u);

/* Evict least-recently-used blobs not in use until at most max_bytes
 * remain, and remove abandoned temporary files. max_bytes UINT64_MAX: the
 * cache's own bound. Returns blobs evicted, or -1. */
long cache_gc(struct cache *c, uint64_t max_bytes);
/* Remove every blob not in use. Returns blobs removed, or -1. */
long cache_clear(struct cache *c);

/* Register the "fetch" statistics source (lib/stats.h) for the VMM report:
 * requests and bytes by kind, retries, latency percentiles, cache hits and
 * misses. Either pointer may be NULL. */
int fetch_stats_register(struct fetch_client *fc, struct cache *c);

/* --cache-dir DIR and --cache-max SIZE for a command (from a constructor),
 * and cache_open from them. */
void cache_cli_register(const char *command);
struct cache *cache_open_from_config(const struct config *cfg, char *err, size_t errlen);

#endif
