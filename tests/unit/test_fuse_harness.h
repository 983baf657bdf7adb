/* Helpers for the FUSE server tests: build real FUSE request bytes
 * (<linux/fuse.h>), hand them to fs_handle, parse the reply. */
#ifndef TEST_FUSE_HARNESS_H
#define TEST_FUSE_HARNESS_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/backend.h"
#include "image/image.h"
#include "lib/rmtree.h"

struct tf {
	char dir[256];     /* scratch: lower/ and state/ */
	char lower[300], state[300];
	struct manifest *mf;
	struct fs *fs;
	uint64_t unique;
	uint8_t out[1 << 18];
	size_t out_len;
	struct fuse_out_header *oh;
	uint64_t max_files;  /* fs_options.max_files for tf_start (0: default) */
};

static inline void tf_write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(content, f);
	fclose(f);
}

/* A request: header + parts concatenated; returns the reply's error. */
static inline int tf_req(struct tf *t, uint32_t op, uint64_t nodeid, const void *a, size_t alen,
			 const void *b, size_t blen, const void *c, size_t clen)
{
	size_t len = sizeof(struct fuse_in_header) + alen + blen + clen;
	uint8_t *buf = malloc(len);
	struct fuse_in_header h = {.len = (uint32_t)len, .opcode = op, .unique = ++t->unique,
				   .nodeid = nodeid, .uid = 0, .gid = 0, .pid = 1};
	memcpy(buf, &h, sizeof(h));
	if (alen) memcpy(buf + sizeof(h), a, alen);
	if (blen) memcpy(buf + sizeof(h) + alen, b, blen);
	if (clen) memcpy(buf + sizeof(h) + alen + blen, c, clen);
	struct iovec in = {buf, len}, out = {t->out, sizeof(t->out)};
	memset(t->out, 0xa5, 64);
	t->out_len = fs_handle(t->fs, &in, 1, &out, 1);
	free(buf);
	t->oh = (struct fuse_out_header *)t->out;
	if (t->out_len == 0)
		return 1; /* no reply */
	ck_assert_uint_ge(t->out_len, sizeof(struct fuse_out_header));
	ck_assert_uint_eq(t->oh->len, t->out_len);
	ck_assert_uint_eq(t->oh->unique, t->unique);
	return t->oh->error;
}

static inline void *tf_body(struct tf *t) { return t->out + sizeof(struct fuse_out_header); }
static inline size_t tf_body_len(struct tf *t) { return t->out_len - sizeof(struct fuse_out_header); }

static inline void tf_init(struct tf *t)
{
	struct fuse_init_in in = {.major = 7, .minor = 38, .max_readahead = 65536,
				  .flags = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES | FUSE_INIT_EXT};
	ck_assert_int_eq(tf_req(t, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, NULL, 0), 0);
	struct fuse_init_out *o = tf_body(t);
	ck_assert_uint_eq(o->major, 7);
	ck_assert_uint_eq(tf_body_len(t), sizeof(*o));
}

/* Open a server over manifest mf (or, if NULL, over t->lower scanned). */
static inline void tf_start(struct tf *t, const struct fs_backend *be, void *bctx)
{
	char err[256] = "";
	if (!t->mf) {
		t->mf = fs_manifest_from_dir(t->lower, err, sizeof(err));
		ck_assert_msg(t->mf != NULL, "%s", err);
	}
	struct fs_options o = {.manifest = t->mf, .backend = be ? be : &fs_backend_dir,
			       .backend_ctx = be ? bctx : fs_backend_dir_open(t->lower),
			       .state_dir = t->state, .max_files = t->max_files};
	t->fs = fs_create(&o, err, sizeof(err));
	ck_assert_msg(t->fs != NULL, "%s", err);
	tf_init(t);
}

