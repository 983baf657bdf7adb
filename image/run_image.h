/*
 * `minivmm run --image-url URL [--mode full|lazy]`: the image's side of a
 * run. Before the VM is made, image_run_prepare fetches the manifest,
 * probes /dev/kvm (vm_kvm_probe: no download for a VM that cannot start),
 * then fetches what the mode boots from through the blob cache (fetch/cache.h),
 * verified, and hands run a config derived from the user's with --kernel,
 * --initrd and --cmdline filled in, plus
 *   full: --disk (a private writable copy of the image's ext4 disk), root
 *         on /dev/vda through the full initramfs;
 *   lazy: --fs-root (the manifest, saved locally with an absolute blobs
 *         URL), root on the file-request device through the lazy initramfs.
 *         The file-request backend then prefetches the manifest's profile
 *         and records one for --record-profile (fs/backend_fetch.c,
 *         fs/prefetch.h).
 * The figures (bytes fetched, time to fetch) go to --stats under "image".
 */
#ifndef MINIVMM_IMAGE_RUN_H
#define MINIVMM_IMAGE_RUN_H

#include "lib/cli.h"

struct image_run;

/* 0: no --image-url, nothing done (use cfg). 1: prepared: use *out and
 * call image_run_finish after the run. Otherwise an exit status (EXIT_SETUP
 * for no usable /dev/kvm), after a message naming what failed. */
int image_run_prepare(const struct config *cfg, struct config *out, struct image_run **ctx);
/* Remove the private disk copy, release cached blobs, free out. */
void image_run_finish(struct image_run *ctx, struct config *out);

#endif
