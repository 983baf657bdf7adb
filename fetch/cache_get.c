/*
 * The cache's download path: a whole blob (cache_get_url, cache_get_blob),
 * one chunk of it (cache_get_chunk, cache_get_chunk_from), a packed file
 * expanded as it streams (cache_get_packed), and the memory fallback for
 * a full disk. Each takes the fetch lock, writes a pending file verified
 * as it streams, and commits it (cache_priv.h).
 */
#include "fetch/cache_priv.h"
#include "lib/io.h"
#include "lib/sparse.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define WRITEBACK_STEP (8 << 20)  /* bytes between writeback kicks */
#define TRAIL_MIN (16ULL << 20)   /* blobs this large hash on a second thread */
#define NOSPACE_MEMORY_MAX (64ULL << 20) /* disk full: blobs up to this are served from memory */

static int sink_write(void *ctx, const void *data, size_t len)
{
	struct pending *p = ctx;
	const char *s = data;
	if (p->max && len > p->max - p->written)
		return -1; /* more than the blob can be: never written */
	if (write_all(p->fd, s, len) < 0) {
		p->werr = errno; /* ENOSPC, EDQUOT, EIO: named in the error */
		return -1;
	}
	p->written += len;
	if (p->trail)
		cache_trail_feed(p->trail, p->written);
	/* Start writeback while the rest streams in, so the final fsync of
	 * a large blob waits for the tail only. */
	if (p->written - p->flushed >= WRITEBACK_STEP) {
		sync_file_range(p->fd, (off_t)p->flushed, (off_t)(p->written - p->flushed),
				SYNC_FILE_RANGE_WRITE);
		p->flushed = p->written;
	}
	return 0;
}

/* [off, off+len) of url (len 0: all of it), size bytes that must hash to d,
 * into an anonymous memory file: for a full cache disk. */
struct capped {
	struct pending p;
	uint64_t max;
};

static int sink_capped(void *ctx, const void *data, size_t len)
{
	struct capped *m = ctx;
	if (len > m->max - m->p.written)
		return -1; /* more than the blob's size: never held in memory */
	return sink_write(&m->p, data, len);
}

static int get_uncached(struct fetch_client *fc, const char *url, uint64_t off, uint64_t len,
			const uint8_t d[FETCH_SHA256_LEN], uint64_t size, int *fd, char *err,
			size_t errlen)
{
	struct capped cm = {.p = {.fd = memfd_create("minivmm-blob", MFD_CLOEXEC)}, .max = size};
	struct pending *mp = &cm.p;
	if (mp->fd < 0) {
		char what[FETCH_ERR_LEN];
		snprintf(what, sizeof(what), "cache disk full, and no memory file: %s", strerror(errno));
		cache_name_err(err, errlen, d, what);
		return -1;
	}
	struct fetch_req q = {.url = url, .method = FETCH_GET, .offset = off, .length = len,
			      .sha256 = d, .sink = sink_capped, .sink_ctx = &cm};
	fetch_run(fc, &q, 1);
	if (q.result == 0 && q.bytes != size) {
		q.result = -1;
		snprintf(q.err, sizeof(q.err), "%s: %" PRIu64 " bytes, expected %" PRIu64, url, q.bytes, size);
	}
	if (q.result != 0) {
		if (mp->werr)
			snprintf(q.err, sizeof(q.err), "cache disk full, and memory too: %s", strerror(mp->werr));
		cache_name_err(err, errlen, d, q.err);
		close(mp->fd);
		return -1;
	}
	*fd = mp->fd;
	return 0;
}

/* A blob the cache cannot hold is refused before a byte is fetched: the
 * manifest's size for it is the server's word, and writing gigabytes only
 * to evict them (or fail the digest) helps nobody. */
static int cache_refuse_size(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], uint64_t size,
			     char *err, size_t errlen)
{
	if (size == UINT64_MAX || size <= c->max)
		return 0;
	char what[200];
	snprintf(what, sizeof(what), "%" PRIu64 " bytes, more than the cache may hold "
		 "(--cache-max %" PRIu64 "): not fetching it", size, c->max);
	cache_name_err(err, errlen, d, what);
	return -1;
}

/* The entry named d if the cache has it (a hit, *fd open); otherwise the
 * fetch lock for d, taken and held in *lfd, with the miss counted: the
 * caller downloads, then unlocks. Looked up again under the lock, since
 * another process may have fetched it while this one waited. Returns 1
 * (hit), 0 (miss, locked) or -1. */
