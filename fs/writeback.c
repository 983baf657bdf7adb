/*
 * Write-back at VM stop (see fs/writeback.h).
 *
 *   STATE/pending/blobs/sha256/<hex>   a blob per new or changed file
 *   STATE/pending/manifest.json        the new image's manifest
 *   STATE/pending/base.json            the manifest this run started from
 *                                      (the check before the swap: two
 *                                      writers from one base)
 *   STATE/pending/target               where to push: the old manifest's
 *                                      path or URL
 *   STATE/pending/pushed               the manifest is on the server: only
 *                                      the local clean-up is left
 *   STATE/not-written-back             changes the last stage could not
 *                                      represent (paths past 4,095 bytes)
 *
 * Crash safety (docs/storage.md): the stage is built in STATE/pending.new,
 * synced, and renamed to STATE/pending in one step, so a pending/ is
 * always complete. Push order is what makes it atomic for readers: every
 * blob first (immutable, content-addressed: a blob already there is
 * skipped, a PUT that did not complete leaves nothing, a PUT being a
 * whole-object replace on nginx dav and S3), the manifest last with one
 * rename (local) or one PUT (http). Until that last step the store serves
 * the old image, after it the new one. pending/ goes only after the
 * manifest is there, so a process killed at any point leaves a stage that
 * `minivmm writeback STATE_DIR` completes (again: nothing twice).
 *
 * MINIVMM_FAULT_KILL_AFTER=N (a test hook) raises SIGKILL after the N-th
 * durable step: the stage in place, each blob, each manifest, the pushed
 * mark, the clean-up.
 */
#include "fs/writeback.h"
#include "fs/writeback_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch/fetch.h"
#include "fetch/url.h"
#include "image/image.h"
#include "lib/rmtree.h"
#include "lib/sparse.h"
#include "lib/wholefile.h"
#include "lib/cli.h"
#include "lib/log.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define PENDING "pending"
#define STAGING "pending.new" /* being built; never pushed */
#define PUSHED_MARK "pushed"
#define BASE_FILE "base.json" /* in the stage: the image this run started from */

static _Atomic uint64_t written_back;
static bool wb_conflict;        /* the last push met another writer's changes */

/* Under STATE: the changes the last stage could not represent. */
#define REFUSED_LIST "not-written-back"
/* How many of them the log names (all are in REFUSED_LIST). */
#define REFUSED_LOGGED 20

/* The test hook: count durable steps, die after the chosen one. */
static void step(const char *what)
{
	static long count, kill_after = -1;
	if (kill_after < 0) {
		const char *v = getenv("MINIVMM_FAULT_KILL_AFTER");
		kill_after = v && *v ? strtol(v, NULL, 10) : 0;
	}
	count++;
	log_debug("fs: write-back step %ld: %s", count, what);
	if (kill_after > 0 && count == kill_after) {
		fprintf(stderr, "minivmm: MINIVMM_FAULT_KILL_AFTER=%ld: killed after %s\n",
			kill_after, what);
		raise(SIGKILL);
	}
}

/* A stop signal while the VM stops (fs_writeback_interrupt): a push
 * stops at once (every point of it is safe to stop at); anything before,
 * the stage above all, finishes first (the guest's new names exist only
 * in memory until the stage is in place), and then no push starts. */
static pthread_mutex_t intr_lock = PTHREAD_MUTEX_INITIALIZER;
static bool pushing;
static int interrupted;
static char intr_state[PATH_MAX];

static void intr_exit(int sig)
{
	if (intr_state[0])
		fprintf(stderr, "minivmm: write-back interrupted by %s: the changes are kept in "
			"%s; to upload them: minivmm writeback %s\n", strsignal(sig), intr_state,
			intr_state);
	else
		fprintf(stderr, "minivmm: stopped by %s\n", strsignal(sig));
	_exit(128 + sig);
}

void fs_writeback_interrupt(int sig)
{
	pthread_mutex_lock(&intr_lock);
	if (pushing)
		intr_exit(sig);
	interrupted = sig;
	pthread_mutex_unlock(&intr_lock);
	log_info("signal %s: already stopping; a stage under way finishes first, no upload "
		 "starts", strsignal(sig));
}

