/*
 * The image's side of `minivmm run --image-url URL` (image/run_image.h).
 */
#include "image/run_image.h"
#include "lib/clock.h"
#include "lib/sparse.h"
#include "lib/wholefile.h"
#include "image/image.h"
#include "fetch/cache.h"
#include "fetch/url.h"
#include "fs/root.h"
#include "lib/log.h"
#include "lib/stats.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef __clang__ /* clang has no -Wformat-truncation */
#pragma GCC diagnostic ignored "-Wformat-truncation" /* messages may be cut */
#endif

enum { RUN_BLOB_KERNEL, RUN_BLOB_INITRD, RUN_BLOB_DISK, RUN_BLOBS };

/* Guest RAM without --memory: vmm/run.c's RUN_DEFAULT_MEMORY. */
#define IMAGE_RUN_DEFAULT_MEMORY (256ULL << 20)

struct image_run {
	char *url, *blobs_url, *cmdline, *disk_copy, *manifest_copy, *fs_root;
	char *wb_target; /* a remote image's manifest URL: where write-back goes */
	bool full;
	struct fetch_client *fc;
	struct cache *cache;
	int fds[RUN_BLOBS];
	int disk_fd;      /* the unnamed disk copy, or -1 */
	char paths[RUN_BLOBS][64];
	char disk_arg[4200];
	uint64_t manifest_ns, fetch_ns, copy_ns, bytes_fetched, image_bytes, boot_bytes;
	uint64_t hits, misses;
	size_t n_entries;
};

static int validate_mode(const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "full") && strcmp(v, "lazy")) {
		snprintf(err, errlen, "'%s' is not a mode (full or lazy)", v);
		return -1;
	}
	return 0;
}

CLI_OPTION(.command = "run", .name = "image-url", .argname = "URL",
	   .help = "boot the image at URL (http://, https://, file://, or a directory)")
CLI_OPTION(.command = "run", .name = URL_ALLOW_ORIGIN_OPTION, .argname = "URL",
	   .help = URL_ALLOW_ORIGIN_HELP, .validate = url_validate_origin_option)
CLI_OPTION(.command = "run", .name = "mode", .argname = "full|lazy",
	   .help = "with --image-url: full downloads the whole disk image first (the baseline); "
		   "lazy (default) fetches files as the guest needs them",
	   .validate = validate_mode)

static void stats_fill(void *opaque, json_t *o)
{
	struct image_run *r = opaque;
	json_object_set_new(o, "url", json_string(r->url));
	json_object_set_new(o, "mode", json_string(r->full ? "full" : "lazy"));
	json_object_set_new(o, "entries", json_integer((json_int_t)r->n_entries));
	json_object_set_new(o, "image_bytes", json_integer((json_int_t)r->image_bytes));
	json_object_set_new(o, "boot_bytes", json_integer((json_int_t)r->boot_bytes));
	json_object_set_new(o, "manifest_ns", json_integer((json_int_t)r->manifest_ns));
	json_object_set_new(o, "prepare_ns", json_integer((json_int_t)r->fetch_ns));
	json_object_set_new(o, "disk_copy_ns", json_integer((json_int_t)r->copy_ns));
	json_object_set_new(o, "bytes_fetched_before_boot", json_integer((json_int_t)r->bytes_fetched));
	json_object_set_new(o, "cache_hits", json_integer((json_int_t)r->hits));
	json_object_set_new(o, "cache_misses", json_integer((json_int_t)r->misses));
}

struct progress {
	const char *what;
	uint64_t last_mib;
};

static void show_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress *p = ctx;
	uint64_t mib = done >> 20;
	if (mib == p->last_mib && done != total)
		return;
	p->last_mib = mib;
	if (total)
		fprintf(stderr, "\rminivmm: fetching %s: %" PRIu64 " / %" PRIu64 " MiB (%u%%) ", p->what,
			mib, total >> 20, (unsigned)(done * 100 / total));
	else
		fprintf(stderr, "\rminivmm: fetching %s: %" PRIu64 " MiB ", p->what, mib);
}

static int get_blob(struct image_run *r, int which, const char *what,
		    const struct manifest_blob_ref *ref, char *err, size_t errlen)
{
	if (!ref->present) {
		snprintf(err, errlen, "the image has no %s", what);
		return -1;
	}
	struct progress p = {what, UINT64_MAX};
	bool tty = isatty(2) && ref->size > (8u << 20);
	if (tty)
		fetch_set_progress(r->fc, show_progress, &p);
	bool hit = false;
	char why[1024];
	int rc = cache_get_blob(r->cache, r->fc, r->blobs_url, ref->digest, ref->size,
				&r->fds[which], &hit, why, sizeof(why));
	if (tty) {
		fetch_set_progress(r->fc, NULL, NULL);
		fprintf(stderr, "\n");
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", what, why);
		return -1;
	}
	hit ? r->hits++ : r->misses++;
	/* The loaders take a path; the fd keeps the blob's cache lock. */
	snprintf(r->paths[which], sizeof(r->paths[which]), "/proc/self/fd/%d", r->fds[which]);
	return 0;
}