static int lookup_or_lock(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], uint64_t size,
			  int *fd, bool *hit, int *lfd, char *err, size_t errlen)
{
	int r = cache_entry_open(c, d, size, false, fd, err, errlen);
	if (r < 0)
		return -1;
	if (r != ENTRY_OK) {
		bool waited = false;
		*lfd = cache_fetch_lock(c, d, true, &waited, err, errlen);
		if (*lfd < 0)
			return -1;
		if (waited)
			atomic_fetch_add(&c->waits, 1);
		r = cache_entry_open(c, d, size, true, fd, err, errlen);
		if (r == ENTRY_OK || r < 0)
			cache_fetch_unlock(c, d, *lfd);
		if (r < 0)
			return -1;
	}
	if (hit)
		*hit = r == ENTRY_OK;
	if (r == ENTRY_OK) {
		cache_count_hit(c, *fd);
		return 1;
	}
	atomic_fetch_add(&c->misses, 1);
	return 0;
}

/* The core of every get: the entry named d, which is [off, off+len) of url
 * (len 0: all of it) and must be size bytes long (UINT64_MAX: unknown). */
static int get_object(struct cache *c, struct fetch_client *fc, const char *url, uint64_t off,
		      uint64_t len, const uint8_t d[FETCH_SHA256_LEN], uint64_t size, int *fd,
		      bool *hit, char *err, size_t errlen)
{
	if (cache_refuse_size(c, d, size, err, errlen) < 0)
		return -1;
	int lfd = -1;
	int r = lookup_or_lock(c, d, size, fd, hit, &lfd, err, errlen);
	if (r != 0)
		return r < 0 ? -1 : 0;
	int rc = -1;
	struct pending p;
	if (cache_pending_create(c, d, &p, err, errlen) < 0)
		goto out;
	/* A large (or unknown) whole blob is hashed on a second thread. */
	struct trail t;
	bool trailing = !off && !len && (size == UINT64_MAX || size >= TRAIL_MIN) &&
			cache_trail_start(&t, p.fd) == 0;
	p.trail = trailing ? &t : NULL;
	/* Never more bytes than the blob has (or, size unknown, than the
	 * cache holds). */
	p.max = size != UINT64_MAX ? size : c->max;
	struct fetch_req q = {.url = url, .method = FETCH_GET, .offset = off, .length = len,
			      .sha256 = trailing ? NULL : d, .sink = sink_write, .sink_ctx = &p,
			      .max_bytes = p.max};
	fetch_run(fc, &q, 1);
	if (trailing) {
		uint8_t got[FETCH_SHA256_LEN];
		int tr = cache_trail_finish(&t, got);
		if (q.result == 0 && (tr < 0 || memcmp(got, d, FETCH_SHA256_LEN) != 0)) {
			char want_hex[FETCH_SHA256_HEX], got_hex[FETCH_SHA256_HEX];
			fetch_sha256_to_hex(d, want_hex);
			fetch_sha256_to_hex(got, got_hex);
			q.result = -1;
			if (tr < 0)
				snprintf(q.err, sizeof(q.err), "%s: cannot hash the download", url);
			else
				snprintf(q.err, sizeof(q.err), "%s: sha256 mismatch: expected %s, got %s", url,
					 want_hex, got_hex);
		}
	}
	if (q.result != 0) {
		int werr = p.werr;
		if (werr)
			snprintf(q.err, sizeof(q.err), "cache: cannot write %.400s: %s", p.tmp, strerror(werr));
		cache_pending_abort(&p);
		uint64_t want = len ? len : size;
		if ((werr == ENOSPC || werr == EDQUOT) && fd && want != UINT64_MAX &&
		    want <= NOSPACE_MEMORY_MAX) {
			/* The disk is full, not the network down: fetch again into
			 * memory, verified the same way, and serve that uncached. */
			char hex[FETCH_SHA256_HEX];
			fetch_sha256_to_hex(d, hex);
			log_warn("cache: %s; serving sha256:%s (%" PRIu64 " bytes) from memory, uncached",
				 q.err, hex, want);
			rc = get_uncached(fc, url, off, len, d, want, fd, err, errlen);
			goto out;
		}
		cache_name_err(err, errlen, d, q.err);
		goto out;
	}
	if (size != UINT64_MAX && q.bytes != size) {
		char what[FETCH_ERR_LEN];
		snprintf(what, sizeof(what), "%s: %" PRIu64 " bytes, expected %" PRIu64, url, q.bytes, size);
		cache_name_err(err, errlen, d, what);
		cache_pending_abort(&p);
		goto out;
	}
	rc = cache_pending_commit(c, d, &p, q.bytes, fd, err, errlen);
out:
	cache_fetch_unlock(c, d, lfd);
	return rc;
}