/* The stage is in place (or failed: state_dir NULL): honour a signal. */
static void staged(const char *state_dir)
{
	pthread_mutex_lock(&intr_lock);
	snprintf(intr_state, sizeof(intr_state), "%s", state_dir ? state_dir : "");
	if (interrupted)
		intr_exit(interrupted);
	pthread_mutex_unlock(&intr_lock);
}

/* Around a push: a signal from now on stops it at once. */
static void set_pushing(bool on, const char *state_dir)
{
	pthread_mutex_lock(&intr_lock);
	pushing = on;
	snprintf(intr_state, sizeof(intr_state), "%s", state_dir);
	if (on && interrupted)
		intr_exit(interrupted);
	pthread_mutex_unlock(&intr_lock);
}

int wb_sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* snprintf for messages that may be cut (paths can be long). */
void wb_msg(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

CLI_OPTION(.command = "run", .name = "no-writeback", .argname = NULL,
	   .help = "keep the guest's file changes local (in --fs-state) instead of "
		   "uploading them when the guest powers off")

uint64_t fs_writeback_bytes(void)
{
	return written_back;
}

struct stage {
	const struct manifest *old;
	char dir[PATH_MAX];          /* STATE/pending */
	struct manifest_entry *e;
	size_t n, cap;
	uint64_t total, changed_files, changed_bytes;
	FILE *refused_list;          /* STATE/not-written-back, opened on the first */
	size_t refused;
	const char *state_dir;
	char err[512];
};

/* A change no manifest can hold (a path past MANIFEST_PATH_MAX): named in
 * the log and in STATE/not-written-back, left out of the new image so that
 * every other change still travels. */
static int refuse(struct stage *s, const char *path, const char *why)
{
	if (!s->refused_list) {
		char p[PATH_MAX + 32];
		wb_msg(p, sizeof(p), "%s/" REFUSED_LIST, s->state_dir);
		s->refused_list = fopen(p, "w");
		if (!s->refused_list) {
			wb_msg(s->err, sizeof(s->err), "%s: %s", p, strerror(errno));
			return -EIO;
		}
	}
	fprintf(s->refused_list, "%s\t%s\n", why, path);
	if (s->refused++ < REFUSED_LOGGED)
		log_error("fs: not written back (%s): %.200s%s", why, path,
			  strlen(path) > 200 ? "..." : "");
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int stage_entry(void *ctx, const struct fs_walk_entry *w)
{
	struct stage *s = ctx;
	if (w->too_long)
		return refuse(s, w->path, "path longer than " STR(MANIFEST_PATH_MAX)
			      " bytes, with everything below it");
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct manifest_entry *t = realloc(s->e, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		s->e = t;
		s->cap = cap;
	}
	struct manifest_entry *e = &s->e[s->n];
	memset(e, 0, sizeof(*e));
	e->path = strdup(w->path);
	e->type = w->type;
	e->mode = w->mode;
	e->uid = w->uid;
	e->gid = w->gid;
	e->mtime_sec = w->mtime_sec;
	e->mtime_nsec = w->mtime_nsec;
	e->rdev = w->rdev;
	if (w->type == MF_SYMLINK || w->type == MF_HARDLINK)
		e->target = dup_or_null(w->target);
	if (w->type == MF_SYMLINK)
		e->size = w->size;
	s->n++;
	if (w->n_xattrs) {
		e->xattrs = calloc(w->n_xattrs, sizeof(*e->xattrs));
		if (!e->xattrs)
			return -ENOMEM;
		for (size_t i = 0; i < w->n_xattrs; i++) {
			e->xattrs[i].name = strdup(w->xattrs[i].name);
			e->xattrs[i].value = malloc(w->xattrs[i].len ? w->xattrs[i].len : 1);
			if (!e->xattrs[i].name || !e->xattrs[i].value)
				return -ENOMEM;
			memcpy(e->xattrs[i].value, w->xattrs[i].value, w->xattrs[i].len);
			e->xattrs[i].len = w->xattrs[i].len;
			e->n_xattrs = i + 1;
		}
	}
	if (w->type != MF_REG)
		return 0;
	if (w->content == FS_CONTENT_UPPER) {
		uint64_t data = 0;
		/* Packed: whole chunks of zeros (a `truncate -s 2G`) are
		 * neither staged nor uploaded (issue 13, item 8). */
		if (image_blob_from_fd_packed(s->dir, w->upper_fd, w->path, s->old->chunk_size ?
					      s->old->chunk_size : MANIFEST_DEFAULT_CHUNK, e, &data,
					      s->err, sizeof(s->err)) < 0)
			return -EIO;
		e->has_digest = true;
		s->changed_files++;
		s->changed_bytes += e->size;
	} else if (w->content == FS_CONTENT_LOWER && w->lower->has_digest) {
		e->size = w->lower->size;
		e->has_digest = true;
		memcpy(e->digest, w->lower->digest, MANIFEST_DIGEST_LEN);
		e->packed = w->lower->packed; /* the blob on the server as it is */
		memcpy(e->blob, w->lower->blob, MANIFEST_DIGEST_LEN);
		e->n_chunks = w->lower->n_chunks;
		if (e->n_chunks) {
			e->chunks = malloc(e->n_chunks * MANIFEST_DIGEST_LEN);
			if (!e->chunks)
				return -ENOMEM;
			memcpy(e->chunks, w->lower->chunks, e->n_chunks * MANIFEST_DIGEST_LEN);
		}
	} else if (w->content == FS_CONTENT_LOWER) {
		wb_msg(s->err, sizeof(s->err), "'%s' has no digest: a directory root cannot be "
			 "written back", w->path);
		return -EINVAL;
	}
	s->total += e->size;
	return 0;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	int rc = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) || rc ? -1 : 0;
}

static int read_line(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char *r = fgets(out, (int)len, f);
	fclose(f);
	if (!r)
		return -1;
	out[strcspn(out, "\n")] = 0;
	return 0;
}

struct profile {
	const struct manifest *m;
	char **v;
	size_t n, cap;
};

static int profile_add(void *ctx, const char *path)
{
	struct profile *p = ctx;
	bool found = false;
	for (size_t i = 0; i < p->m->n_entries && !found; i++)
		found = p->m->entries[i].type == MF_REG && !strcmp(p->m->entries[i].path, path);
	if (!found)
		return 0;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		char **t = realloc(p->v, cap * sizeof(*t));
		if (!t)
			return 1;
		p->v = t;
		p->cap = cap;
	}
	p->v[p->n++] = (char *)path;
	return 0;
}

