/*
 * The lazy root (fs/root.h): one object from the source to the last
 * byte written back.
 */
#include "fs/root.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch/fetch.h"
#include "fetch/url.h"
#include "fs/backend_fetch.h"
#include "fs/writeback.h"
#include "image/image.h"
#include "image/manifest.h"
#include "lib/rmtree.h"
#include "lib/cli.h"
#include "lib/log.h"

enum root_kind {
	ROOT_DIR,       /* a host directory, served read-only below the upper layer */
	ROOT_MANIFEST,  /* a local manifest, its blobs beside it (or at its checked URL) */
	ROOT_URL,       /* an image URL: its manifest fetched once into a local copy */
};

struct lazy_root {
	enum root_kind kind;
	const struct config *cmd_cfg; /* the command's options (write-back reads them) */
	const struct config *cfg;     /* what the fetch side reads: cmd_cfg, or own for a URL */
	struct config own;            /* ROOT_URL: the command's + the image's blob origin */
	char own_blobs[PATH_MAX + 512]; /* own's allowed origin (own borrows it) */
	char *copy;                   /* ROOT_URL: the local manifest copy, removed at free */
	char *target;                 /* write-back's target, NULL for a directory */
	struct manifest *mf;
	bool backend_is_fetch;
	void *backend_ctx;            /* owned by fs once it exists (then borrowed) */
	struct fs *fs;
	char *state_dir;
	bool state_is_temp;
	bool writeback;
	char *record_path;            /* --record-profile */
	uint64_t written_back;
	bool closed;
};

CLI_OPTION(.command = "run", .name = "record-profile", .argname = "FILE",
	   .help = "lazy root: at stop, write the files the guest read, in first-read order, to "
		   "FILE (a prefetch profile for `image profile`)")

static bool is_image_url(const char *s)
{
	enum url_scheme k = url_scheme(s);
	return k == URL_HTTP || k == URL_HTTPS || k == URL_FILE;
}

/* An image URL (the directory holding manifest.json[.zst]), as `run
 * --image-url` reads it: the manifest fetched once and saved to a local
 * file with its checked absolute blobs URL (r->copy), files faulted from
 * the image's blob store (r->own: the command's options with that origin
 * allowed), and the image's manifest URL as write-back's target. */