int cache_get_url(struct cache *c, struct fetch_client *fc, const char *url,
		  const uint8_t digest[FETCH_SHA256_LEN], uint64_t size, int *fd, bool *hit,
		  char *err, size_t errlen)
{
	return get_object(c, fc, url, 0, 0, digest, size, fd, hit, err, errlen);
}

int cache_get_blob(struct cache *c, struct fetch_client *fc, const char *blobs_base_url,
		   const uint8_t digest[FETCH_SHA256_LEN], uint64_t size, int *fd, bool *hit,
		   char *err, size_t errlen)
{
	char url[4096];
	if (fetch_blob_url(blobs_base_url, digest, url, sizeof(url)) < 0) {
		snprintf(err, errlen, "blob URL too long");
		return -1;
	}
	return get_object(c, fc, url, 0, 0, digest, size, fd, hit, err, errlen);
}

uint64_t cache_chunk_len(uint64_t blob_size, uint64_t chunk_size, uint64_t chunk_index)
{
	uint64_t start = chunk_index * chunk_size;
	return blob_size - start < chunk_size ? blob_size - start : chunk_size;
}

bool cache_has_chunk(struct cache *c, const uint8_t blob_digest[FETCH_SHA256_LEN],
		     uint64_t blob_size, uint64_t chunk_size, uint64_t chunk_index,
		     const uint8_t chunk_digest[FETCH_SHA256_LEN])
{
	return cache_has(c, chunk_digest, cache_chunk_len(blob_size, chunk_size, chunk_index)) ||
	       cache_has(c, blob_digest, blob_size);
}

int cache_get_chunk(struct cache *c, struct fetch_client *fc, const char *blobs_base_url,
		    const uint8_t blob_digest[FETCH_SHA256_LEN], uint64_t blob_size,
		    uint64_t chunk_size, uint64_t chunk_index,
		    const uint8_t chunk_digest[FETCH_SHA256_LEN],
		    int *fd, uint64_t *offset, uint64_t *len, char *err, size_t errlen)
{
	return cache_get_chunk_from(c, fc, blobs_base_url, blob_digest, blob_size, chunk_size,
				    chunk_index, chunk_digest, blob_digest, chunk_index * chunk_size,
				    fd, offset, len, err, errlen);
}

int cache_get_chunk_from(struct cache *c, struct fetch_client *fc, const char *blobs_base_url,
			 const uint8_t blob_digest[FETCH_SHA256_LEN], uint64_t blob_size,
			 uint64_t chunk_size, uint64_t chunk_index,
			 const uint8_t chunk_digest[FETCH_SHA256_LEN],
			 const uint8_t src[FETCH_SHA256_LEN], uint64_t src_offset,
			 int *fd, uint64_t *offset, uint64_t *len, char *err, size_t errlen)
{
	if (!chunk_size || blob_size == UINT64_MAX || chunk_index >= (blob_size + chunk_size - 1) / chunk_size) {
		cache_name_err(err, errlen, blob_digest, "chunk index out of range");
		return -1;
	}
	uint64_t start = chunk_index * chunk_size;
	uint64_t clen = cache_chunk_len(blob_size, chunk_size, chunk_index);
	*len = clen;
	/* The whole blob, if present, serves every chunk. */
	int r = cache_entry_open(c, blob_digest, blob_size, false, fd, err, errlen);
	if (r < 0)
		return -1;
	if (r == ENTRY_OK) {
		atomic_fetch_add(&c->hits, 1);
		atomic_fetch_add(&c->bytes_served, clen);
		*offset = start;
		return 0;
	}
	char url[4096];
	if (fetch_blob_url(blobs_base_url, src, url, sizeof(url)) < 0) {
		snprintf(err, errlen, "blob URL too long");
		return -1;
	}
	*offset = 0;
	return get_object(c, fc, url, src_offset, clen, chunk_digest, clen, fd, NULL, err, errlen);
}