/* Remove STATE/name: no shell (the state dir is the user's, any bytes). */
static int rm_rf(const char *state_dir, const char *name)
{
	char path[PATH_MAX + 64];
	wb_msg(path, sizeof(path), "%s/%s", state_dir, name);
	return rmtree(path);
}

/* Stage the new image in STATE/pending.new, then rename it to
 * STATE/pending once every file in it is on disk. */
static int stage_build(struct fs *fs, const struct manifest *old, const char *state_dir,
		       const char *target, size_t *refused, char *err, size_t errlen)
{
	struct stage s = {.old = old, .state_dir = state_dir};
	char rl[PATH_MAX + 32];
	wb_msg(rl, sizeof(rl), "%s/" REFUSED_LIST, state_dir);
	unlink(rl); /* the list of the stage before, if any */
	wb_msg(s.dir, sizeof(s.dir), "%s/" STAGING, state_dir);
	if (rm_rf(state_dir, STAGING) < 0 || mkdir(s.dir, 0700) < 0) {
		wb_msg(err, errlen, "%s: %s", s.dir, strerror(errno));
		return -1;
	}
	int rc = fs_walk(fs, stage_entry, &s);
	*refused = s.refused;
	if (s.refused_list && fclose(s.refused_list) && rc == 0) {
		wb_msg(s.err, sizeof(s.err), "%s: %s", rl, strerror(errno));
		rc = -EIO;
	}
	if (s.refused > REFUSED_LOGGED)
		log_error("fs: ... and %zu more changes not written back: all are listed in %s",
			  s.refused - REFUSED_LOGGED, rl);
	struct manifest m = *old; /* boot portion, name, blobs_url, chunk_size */
	/* The full-copy disk is an ext4 image of the old tree: kept, it
	 * would boot without the changes (and verify could not tell). */
	if (m.disk.present)
		log_warn("fs: the new image has no full-copy disk (--mode full): the old one holds "
			 "the old files; rebuild it with minivmm image build");
	m.disk = (struct manifest_blob_ref){0};
	m.disk_tree_present = false;
	m.entries = s.e;
	m.n_entries = s.n;
	m.total_bytes = s.total;
	/* This run's first-read order becomes the image's prefetch profile (paths
	 * that no longer exist as regular files are left out). */
	struct profile pr = {.m = &m};
	fs_read_order(fs, profile_add, &pr);
	if (pr.n) {
		m.profile = pr.v;
		m.n_profile = pr.n;
	}
	char path[PATH_MAX + 32];
	if (rc == 0) {
		manifest_sort(&m);
		if (wb_keep_boot_files(&m) < 0)
			rc = -ENOMEM;
	}
	if (rc == 0) {
		wb_msg(path, sizeof(path), "%s/manifest.json", s.dir);
		if (manifest_write_file(&m, path, false, s.err, sizeof(s.err)) < 0)
			rc = -1;
	}
	if (m.boot_files != old->boot_files)
		free(m.boot_files); /* the strings are the old manifest's */
	if (rc == 0) {
		/* The image this run started from, for the check before the
		 * swap (another writer may have published since). */
		struct manifest b = *old;
		b.blobs_url = (char *)MANIFEST_DEFAULT_BLOBS; /* compared without it */
		wb_msg(path, sizeof(path), "%s/" BASE_FILE, s.dir);
		if (manifest_write_file(&b, path, false, s.err, sizeof(s.err)) < 0)
			rc = -1;
	}
	if (rc == 0) {
		wb_msg(path, sizeof(path), "%s/target", s.dir);
		if (write_file(path, target) < 0) {
			wb_msg(s.err, sizeof(s.err), "%s: %s", path, strerror(errno));
			rc = -1;
		}
	}
	/* Everything staged reaches the disk before pending/ names it: the
	 * blob writer renames without fsync, so sync the file system once. */
	if (rc == 0) {
		int fd = open(s.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || syncfs(fd) < 0) {
			wb_msg(s.err, sizeof(s.err), "syncing %s: %s", s.dir, strerror(errno));
			rc = -1;
		}
		if (fd >= 0)
			close(fd);
	}
	for (size_t i = 0; i < s.n; i++)
		manifest_entry_free(&s.e[i]);
	free(s.e);
	free(pr.v); /* the strings are the old manifest's */
	if (rc) {
		wb_msg(err, errlen, "staging the new image: %s", s.err[0] ? s.err : strerror(-rc));
		return -1;
	}
	/* A stage left from an earlier run that was never pushed is replaced:
	 * this run started from the image on the server, without it. */
	char pend[PATH_MAX + 16];
	wb_msg(pend, sizeof(pend), "%s/" PENDING, state_dir);
	char mark[PATH_MAX + 32];
	wb_msg(mark, sizeof(mark), "%s/" PUSHED_MARK, pend);
	if (access(pend, F_OK) == 0) {
		if (access(mark, F_OK) < 0)
			log_warn("fs: replacing the earlier stage in %s, which was never written back",
				 pend);
		if (rm_rf(state_dir, PENDING) < 0) {
			wb_msg(err, errlen, "could not remove %s", pend);
			return -1;
		}
	}
	if (rename(s.dir, pend) < 0 || wb_sync_dir(state_dir) < 0) {
		wb_msg(err, errlen, "%s -> %s: %s", s.dir, pend, strerror(errno));
		return -1;
	}
	step("the stage in place");
	log_info("fs: %llu new or changed files (%llu bytes) staged in %s",
		 (unsigned long long)s.changed_files, (unsigned long long)s.changed_bytes, pend);
	return 0;
}