/* A private, writable copy of the disk: the guest writes to its root, and
 * the cached blob must stay what its name says. A reflink where the file
 * system can, else a copy that keeps holes. The copy has no name
 * (O_TMPFILE; the VM opens it as /proc/self/fd/N): a run killed at any
 * point, even during setup, leaves no multi-gigabyte file in TMPDIR. */
static int copy_disk(struct image_run *r, uint64_t size, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	char path[4096] = "";
	int out = wholefile_open(tmp && *tmp ? tmp : "/tmp", "minivmm-disk", path, sizeof(path));
	if (out < 0) {
		snprintf(err, errlen, "%s: %s", tmp && *tmp ? tmp : "/tmp", strerror(errno));
		return -1;
	}
	r->disk_fd = out; /* closed by image_run_finish */
	if (path[0]) { /* no O_TMPFILE here: a name, removed at the end */
		r->disk_copy = strdup(path);
		snprintf(r->disk_arg, sizeof(r->disk_arg), "%s", path);
	} else {
		snprintf(r->disk_arg, sizeof(r->disk_arg), "/proc/self/fd/%d", out);
	}
	int in = r->fds[RUN_BLOB_DISK];
	if (ioctl(out, FICLONE, in) == 0)
		return 0;
	if (sparse_copy(in, out, size, NULL) < 0) {
		snprintf(err, errlen, "copying the disk image to %s: %s", r->disk_arg,
			 errno == EIO ? "the cached disk image shrank" : strerror(errno));
		return -1;
	}
	return 0;
}

/* "minivmm: error: run: image URL: WHAT ERR", ERR escaped: it may quote a
 * hostile manifest or server. */
static void image_fail(const char *url, const char *what, const char *err)
{
	char shown[8192]; /* \xHH for each control byte: up to 4 per byte of err */
	log_error("run: image %s: %s%s", url, what, url_escape_text(err, shown, sizeof(shown)));
}

static bool is_url(const char *s)
{
	enum url_scheme k = url_scheme(s);
	return k == URL_HTTP || k == URL_HTTPS || k == URL_FILE;
}

/* Refuse, before any download, a boot portion the guest cannot load: the
 * kernel and initramfs are copied into guest RAM. (The cache refuses a
 * blob larger than its bound by itself.) */
static int check_boot_sizes(const struct config *cfg, const struct manifest *m, bool full,
			    char *err, size_t errlen)
{
	/* Typed when parsed (vmm/run.c's --memory: a bare number is MiB). */
	uint64_t mem = config_get_uint(cfg, "memory", IMAGE_RUN_DEFAULT_MEMORY);
	const struct manifest_blob_ref *initrd = full ? &m->initrd_full : &m->initrd_lazy;
	uint64_t need = m->kernel.size + initrd->size;
	if (need < m->kernel.size || need > mem) {
		snprintf(err, errlen, "the kernel (%" PRIu64 " bytes) and initramfs (%" PRIu64
			 " bytes) the manifest names do not fit in the guest's %" PRIu64
			 " bytes of RAM (--memory): not fetching them", m->kernel.size, initrd->size, mem);
		return -1;
	}
	return 0;
}