static inline void tf_setup_dirs(struct tf *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "%s/tfuse.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	snprintf(t->lower, sizeof(t->lower), "%s/lower", t->dir);
	snprintf(t->state, sizeof(t->state), "%s/state", t->dir);
	ck_assert_int_eq(mkdir(t->lower, 0755), 0);
}

static inline void tf_stop(struct tf *t)
{
	fs_destroy(t->fs);
	fs_manifest_free(t->mf);
	ck_assert_int_eq(rmtree(t->dir), 0);
}

/* MKDIR name in dir: node id, or 0 with *err. */
static inline uint64_t tf_mkdir(struct tf *t, uint64_t dir, const char *name, int *err)
{
	struct fuse_mkdir_in in = {.mode = 0755};
	int e = tf_req(t, FUSE_MKDIR, dir, &in, sizeof(in), name, strlen(name) + 1, NULL, 0);
	if (err)
		*err = e;
	return e ? 0 : ((struct fuse_entry_out *)tf_body(t))->nodeid;
}

/* CREATE name in dir (the handle is released): node id, or 0 with *err. */
static inline uint64_t tf_create(struct tf *t, uint64_t dir, const char *name, int *err)
{
	struct fuse_create_in ci = {.flags = O_RDWR, .mode = S_IFREG | 0644};
	int e = tf_req(t, FUSE_CREATE, dir, &ci, sizeof(ci), name, strlen(name) + 1, NULL, 0);
	if (err)
		*err = e;
	if (e)
		return 0;
	uint64_t n = ((struct fuse_entry_out *)tf_body(t))->nodeid;
	uint64_t fh = ((struct fuse_open_out *)((struct fuse_entry_out *)tf_body(t) + 1))->fh;
	struct fuse_release_in ri = {.fh = fh};
	tf_req(t, FUSE_RELEASE, n, &ri, sizeof(ri), NULL, 0, NULL, 0);
	return n;
}

/* LOOKUP name in dir: node id, or 0 with *err. */
static inline uint64_t tf_lookup(struct tf *t, uint64_t dir, const char *name, int *err)
{
	int e = tf_req(t, FUSE_LOOKUP, dir, name, strlen(name) + 1, NULL, 0, NULL, 0);
	if (err)
		*err = e;
	if (e)
		return 0;
	return ((struct fuse_entry_out *)tf_body(t))->nodeid;
}

static inline uint64_t tf_open(struct tf *t, uint64_t node, uint32_t flags, int *err)
{
	struct fuse_open_in in = {.flags = flags};
	int e = tf_req(t, FUSE_OPEN, node, &in, sizeof(in), NULL, 0, NULL, 0);
	if (err)
		*err = e;
	return e ? 0 : ((struct fuse_open_out *)tf_body(t))->fh;
}

/* READ into buf: bytes, or -errno. */
static inline ssize_t tf_read(struct tf *t, uint64_t node, uint64_t fh, uint64_t off, void *buf, uint32_t size)
{
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = size};
	int e = tf_req(t, FUSE_READ, node, &in, sizeof(in), NULL, 0, NULL, 0);
	if (e)
		return e;
	memcpy(buf, tf_body(t), tf_body_len(t));
	return (ssize_t)tf_body_len(t);
}

static inline int tf_write(struct tf *t, uint64_t node, uint64_t fh, uint64_t off, const void *data, uint32_t size)
{
	struct fuse_write_in in = {.fh = fh, .offset = off, .size = size};
	int e = tf_req(t, FUSE_WRITE, node, &in, sizeof(in), data, size, NULL, 0);
	if (e)
		return e;
	ck_assert_uint_eq(((struct fuse_write_out *)tf_body(t))->size, size);
	return 0;
}

static inline int tf_release(struct tf *t, uint64_t node, uint64_t fh, bool dir)
{
	struct fuse_release_in in = {.fh = fh};
	return tf_req(t, dir ? FUSE_RELEASEDIR : FUSE_RELEASE, node, &in, sizeof(in), NULL, 0, NULL, 0);
}