static int stage(struct fs *fs, const struct manifest *old, const char *state_dir,
		 const char *target, size_t *refused, char *err, size_t errlen)
{
	int rc = stage_build(fs, old, state_dir, target, refused, err, errlen);
	staged(rc == 0 ? state_dir : NULL);
	return rc;
}

/* The check before the swap (wb_check_base) against the manifest readers
 * see at where. */
static int check_base(struct fetch_client *fc, const char *pend, const char *where,
		      struct manifest *newm, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];
	wb_msg(path, sizeof(path), "%s/" BASE_FILE, pend);
	if (access(path, F_OK) < 0) {
		log_warn("fs: %s has no %s (staged by an older minivmm): published without checking "
			 "that the image is still the one this run started from", pend, BASE_FILE);
		return 0;
	}
	struct manifest base = {0}, theirs = {0};
	int rc = manifest_load_file(path, &base, err, errlen);
	if (rc == 0)
		rc = wb_load_theirs(fc, where, &theirs, err, errlen);
	if (rc == 0)
		rc = wb_check_base(&base, &theirs, newm, &wb_conflict, err, errlen);
	manifest_free(&base);
	manifest_free(&theirs);
	return rc;
}

/* Push STATE/pending to its target: blobs, then the manifest. */
static int push(const char *state_dir, const struct config *cfg, uint64_t *bytes, char *err,
		size_t errlen)
{
	wb_conflict = false;
	char pend[PATH_MAX], path[PATH_MAX + 64], staged[PATH_MAX];
	wb_msg(pend, sizeof(pend), "%s/" PENDING, state_dir);
	wb_msg(path, sizeof(path), "%s/target", pend);
	if (read_line(path, staged, sizeof(staged)) < 0) {
		wb_msg(err, errlen, "%s: nothing staged (%s)", pend, strerror(errno));
		return -1;
	}
	struct manifest newm = {0};
	wb_msg(path, sizeof(path), "%s/manifest.json", pend);
	if (manifest_load_file(path, &newm, err, errlen) < 0)
		return -1;
	struct push_where w;
	if (wb_push_locate(staged, &newm, cfg, &w, err, errlen) < 0) {
		manifest_free(&newm);
		return -1;
	}
	const char *target = w.target;
	struct fetch_client *fc = NULL;
	if (w.remote) {
		struct fetch_opts fo = {0};
		if (cfg) /* the command's --fetch-timeout, --fetch-retries, --insecure */
			fetch_opts_from_config(cfg, &fo);
		fc = fetch_client_create(&fo, err, errlen);
		if (!fc) {
			manifest_free(&newm);
			return -1;
		}
	}
	char sdir[PATH_MAX + 64];
	wb_msg(sdir, sizeof(sdir), "%s/" IMAGE_BLOB_DIR, pend);
	DIR *d = opendir(sdir);
	int rc = 0;
	struct dirent *de;
	while (d && rc == 0 && (de = readdir(d))) {
		uint8_t dg[MANIFEST_DIGEST_LEN];
		if (manifest_hex_digest(de->d_name, dg) < 0)
			continue; /* ".", "..", temporaries */
		wb_msg(path, sizeof(path), "%s/%s", sdir, de->d_name);
		struct stat st;
		if (stat(path, &st) < 0) {
			wb_msg(err, errlen, "%s: %s", path, strerror(errno));
			rc = -1;
			break;
		}
		char dst[PUSH_URL_MAX];
		if (wb_push_join(&w, w.blobs, de->d_name, dst, sizeof(dst), err, errlen) < 0) {
			rc = -1;
			break;
		}
		if (wb_blob_present(fc, dst, dg, (uint64_t)st.st_size))
			continue; /* there, whole: blobs are immutable */
		if (fc) {
			if (fetch_put_file(fc, dst, path, err, errlen) < 0)
				rc = -1;
			else
				*bytes += (uint64_t)st.st_size;
		} else {
			rc = wb_copy_file(path, w.blobs, de->d_name, bytes, err, errlen);
		}
		if (rc == 0)
			step("a blob");
	}
	if (d)
		closedir(d);
	const char *plain = w.plain, *zstd = w.zstd, *mname = w.name;
	if (rc == 0) {
		/* What readers use: the compressed form when there is one. */
		const char *readers = strcmp(target, plain) && strcmp(target, zstd) ? target :
				      wb_exists(fc, zstd) ? zstd : plain;
		rc = check_base(fc, pend, readers, &newm, err, errlen);
	}
	if (rc == 0) {
		/* Last: the manifest. An image may carry it twice (manifest.json
		 * and manifest.json.zst, which readers prefer): the plain one is
		 * replaced first, the compressed one last, each in one step, so
		 * a reader of either sees the old image or the new one. */
		for (int k = 0; k < 2 && rc == 0; k++) {
			const char *dst = k == 0 ? plain : zstd;
			bool is_target = !strcmp(dst, target);
			if (!is_target && !wb_exists(fc, dst))
				continue;
			rc = wb_put_manifest(fc, &newm, dst, k == 1, bytes, err, errlen);
			if (rc == 0)
				step("a manifest");
		}
		if (rc == 0 && strcmp(target, plain) && strcmp(target, zstd)) { /* another name */
			rc = wb_put_manifest(fc, &newm, target, strstr(mname, ".zst") != NULL, bytes, err, errlen);
			if (rc == 0)
				step("a manifest");
		}
	}
	if (fc)
		fetch_client_destroy(fc);
	manifest_free(&newm);
	return rc;
}