int image_run_prepare(const struct config *cfg, struct config *out, struct image_run **ctx)
{
	const char *url = config_get(cfg, "image-url");
	const char *mode = config_get(cfg, "mode");
	*ctx = NULL;
	memset(out, 0, sizeof(*out));
	if (!url) {
		if (mode) {
			return cli_usage_error("run", "--mode needs --image-url URL");
		}
		return 0;
	}
	if (config_get(cfg, "kernel") || config_get(cfg, "initrd") || config_get(cfg, "fs-root")) {
		return cli_usage_error("run", "--image-url brings its own kernel, initramfs and "
				       "root; drop --kernel, --initrd and --fs-root");
	}
	if (mode && strcmp(mode, "full") == 0 &&
	    (config_get(cfg, "record-profile") || config_get(cfg, "prefetch-profile"))) {
		return cli_usage_error("run", "--record-profile and --prefetch-profile are for the "
				       "lazy mode (files read through the file-request device)");
	}
	struct image_run *r = calloc(1, sizeof(*r));
	if (!r)
		return EXIT_SETUP;
	for (int i = 0; i < RUN_BLOBS; i++)
		r->fds[i] = -1;
	r->disk_fd = -1;
	r->full = mode && strcmp(mode, "full") == 0;
	char err[1400];
	uint64_t t0 = clock_now_ns();
	struct manifest m = {0};
	struct image_src *src = NULL;
	const char *which = NULL; /* the manifest's file name in the image */

	/* A directory is read as file:// so that everything goes through the
	 * same client and cache. */
	if (is_url(url)) {
		r->url = strdup(url);
	} else {
		char abs[4096];
		if (!realpath(url, abs)) {
			log_error("run: --image-url %s: %s", url, strerror(errno));
			goto fail_io;
		}
		size_t n = strlen(abs) + 8;
		r->url = malloc(n);
		if (r->url)
			snprintf(r->url, n, "file://%s", abs);
	}
	struct fetch_opts fo;
	fetch_opts_from_config(cfg, &fo);
	/* file:// only for an image on the local filesystem. */
	fo.allow_file = r->url && url_scheme(r->url) == URL_FILE;
	const char *origins[URL_MAX_ALLOWED_ORIGINS];
	size_t n_origins = url_allowed_origins(cfg, origins, URL_MAX_ALLOWED_ORIGINS);
	if (!r->url || !(r->fc = fetch_client_create(&fo, err, sizeof(err))) ||
	    !(r->cache = cache_open_from_config(cfg, err, sizeof(err)))) {
		log_error("run: %s", r->url ? err : "out of memory");
		goto fail_io;
	}
	if (!(src = image_src_open_with(r->url, r->fc, err, sizeof(err))) ||
	    image_src_allow_origins(src, origins, n_origins) < 0 ||
	    image_src_manifest(src, &m, &which, err, sizeof(err)) < 0) {
		image_fail(url, "", src ? err : "out of memory");
		goto fail_io;
	}
	r->manifest_ns = clock_now_ns() - t0;
	r->n_entries = m.n_entries;
	r->image_bytes = m.total_bytes;
	/* Where the blobs are, checked (fetch/url.h): never a host file for
	 * a remote image, never another server unless the user allowed it.
	 * The manifest copy below carries this checked URL, and the
	 * file-request device checks it again (fs_backend_fetch_open_local). */
	char blobs[4200];
	if (image_src_blobs_base(src, &m, blobs, sizeof(blobs), err, sizeof(err)) < 0) {
		image_fail(url, "refusing the image: ", err);
		goto fail_io;
	}
	if (!(r->blobs_url = strdup(blobs)))
		goto fail_io;
	if (r->full && !m.disk.present) {
		/* Before anything is fetched. Write-back drops the disk: an ext4
		 * image of the tree as it was would boot the old files. */
		log_error("run: image %s has no disk image, which --mode full boots: "
			  "its files changed (a write-back) after the disk was built, or it was built "
			  "with --no-disk. Rebuild it with minivmm image build (without --no-disk), or "
			  "boot it lazily (--mode lazy)", url);
		goto fail_io;
	}
	if (check_boot_sizes(cfg, &m, r->full, err, sizeof(err)) < 0) {
		image_fail(url, "", err);
		goto fail_io;
	}
	/* KVM before the downloads: the manifest (small, and the only way
	 * to know what the image is and that it is bootable at all) is
	 * fetched and checked first; the kernel, the initramfs and above all
	 * the full mode's disk (tens of MB, more) only once /dev/kvm is known
	 * to be usable, so a host without KVM learns so at once. */
	int kvm = vm_kvm_probe();
	if (kvm != 0) {
		image_src_close(src);
		manifest_free(&m);
		image_run_finish(r, out);
		return kvm;
	}

	if (get_blob(r, RUN_BLOB_KERNEL, "kernel", &m.kernel, err, sizeof(err)) < 0 ||
	    get_blob(r, RUN_BLOB_INITRD, r->full ? "full initramfs" : "lazy initramfs",
		     r->full ? &m.initrd_full : &m.initrd_lazy, err, sizeof(err)) < 0 ||
	    (r->full && get_blob(r, RUN_BLOB_DISK, "disk image", &m.disk, err, sizeof(err)) < 0)) {
		image_fail(url, "", err);
		goto fail_io;
	}
	r->boot_bytes = m.kernel.size + (r->full ? m.initrd_full.size + m.disk.size : m.initrd_lazy.size);
	if (r->full) {
		uint64_t c0 = clock_now_ns();
		if (copy_disk(r, m.disk.size, err, sizeof(err)) < 0) {
			log_error("run: %s", err);
			goto fail_io;
		}
		r->copy_ns = clock_now_ns() - c0;
	} else if (url_scheme(r->url) == URL_FILE) {
		/* A local image: the file-request device reads the manifest
		 * where it is and its blobs beside it; write-back replaces it. */
		if (asprintf(&r->fs_root, "%s/%s", r->url + 7, which) < 0) {
			r->fs_root = NULL;
			goto fail_io;
		}
	} else {
		/* The file-request device reads the manifest from a file, a
		 * copy whose blobs location is the checked absolute URL;
		 * write-back replaces the image's own manifest. */
		char target[4200], checked[4200];
		if (image_src_save_manifest(src, &m, &r->manifest_copy, checked, sizeof(checked), err,
					    sizeof(err)) < 0 ||
		    image_src_file_url(src, which, target, sizeof(target), err, sizeof(err)) < 0 ||
		    !(r->fs_root = strdup(r->manifest_copy)) || !(r->wb_target = strdup(target))) {
			image_fail(url, "", err);
			goto fail_io;
		}
	}
	const char *user = config_get(cfg, "cmdline");
	size_t cl = strlen(m.cmdline ? m.cmdline : "") + (user ? strlen(user) : 0) + 2;
	if (!(r->cmdline = malloc(cl)))
		goto fail_io;
	snprintf(r->cmdline, cl, "%s%s%s", m.cmdline ? m.cmdline : "", user ? " " : "", user ? user : "");

	struct cache_stats cs;
	cache_get_stats(r->cache, &cs);
	r->bytes_fetched = cs.bytes_fetched;
	r->fetch_ns = clock_now_ns() - t0;
	fprintf(stderr, "minivmm: image %s (%s mode): %" PRIu64 " bytes fetched before boot "
		"(%" PRIu64 " cache hits) in %.2f s%s\n", url, r->full ? "full" : "lazy",
		r->bytes_fetched, r->hits, r->fetch_ns / 1e9, r->full ? ", disk copied" : "");

	/* The user's options, then what the image provides. */
	for (size_t i = 0; i < cfg->n_entries; i++)
		if (strcmp(cfg->entries[i].name, "cmdline") != 0)
			config_add(out, cfg->entries[i].name, cfg->entries[i].value);
	for (size_t i = 0; i < cfg->n_args; i++) {
		/* run takes no positional arguments; keep them so it says so. */
		out->args = realloc(out->args, (out->n_args + 1) * sizeof(*out->args));
		if (out->args)
			out->args[out->n_args++] = cfg->args[i];
	}
	out->command = cfg->command;
	config_add(out, "kernel", r->paths[RUN_BLOB_KERNEL]);
	config_add(out, "initrd", r->paths[RUN_BLOB_INITRD]);
	config_add(out, "cmdline", r->cmdline);
	if (r->full)
		config_add(out, "disk", r->disk_arg);
	else
		config_add(out, "fs-root", r->fs_root);
	if (r->wb_target)
		config_add(out, LAZY_ROOT_WRITEBACK_TARGET_KEY, r->wb_target);
	/* The manifest copy names the blobs by their checked absolute URL:
	 * the file-request device accepts that origin (and the user's). */
	if (!r->full && url_scheme(r->blobs_url) != URL_FILE)
		config_add(out, URL_ALLOW_ORIGIN_OPTION, r->blobs_url);
	/* In lazy mode the file-request device reports its own fetches. */
	if (r->full)
		fetch_stats_register(r->fc, r->cache);
	stats_register("image", stats_fill, r);
	image_src_close(src);
	manifest_free(&m);
	*ctx = r;
	return 1;
fail_io:
	image_src_close(src);
	manifest_free(&m);
	image_run_finish(r, out);
	return EXIT_FAILURE_IO;
}

void image_run_finish(struct image_run *r, struct config *out)
{
	if (out)
		config_free(out);
	if (!r)
		return;
	for (int i = 0; i < RUN_BLOBS; i++)
		if (r->fds[i] >= 0)
			close(r->fds[i]);
	if (r->disk_copy)
		unlink(r->disk_copy);
	if (r->disk_fd >= 0)
		close(r->disk_fd);
	if (r->manifest_copy)
		unlink(r->manifest_copy);
	if (r->cache)
		cache_close(r->cache);
	if (r->fc)
		fetch_client_destroy(r->fc);
	free(r->url);
	free(r->blobs_url);
	free(r->cmdline);
	free(r->disk_copy);
	free(r->manifest_copy);
	free(r->fs_root);
	free(r->wb_target);
	free(r);
}