static inline struct fuse_attr tf_getattr(struct tf *t, uint64_t node, int *err)
{
	struct fuse_getattr_in in = {0};
	struct fuse_attr a = {0};
	int e = tf_req(t, FUSE_GETATTR, node, &in, sizeof(in), NULL, 0, NULL, 0);
	if (err)
		*err = e;
	if (!e)
		a = ((struct fuse_attr_out *)tf_body(t))->attr;
	return a;
}

/* All names of a directory via OPENDIR + READDIR, joined with ','. */
static inline void tf_list(struct tf *t, uint64_t dir, char *out, size_t outlen, uint32_t bufsize)
{
	struct fuse_open_in oi = {0};
	ck_assert_int_eq(tf_req(t, FUSE_OPENDIR, dir, &oi, sizeof(oi), NULL, 0, NULL, 0), 0);
	uint64_t fh = ((struct fuse_open_out *)tf_body(t))->fh;
	out[0] = 0;
	uint64_t off = 0;
	for (int guard = 0; guard < 10000; guard++) {
		struct fuse_read_in ri = {.fh = fh, .offset = off, .size = bufsize};
		ck_assert_int_eq(tf_req(t, FUSE_READDIR, dir, &ri, sizeof(ri), NULL, 0, NULL, 0), 0);
		size_t len = tf_body_len(t), p = 0;
		if (!len)
			break;
		uint8_t *b = tf_body(t);
		while (p < len) {
			struct fuse_dirent *d = (struct fuse_dirent *)(b + p);
			if (out[0])
				strncat(out, ",", outlen - strlen(out) - 1);
			strncat(out, d->name, d->namelen < outlen - strlen(out) - 1 ? d->namelen : 0);
			off = d->off;
			p += FUSE_DIRENT_SIZE(d);
		}
	}
	ck_assert_int_eq(tf_release(t, dir, fh, true), 0);
}

/* An image in img (manifest.json at mpath, blobs/sha256/) made from the
 * directory lower, with 4 KiB chunks so that small test files are chunked,
 * and the profile (prefetch order) given, n_profile paths (may be 0). */
static inline void tf_write_image_dir(const char *lower, const char *img, const char *mpath,
				      char *const *profile, size_t n_profile)
{
	char err[512] = "";
	struct manifest *m = fs_manifest_from_dir(lower, err, sizeof(err));
	ck_assert_msg(m != NULL, "%s", err);
	m->chunk_size = 4096;
	m->blobs_url = strdup(MANIFEST_DEFAULT_BLOBS);
	for (size_t i = 0; i < m->n_entries; i++) {
		struct manifest_entry *e = &m->entries[i];
		if (e->type != MF_REG)
			continue;
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", lower, e->path);
		int fd = open(p, O_RDONLY);
		ck_assert_int_ge(fd, 0);
		ck_assert_msg(image_blob_from_fd(img, fd, p, 4096, e, NULL, err, sizeof(err)) == 0, "%s", err);
		e->has_digest = true;
		close(fd);
	}
	manifest_sort(m);
	if (n_profile) {
		m->profile = calloc(n_profile, sizeof(char *));
		ck_assert_ptr_nonnull(m->profile);
		for (size_t i = 0; i < n_profile; i++)
			m->profile[i] = strdup(profile[i]);
		m->n_profile = n_profile;
	}
	ck_assert_msg(manifest_write_file(m, mpath, false, err, sizeof(err)) == 0, "%s", err);
	for (size_t i = 0; i < m->n_entries; i++) {
		free(m->entries[i].chunks);
		m->entries[i].chunks = NULL;
	}
	manifest_profile_free(m->profile, m->n_profile);
	m->profile = NULL;
	m->n_profile = 0;
	fs_manifest_free(m);
}

/* The same made from t->lower, with no profile. */
static inline void tf_write_image(const struct tf *t, const char *img, const char *mpath)
{
	tf_write_image_dir(t->lower, img, mpath, NULL, 0);
}

#endif