/* A stage killed between its rename steps: pending.new is complete once
 * it names its target (written last). */
static void recover_stage(const char *state_dir)
{
	char pend[PATH_MAX + 16], next[PATH_MAX + 16], t[PATH_MAX + 32];
	wb_msg(pend, sizeof(pend), "%s/" PENDING, state_dir);
	wb_msg(next, sizeof(next), "%s/" STAGING, state_dir);
	wb_msg(t, sizeof(t), "%s/target", next);
	if (access(pend, F_OK) < 0 && access(t, F_OK) == 0 && rename(next, pend) == 0) {
		wb_sync_dir(state_dir);
		log_info("fs: completed the stage in %s", pend);
	}
}

bool fs_writeback_pending(const char *state_dir)
{
	recover_stage(state_dir);
	char t[PATH_MAX + 32];
	wb_msg(t, sizeof(t), "%s/" PENDING "/target", state_dir);
	return access(t, F_OK) == 0;
}

int fs_writeback_push(const char *state_dir, const struct config *cfg, char *err, size_t errlen)
{
	uint64_t bytes = 0;
	char mark[PATH_MAX + 32];
	recover_stage(state_dir);
	wb_msg(mark, sizeof(mark), "%s/" PENDING "/" PUSHED_MARK, state_dir);
	bool done = access(mark, F_OK) == 0;
	if (done) {
		log_info("fs: %s/" PENDING " was already written back; removing it", state_dir);
	} else {
		set_pushing(true, state_dir);
		int rc = push(state_dir, cfg, &bytes, err, errlen);
		set_pushing(false, state_dir);
		if (rc < 0)
			return -1;
		written_back += bytes;
		/* From here a re-run must not push again (the server may have
		 * moved on since). */
		if (write_file(mark, "") < 0)
			log_warn("fs: %s: %s", mark, strerror(errno));
		else
			step("the pushed mark");
	}
	/* Rename first, so that a half-removed stage is never taken for one. */
	char pend[PATH_MAX + 16], gone[PATH_MAX + 16];
	wb_msg(pend, sizeof(pend), "%s/" PENDING, state_dir);
	wb_msg(gone, sizeof(gone), "%s/" PENDING ".done", state_dir);
	if (rm_rf(state_dir, PENDING ".done") < 0 || rename(pend, gone) < 0 ||
	    rm_rf(state_dir, PENDING ".done") < 0)
		log_warn("fs: could not remove %s", pend);
	else
		step("the clean-up");
	if (!done)
		log_info("fs: written back: %llu bytes uploaded", (unsigned long long)bytes);
	return 0;
}