static struct manifest *open_url(struct lazy_root *r, const char *url, const struct config *cfg,
				 char *err, size_t errlen)
{
	struct manifest m = {0}, *mf = NULL;
	struct fetch_opts fo;
	fetch_opts_from_config(cfg, &fo); /* --fetch-timeout ... */
	fo.allow_file = url_scheme(url) == URL_FILE;
	const char *origins[URL_MAX_ALLOWED_ORIGINS];
	size_t n_origins = url_allowed_origins(cfg, origins, URL_MAX_ALLOWED_ORIGINS);
	struct fetch_client *fc = fetch_client_create(&fo, err, errlen);
	struct image_src *src = fc ? image_src_open_with(url, fc, err, errlen) : NULL;
	const char *which = NULL;
	char where[PATH_MAX + 512];
	if (!src || image_src_allow_origins(src, origins, n_origins) < 0 ||
	    image_src_manifest(src, &m, &which, err, errlen) < 0 ||
	    image_src_save_manifest(src, &m, &r->copy, r->own_blobs, sizeof(r->own_blobs), err,
				    errlen) < 0 ||
	    image_src_file_url(src, which, where, sizeof(where), err, errlen) < 0)
		goto out;
	if (!(r->target = strdup(where)) || config_copy(&r->own, cfg) < 0 ||
	    (url_scheme(r->own_blobs) != URL_FILE &&
	     config_add(&r->own, URL_ALLOW_ORIGIN_OPTION, r->own_blobs) < 0)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	r->cfg = &r->own;
	if (!(mf = calloc(1, sizeof(*mf))) || manifest_load_file(r->copy, mf, err, errlen) < 0) {
		free(mf);
		mf = NULL;
	}
out:
	image_src_close(src);
	if (fc)
		fetch_client_destroy(fc);
	manifest_free(&m);
	return mf;
}

static struct manifest *open_manifest(const char *path, char *err, size_t errlen)
{
	struct manifest *mf = calloc(1, sizeof(*mf));
	if (!mf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (manifest_load_file(path, mf, err, errlen) < 0) {
		free(mf);
		return NULL;
	}
	return mf;
}

/* The manifest and the backend serving its content. */
static int open_source(struct lazy_root *r, const char *source, char *err, size_t errlen)
{
	char why[1024] = "";
	struct stat st;
	if (is_image_url(source)) {
		r->kind = ROOT_URL;
		r->mf = open_url(r, source, r->cfg, why, sizeof(why));
	} else if (stat(source, &st) < 0) {
		snprintf(why, sizeof(why), "%s", strerror(errno));
	} else if (S_ISDIR(st.st_mode)) {
		r->kind = ROOT_DIR;
		r->mf = fs_manifest_from_dir(source, why, sizeof(why));
		if (r->mf && !(r->backend_ctx = fs_backend_dir_open(source)))
			snprintf(why, sizeof(why), "%s", strerror(errno));
	} else {
		r->kind = ROOT_MANIFEST;
		r->mf = open_manifest(source, why, sizeof(why));
		/* Write back to the manifest itself, unless it is the local
		 * copy of a remote image's (image/run_image.c). */
		const char *remote = config_get(r->cfg, LAZY_ROOT_WRITEBACK_TARGET_KEY);
		if (r->mf && !(r->target = strdup(remote ? remote : source)))
			snprintf(why, sizeof(why), "out of memory");
	}
	if (r->mf && r->kind != ROOT_DIR && !why[0]) {
		r->backend_is_fetch = true;
		r->backend_ctx = fs_backend_fetch_open_local(r->copy ? r->copy : source, r->mf,
							     r->cfg, why, sizeof(why));
	}
	if (!r->mf || !r->backend_ctx) {
		snprintf(err, errlen, "%s: %s", source, why[0] ? why : strerror(errno));
		return -1;
	}
	return 0;
}

/* The user's state directory, or a new temporary one. */
static int open_state(struct lazy_root *r, const char *state, char *err, size_t errlen)
{
	if (state && fs_writeback_pending(state)) {
		/* This root would start from the image without those changes,
		 * and its own stage would replace them. */
		snprintf(err, errlen, "--fs-state %s holds changes of an earlier run that were never "
			 "written back: upload them first (minivmm writeback %s), or remove "
			 "%s/pending", state, state, state);
		return -1;
	}
	if (state) {
		r->state_dir = strdup(state);
	} else {
		const char *tmp = getenv("TMPDIR");
		char tmpl[PATH_MAX];
		snprintf(tmpl, sizeof(tmpl), "%s/minivmm-fs.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (mkdtemp(tmpl))
			r->state_dir = strdup(tmpl);
		r->state_is_temp = r->state_dir != NULL;
	}
	if (!r->state_dir) {
		snprintf(err, errlen, "cannot make a state directory: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Each file the guest (or a host program) holds open holds a host fd:
 * raise the soft limit to the hard one so a busy user does not run the
 * VMM out. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

struct lazy_root *lazy_root_open(const char *source, const struct lazy_root_options *o,
				 char *err, size_t errlen)
{
	struct lazy_root *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->cmd_cfg = r->cfg = o->cfg;
	r->writeback = o->writeback;
	const char *rec = config_get(o->cfg, "record-profile");
	if (rec && !(r->record_path = strdup(rec))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (open_source(r, source, err, errlen) < 0 || open_state(r, o->state_dir, err, errlen) < 0)
		goto fail;
	raise_fd_limit();
	struct fs_options fo = {
		.manifest = r->mf, .backend = r->backend_is_fetch ? &fs_backend_fetch : &fs_backend_dir,
		.backend_ctx = r->backend_ctx, .state_dir = r->state_dir, .read_only = o->read_only,
		.max_files = o->max_files,
	};
	r->fs = fs_create(&fo, err, errlen);
	if (!r->fs)
		goto fail;
	log_debug("lazy root %s: %zu entries, state %s", source, r->mf->n_entries, r->state_dir);
	return r;
fail:
	lazy_root_free(r);
	return NULL;
}

struct fs *lazy_root_fs(struct lazy_root *r)
{
	return r->fs;
}

const char *lazy_root_state_dir(const struct lazy_root *r)
{
	return r->state_dir;
}

static void report(struct lazy_root *r)
{
	struct fs_stats st;
	fs_get_stats(r->fs, &st);
	fprintf(stderr, "minivmm: fs: %llu requests, %llu files faulted, %llu bytes fetched in %llu "
		"requests (%.2f%% of the %llu-byte image), fault p50 %.2f ms p99 %.2f ms, "
		"%llu bytes written, %llu faults failed\n",
		(unsigned long long)st.requests, (unsigned long long)st.files_faulted,
		(unsigned long long)st.bytes_fetched, (unsigned long long)st.fetch_requests,
		st.image_bytes ? 100.0 * (double)st.bytes_fetched / (double)st.image_bytes : 0.0,
		(unsigned long long)st.image_bytes, (double)st.fault_p50_ns / 1e6,
		(double)st.fault_p99_ns / 1e6, (unsigned long long)st.bytes_written,
		(unsigned long long)st.faults_failed);
}

struct profile {
	char **v;
	size_t n, cap;
};

static int profile_add(void *ctx, const char *path)
{
	struct profile *p = ctx;
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 256;
		char **v = realloc(p->v, cap * sizeof(*v));
		if (!v)
			return -1;
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = (char *)path; /* borrowed: manifest paths outlive this */
	return 0;
}

/* --record-profile: the same first-read order write-back stores as the
 * new image's profile (fs_read_order). */
static void write_profile(struct lazy_root *r)
{
	struct profile p = {0};
	char err[512];
	fs_read_order(r->fs, profile_add, &p);
	if (manifest_profile_write(r->record_path, p.v, p.n, err, sizeof(err)) < 0)
		log_error("--record-profile: %s", err);
	else
		fprintf(stderr, "minivmm: recorded a prefetch profile of %zu files to %s\n", p.n,
			r->record_path);
	free(p.v);
}

int lazy_root_close(struct lazy_root *r, enum lazy_root_outcome outcome)
{
	if (r->closed)
		return EXIT_OK;
	r->closed = true;
	/* No request is served any more: background fetching ends before the
	 * figures are read and before write-back walks the tree. */
	if (r->backend_is_fetch)
		fs_backend_fetch_stop(r->backend_ctx);
	report(r);
	if (r->record_path)
		write_profile(r);
	int wb = 0;
	if (r->writeback) {
		uint64_t before = fs_writeback_bytes();
		wb = fs_writeback_at_exit(r->fs, r->mf, r->cmd_cfg, r->target, r->state_dir,
					  outcome == LAZY_ROOT_CLEAN);
		r->written_back = fs_writeback_bytes() - before;
	}
	/* A temporary state directory goes unless it keeps changes on
	 * purpose (1) or after a failure (-1). */
	if (r->state_is_temp && wb == 0 && rmtree(r->state_dir) < 0)
		log_warn("could not remove %s", r->state_dir);
	r->state_is_temp = false; /* decided */
	return wb < 0 ? EXIT_FAILURE_IO : EXIT_OK;
}

void lazy_root_interrupt(struct lazy_root *r, int sig)
{
	(void)r; /* write-back's interruption is per process: one lazy root per process */
	fs_writeback_interrupt(sig);
}

uint64_t lazy_root_written_back(const struct lazy_root *r)
{
	return r->written_back;
}

void lazy_root_free(struct lazy_root *r)
{
	if (!r)
		return;
	/* Never closed (it could not be used): a temporary state directory
	 * goes unless it holds changes. */
	if (r->state_is_temp && (!r->fs || !fs_is_dirty(r->fs)) && rmtree(r->state_dir) < 0)
		log_warn("could not remove %s", r->state_dir);
	if (r->fs)
		fs_destroy(r->fs); /* and its backend */
	else if (r->backend_ctx)
		(r->backend_is_fetch ? &fs_backend_fetch : &fs_backend_dir)->destroy(r->backend_ctx);
	if (r->mf && r->kind == ROOT_DIR) {
		fs_manifest_free(r->mf);
	} else if (r->mf) {
		manifest_free(r->mf);
		free(r->mf);
	}
	if (r->copy) {
		unlink(r->copy);
		free(r->copy);
	}
	config_free(&r->own);
	free(r->target);
	free(r->state_dir);
	free(r->record_path);
	free(r);
}
