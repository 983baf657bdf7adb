/*
 * Where the file-request server gets file content that is not in the
 * upper layer: the backend. The server itself never fetches.
 *
 * A backend answers for manifest entries of type MF_REG. Both calls may
 * block (a network fetch); the server calls them without holding its lock,
 * from any of its worker threads at once, so they must be thread-safe.
 *
 *   open_content  the whole verified content as a read-only fd, which the
 *                 server owns and closes. Used for files that are not
 *                 chunked (entry->n_chunks == 0) and for copy-up.
 *   read_range    bytes [off, off + len) of a chunked entry, fetching only
 *                 the chunks that hold them (reading 4 KiB of a 1 GiB file
 *                 fetches one chunk). Optional: without it chunked files go
 *                 through open_content too.
 *
 * Each call fills a struct fs_fetch_info so the server can tell a file
 * fault (content brought from the storage server) from a cache hit.
 */
#ifndef MINIVMM_FS_BACKEND_H
#define MINIVMM_FS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "image/manifest.h"

struct fs_fetch_info {
	bool fetched;       /* content was not local: this call went to the server */
	uint64_t bytes;     /* bytes brought over the network by this call */
	uint32_t requests;  /* requests made to the server by this call */
	/* The content was delivered (fetched or from a cache): the file was
	 * read, for the first-read order (fs_read_order). */
	bool served;
};

struct fs_backend {
	const char *name;
	/* Returns an fd (>= 0) or -errno (-EIO when the server is down after
	 * the fetch client's retries). */
	int (*open_content)(void *ctx, const struct manifest_entry *e, struct fs_fetch_info *info);
	/* Returns bytes read (short only at end of file) or -errno. */
	ssize_t (*read_range)(void *ctx, const struct manifest_entry *e, uint64_t off,
			      void *buf, size_t len, struct fs_fetch_info *info);
	/* Optional: release ctx (called by fs_destroy). */
	void (*destroy)(void *ctx);
};

/* The local-directory backend: entry paths are resolved below root_dir
 * (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: a symlink planted in the
 * host directory cannot lead outside it). Content is always local: no
 * faults. */
extern const struct fs_backend fs_backend_dir;
/* ctx for fs_backend_dir; NULL with errno set on failure. */
void *fs_backend_dir_open(const char *root_dir);

/* Build a manifest describing the host directory root_dir (no digests:
 * has_digest is false; content is served by fs_backend_dir). Hard links
 * within the tree become MF_HARDLINK entries. Returns NULL with a message
 * in err on failure. Free with fs_manifest_free. */
struct manifest *fs_manifest_from_dir(const char *root_dir, char *err, size_t errlen);
void fs_manifest_free(struct manifest *m);

#endif