int fs_writeback_at_exit(struct fs *fs, const struct manifest *mf, const struct config *cfg,
			 const char *target, const char *state_dir, bool clean_stop)
{
	if (!fs_is_dirty(fs))
		return 0;
	if (config_flag(cfg, "no-writeback")) {
		log_info("fs: the guest's changes stay in %s (--no-writeback)", state_dir);
		return 0;
	}
	char err[1024];
	if (!target) {
		log_info("fs: the root was a host directory, nothing to write back to: the guest's "
			 "changes stay in %s", state_dir);
		return 1;
	}
	size_t refused = 0;
	if (stage(fs, mf, state_dir, target, &refused, err, sizeof(err)) < 0) {
		/* The names live in memory only: nothing a later command can
		 * upload. Say so rather than pretend a retry exists. */
		log_error("fs: write-back failed: %s. Nothing was uploaded; the content the guest "
			  "wrote is kept in %s/upper (by inode number), its names are lost",
			  err, state_dir);
		return -1;
	}
	if (!clean_stop) {
		log_warn("fs: the guest did not power off (stopped by a signal, a crash or a "
			 "test exit): nothing uploaded; what it had written and synced is kept in "
			 "%s. To upload it: minivmm writeback %s", state_dir, state_dir);
		return refused ? -1 : 1; /* a change no manifest can hold is a failure */
	}
	if (fs_writeback_push(state_dir, cfg, err, sizeof(err)) < 0) {
		if (wb_conflict)
			log_error("fs: write-back failed: %s. Nothing was published; this run's image "
				  "is kept in %s/" PENDING " (its blobs are uploaded, its manifest is "
				  "pending/manifest.json): retrying (minivmm writeback %s) meets the "
				  "same conflict until one side's change is undone", err, state_dir,
				  state_dir);
		else
			log_error("fs: write-back failed: %s. The new image is kept in %s/" PENDING
				  "; to retry: minivmm writeback %s", err, state_dir, state_dir);
		return -1;
	}
	if (refused) {
		log_error("fs: write-back incomplete: every other change is uploaded, but %zu "
			  "could not be represented in a manifest (listed in %s/" REFUSED_LIST ")",
			  refused, state_dir);
		return -1;
	}
	return 0;
}