/* The packed blob as it streams in, written at the file's own offsets:
 * each byte goes to the next chunk that is not a hole. Blocks of zeros
 * are skipped too (the file is new and empty), so the entry is sparse. */
struct expand {
	struct pending *p;
	const bool *hole;
	size_t n_chunks, chunk;
	uint64_t chunk_size, size, in_chunk;
};

static int sink_expand(void *ctx, const void *data, size_t len)
{
	struct expand *x = ctx;
	const uint8_t *d = data;
	while (len) {
		while (x->chunk < x->n_chunks && x->in_chunk == 0 && x->hole[x->chunk])
			x->chunk++;
		if (x->chunk >= x->n_chunks)
			return -1; /* more than the file's chunks hold */
		uint64_t at = (uint64_t)x->chunk * x->chunk_size;
		uint64_t clen = cache_chunk_len(x->size, x->chunk_size, x->chunk);
		size_t n = clen - x->in_chunk < len ? (size_t)(clen - x->in_chunk) : len;
		if (sparse_pwrite(x->p->fd, d, n, (off_t)(at + x->in_chunk)) < 0) {
			x->p->werr = errno;
			return -1;
		}
		x->p->written += n;
		d += n, len -= n, x->in_chunk += n;
		if (x->in_chunk == clen)
			x->chunk++, x->in_chunk = 0;
	}
	return 0;
}

int cache_get_packed(struct cache *c, struct fetch_client *fc, const char *blobs_base_url,
		     const uint8_t digest[FETCH_SHA256_LEN], uint64_t size, uint64_t chunk_size,
		     const bool *hole, size_t n_chunks, const uint8_t src[FETCH_SHA256_LEN],
		     uint64_t src_size, int *fd, bool *hit, char *err, size_t errlen)
{
	if (!chunk_size || n_chunks != (size + chunk_size - 1) / chunk_size || src_size > size) {
		cache_name_err(err, errlen, digest, "packed file: chunks and size disagree");
		return -1;
	}
	if (cache_refuse_size(c, digest, size, err, errlen) < 0)
		return -1;
	int lfd = -1;
	int r = lookup_or_lock(c, digest, size, fd, hit, &lfd, err, errlen);
	if (r != 0)
		return r < 0 ? -1 : 0;
	int rc = -1;
	char url[4096];
	struct pending p;
	if (fetch_blob_url(blobs_base_url, src, url, sizeof(url)) < 0) {
		cache_name_err(err, errlen, digest, "blob URL too long");
		goto out;
	}
	if (cache_pending_create(c, digest, &p, err, errlen) < 0)
		goto out;
	struct expand x = {.p = &p, .hole = hole, .n_chunks = n_chunks, .chunk_size = chunk_size,
			   .size = size};
	/* The packed bytes must be the blob src names; the file they expand
	 * to must be the one digest names: only then does it get that name. */
	struct fetch_req q = {.url = url, .method = FETCH_GET, .sha256 = src, .sink = sink_expand,
			      .sink_ctx = &x, .max_bytes = src_size};
	fetch_run(fc, &q, 1);
	uint8_t got[FETCH_SHA256_LEN];
	if (q.result == 0 && q.bytes != src_size) {
		q.result = -1;
		snprintf(q.err, sizeof(q.err), "%.400s: %" PRIu64 " bytes, expected %" PRIu64, url,
			 q.bytes, src_size);
	}
	if (q.result == 0 && (ftruncate(p.fd, (off_t)size) < 0 || cache_hash_fd(p.fd, 0, size, got) < 0 ||
			      memcmp(got, digest, FETCH_SHA256_LEN) != 0)) {
		q.result = -1;
		snprintf(q.err, sizeof(q.err), "%.400s: expanded, it does not match the file's digest", url);
	}
	if (q.result != 0) {
		if (p.werr)
			snprintf(q.err, sizeof(q.err), "cache: cannot write %.400s: %s", p.tmp,
				 strerror(p.werr));
		cache_pending_abort(&p);
		cache_name_err(err, errlen, digest, q.err);
		goto out;
	}
	rc = cache_pending_commit(c, digest, &p, q.bytes, fd, err, errlen);
out:
	cache_fetch_unlock(c, digest, lfd);
	return rc;
}
