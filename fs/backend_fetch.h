/*
 * The storage backend of the file-request server: content by SHA-256 from
 * the image's blob store (blobs_url/<hex>) through the local
 * content-addressed cache (fetch/cache.h), verified on arrival. A file not
 * in the cache is a file fault: fetched whole (open_content), or chunk by
 * chunk with HTTP Range for chunked files (read_range), so reading 4 KiB
 * of a 1 GiB file fetches one chunk.
 *
 * Opened with fs_backend_fetch_open_local (a lazy root, fs/root.h), it
 * also runs the background prefetcher over the manifest's profile
 * (fs/prefetch.h; run options --no-prefetch, --prefetch-profile FILE,
 * --prefetch-parallel N), bracketing its own cache misses so the
 * prefetcher gives way to them. Each call that delivers content sets
 * fs_fetch_info.served, so the server records the first-read order.
 */
#ifndef MINIVMM_FS_BACKEND_FETCH_H
#define MINIVMM_FS_BACKEND_FETCH_H

#include <stddef.h>

#include "fetch/cache.h"
#include "fetch/fetch.h"
#include "fs/backend.h"

struct config;

extern const struct fs_backend fs_backend_fetch;

/* ctx for fs_backend_fetch: blobs under blobs_url (a URL ending in '/',
 * http(s):// or file://), files cut in chunk_size pieces. Borrows fc and
 * c unless owns is true (then destroy closes them). NULL on failure. */
void *fs_backend_fetch_open(struct fetch_client *fc, struct cache *c, const char *blobs_url,
			    uint64_t chunk_size, bool owns, char *err, size_t errlen);

/* Stop the background work (the prefetcher) of ctx; faults are still
 * served. Idempotent; destroy does it too. The lazy root calls it at
 * close, once no request is served any more. */
void fs_backend_fetch_stop(void *ctx);

/* For `--fs-root MANIFEST`: the blobs beside a local manifest file
 * (its directory + the manifest's blobs_url), read through a cache opened
 * from cfg's --cache-dir (default cache otherwise). */
void *fs_backend_fetch_open_local(const char *manifest_path, const struct manifest *mf,
				  const struct config *cfg, char *err, size_t errlen);

#endif