/* A stage that failed half-built (STAGING without its target): its
 * changes cannot be uploaded, but they must not be forgotten silently. */
static bool stage_incomplete(const char *state_dir)
{
	char p[PATH_MAX + 32];
	wb_msg(p, sizeof(p), "%s/" STAGING, state_dir);
	return access(p, F_OK) == 0;
}

static int writeback_main(const struct config *cfg)
{
	if (cfg->n_args != 1) {
		return cli_usage_error("writeback", "give one STATE_DIR");
	}
	char err[1024];
	struct stat st;
	if (stat(cfg->args[0], &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_error("writeback: %s: not a state directory", cfg->args[0]);
		return EXIT_USAGE;
	}
	if (!fs_writeback_pending(cfg->args[0])) {
		if (stage_incomplete(cfg->args[0])) {
			log_error("writeback: %s/" STAGING " is a stage that failed "
				"before it was complete (see the run's messages): it cannot be "
				"uploaded. The content the guest wrote is in %s/upper, by inode "
				"number", cfg->args[0], cfg->args[0]);
			return EXIT_FAILURE_IO;
		}
		fprintf(stderr, "minivmm: nothing to write back in %s (no stage pending: already "
			"written back, or nothing changed)\n", cfg->args[0]);
		return EXIT_OK;
	}
	if (fs_writeback_push(cfg->args[0], cfg, err, sizeof(err)) < 0) {
		log_error("writeback: %s. The stage is kept%s; to retry: minivmm "
			"writeback %s", err, wb_conflict ? " (nothing was published: a retry "
			"meets the same conflict until one side's change is undone)" : "",
			cfg->args[0]);
		return EXIT_FAILURE_IO;
	}
	return EXIT_OK;
}

/* writeback talks to the image's server like run does. */
__attribute__((constructor)) static void writeback_options(void)
{
	fetch_cli_register("writeback");
}

CLI_COMMAND(.name = "writeback", .usage = "STATE_DIR",
	    .summary = "upload the changes a VM staged but could not upload at stop",
	    .main = writeback_main)
/* A stage whose blobs live at an origin the run was allowed to use (its
 * --allow-blob-origin) is pushed there only when allowed again. */
CLI_OPTION(.command = "writeback", .name = URL_ALLOW_ORIGIN_OPTION, .argname = "URL",
	   .help = URL_ALLOW_ORIGIN_HELP, .validate = url_validate_origin_option)
