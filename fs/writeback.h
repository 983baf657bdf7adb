/*
 * Write-back of the guest's changes when the VM stops (fs/writeback.c),
 * driven by the lazy root (fs/root.h) and by `minivmm writeback`.
 *
 * The new image is staged first in STATE_DIR/pending: a blob for each new
 * or changed file (unchanged files keep their digests: only changes
 * travel) and the new manifest. Then it is pushed to where the image came
 * from, blobs first and the manifest last in one write, so the store holds
 * the old image or the new one, never a mix. A blob already in the store
 * counts only if whole (size over HTTP, digest locally); the manifest
 * replaces the store's only if that is still the image this run started
 * from, or merges with it path by path (another writer published since),
 * else fails ("image changed since this run started"). A failed or killed push
 * leaves the stage in place; `minivmm writeback STATE_DIR` completes it
 * (docs/storage.md: crash safety, the MINIVMM_FAULT_KILL_AFTER test hook).
 */
#ifndef MINIVMM_FS_WRITEBACK_H
#define MINIVMM_FS_WRITEBACK_H

#include <stdbool.h>
#include <stdint.h>

#include "fs/fs.h"
#include "image/manifest.h"

struct config;

/* At VM stop: stage and, after a clean poweroff, push unless
 * --no-writeback or nothing changed. mf is the image the guest started
 * from, target its manifest's path or URL (NULL: a host directory root,
 * nothing to write back to). Returns
 *   0  written back, or nothing to do: the state dir may go;
 *   1  kept in the state dir on purpose (host directory root, a stop that
 *      was not a poweroff: `minivmm writeback` pushes it later);
 *  -1  a write-back that did not complete (push refused, outage, a change
 *      no manifest can hold, a stage that could not be built), after a
 *      message naming what is kept and the command to retry.
 * The lazy root turns -1 into EXIT_FAILURE_IO. */
int fs_writeback_at_exit(struct fs *fs, const struct manifest *mf, const struct config *cfg,
			 const char *target, const char *state_dir, bool clean_stop);
/* Push what STATE_DIR/pending holds (minivmm writeback STATE_DIR), then
 * remove it. cfg (may be NULL) gives the fetch options (--fetch-timeout
 * ...). Returns 0, or -1 with err; the stage is kept on failure. */
int fs_writeback_push(const char *state_dir, const struct config *cfg, char *err, size_t errlen);
/* Is a stage waiting in STATE_DIR (completing one a kill interrupted)? */
bool fs_writeback_pending(const char *state_dir);
/* A stop signal while the root closes (lazy_root_interrupt): during a
 * push, exits the process with 128 + sig at once (safe at any point);
 * before it, records the signal and returns: the stage is finished (the
 * new names exist only in memory until then), then the process exits
 * instead of pushing. */
void fs_writeback_interrupt(int sig);
/* Bytes of blobs pushed by this process (for the report). */
uint64_t fs_writeback_bytes(void);

#endif
