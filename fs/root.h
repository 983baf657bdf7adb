/*
 * The lazy root: everything between "serve this image" and "the user is
 * done with it", for the two users of the file-request server (the
 * virtio-fs device of `run`, and `fs mount`). Start here to follow a lazy
 * root's life.
 *
 *   lazy_root_open   the source (a host directory, a local manifest, or an
 *                    image URL) -> the manifest, the backend (the cache,
 *                    the fetch client, the prefetcher), the state directory
 *                    (the user's, or a temporary one) and the struct fs.
 *   lazy_root_fs     the server to hand FUSE requests to (fs/fs.h).
 *   lazy_root_close  once no request is served any more: stop the
 *                    prefetcher, print the report, write the recorded
 *                    first-read order (--record-profile), write back (push
 *                    only after a clean outcome), remove a temporary state
 *                    directory that holds nothing kept. Returns the exit
 *                    status the caller should end with: 0, or
 *                    EXIT_FAILURE_IO when a write-back did not complete
 *                    (the message and the retry command are printed).
 *   lazy_root_free   release the memory (after the last look at the figures,
 *                    --stats). Without a close (the root could not be
 *                    used), a temporary state directory goes unless it
 *                    holds changes.
 *
 * Write-back (fs/writeback.h) is driven from here and nowhere else.
 */
#ifndef MINIVMM_FS_ROOT_H
#define MINIVMM_FS_ROOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/fs.h"

struct config;
struct lazy_root;

/* The config key (not an option a user passes) under which `run
 * --image-url` names the remote image whose local manifest copy the root
 * is opened from: write-back goes there, not to the copy. */
#define LAZY_ROOT_WRITEBACK_TARGET_KEY "writeback-target"

struct lazy_root_options {
	/* The command's options, read where they are used: --cache-dir,
	 * --fetch-*, --allow-blob-origin (the fetch side), --no-prefetch,
	 * --prefetch-profile, --prefetch-parallel (the prefetcher),
	 * --record-profile, --no-writeback, LAZY_ROOT_WRITEBACK_TARGET_KEY.
	 * Borrowed until lazy_root_free. */
	const struct config *cfg;
	const char *state_dir;  /* NULL: a new temporary directory under TMPDIR */
	bool read_only;         /* refuse every change (EROFS) */
	uint64_t max_files;     /* 0: FS_DEFAULT_MAX_FILES */
	/* Stage the changes at close (and push them after a clean outcome).
	 * false: they stay in the state directory's upper layer only. */
	bool writeback;
};

/* NULL with a message in err (naming the source, or the state directory
 * when it holds a stage never pushed: a new run would overwrite it). */
struct lazy_root *lazy_root_open(const char *source, const struct lazy_root_options *o,
				 char *err, size_t errlen);
struct fs *lazy_root_fs(struct lazy_root *r);
const char *lazy_root_state_dir(const struct lazy_root *r);

enum lazy_root_outcome {
	LAZY_ROOT_CLEAN,    /* the guest powered off, the mount was unmounted: write back */
	LAZY_ROOT_ABORTED,  /* a crash, a signal, a test's exit: stage only, keep the changes */
};

int lazy_root_close(struct lazy_root *r, enum lazy_root_outcome outcome);

/* A stop signal while lazy_root_close runs (or before it): a push under
 * way ends the process at once with 128 + sig; a stage is finished
 * first, then the process exits instead of pushing. */
void lazy_root_interrupt(struct lazy_root *r, int sig);

/* Bytes of blobs the close pushed (for --stats). */
uint64_t lazy_root_written_back(const struct lazy_root *r);

void lazy_root_free(struct lazy_root *r);

#endif
