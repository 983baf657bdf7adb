/*
 * minivmm image build: a root filesystem (directory or tarball) and a
 * kernel in, an image directory out (docs/image-format.md):
 *
 *   OUT/manifest.json, OUT/manifest.json.zst   every file's metadata and digest
 *   OUT/blobs/sha256/<hex>                     contents, kernel, initramfs, disk
 *
 * Nothing here needs root: a tarball's owners and modes are taken from its
 * headers (libarchive), and the ext4 disk image is made by `mkfs.ext4 -d`
 * from a staging directory, with debugfs fixing what an unprivileged
 * staging directory cannot hold (owners, device nodes). Same input, same
 * digests: sorted walk, fixed timestamps, UUID and hash seed derived from
 * the content.
 */
#include "image.h"
#include "lib/clock.h"
#include "lib/mkdir_p.h"
#include "lib/sparse.h"
#include "../vmm/cli.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Messages are cut to the error buffer on purpose: a long path in an error
 * is better truncated than not reported. */
#ifndef __clang__ /* clang has no -Wformat-truncation */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define BUILD_DEFAULT_BUSYBOX "/bin/busybox"
#define BUILD_DEFAULT_CMDLINE "console=ttyS0"
#define BUILD_DEFAULT_INIT "/sbin/init"
#define BUILD_FS_BLOCK 4096
#define BUILD_INODE_SIZE 256
/* Room for the journal, metadata and what the guest writes in full mode. */
#define BUILD_DISK_SLACK (64ULL << 20)
#define BUILD_EXTRA_INODES 4096
#define BUILD_MAX_SYMLINK_HOPS 16
/* A fixed time for what the build generates (mkfs); SOURCE_DATE_EPOCH
 * overrides it (reproducible-builds.org). 2024-01-01T00:00:00Z. */
#define BUILD_FIXED_TIME 1704067200LL

struct bentry {
	struct manifest_entry e;
	size_t group;        /* hard-link group, 0 if none */
	size_t seq;          /* order of appearance (tarball: last one wins) */
	uint64_t data_bytes; /* non-hole bytes, for sizing the disk */
};

struct build {
	const char *out;
	uint64_t chunk;
	struct bentry *v;
	size_t n, cap;
	size_t n_groups;
	/* dir walk: (dev, ino) of multiply-linked files -> group */
	struct { dev_t dev; ino_t ino; size_t group; } *inodes;
	size_t n_inodes, cap_inodes;
	dev_t root_dev;
	unsigned warnings;
	char err[1024];
};

static struct bentry *add_entry(struct build *b, const char *path)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		void *p = realloc(b->v, cap * sizeof(*b->v));
		if (!p)
			return NULL;
		b->v = p, b->cap = cap;
	}
	struct bentry *be = &b->v[b->n];
	memset(be, 0, sizeof(*be));
	if (!(be->e.path = strdup(path)))
		return NULL;
	be->seq = b->n++;
	return be;
}

/* Messages show names with C escapes: a newline in a file name must not
 * forge a line of output. */
static const char *shown(const char *s, char *buf, size_t len)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < len; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\')
			buf[o++] = (char)*p;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
	}
	buf[o] = '\0';
	return buf;
}

static void set_meta(struct manifest_entry *e, const struct stat *st)
{
	e->mode = st->st_mode & 07777;
	e->uid = st->st_uid;
	e->gid = st->st_gid;
	e->mtime_sec = st->st_mtim.tv_sec;
	e->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
}

/* --- a directory tree: lstat, never follows a symlink --- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(struct build *b, int dirfd, const char *rel, const char *src)
{
	char show[600];
	int fd2 = dup(dirfd);
	DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
	if (!d) {
		snprintf(b->err, sizeof(b->err), "%s/%s: %s", src, shown(rel, show, sizeof(show)), strerror(errno));
		if (fd2 >= 0)
			close(fd2);
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **p = realloc(names, cap * sizeof(*names));
			if (!p)
				goto oom;
			names = p;
		}
		if (!(names[n++] = strdup(de->d_name)))
			goto oom;
	}
	closedir(d);
	d = NULL;
	/* Sorted, so that the same tree gives the same blobs in the same
	 * order (and the same disk image). */
	qsort(names, n, sizeof(*names), cmp_names);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char path[MANIFEST_PATH_MAX + 2];
		int plen = snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", names[i]);
		if (plen < 0 || (size_t)plen > MANIFEST_PATH_MAX) {
			snprintf(b->err, sizeof(b->err), "%s/%s/%s: path longer than %d bytes", src,
				 shown(rel, show, 300), names[i], MANIFEST_PATH_MAX);
			rc = -1;
			break;
		}
		struct stat st;
		if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			snprintf(b->err, sizeof(b->err), "%s/%s: %s", src, shown(path, show, sizeof(show)),
				 strerror(errno));
			rc = -1;
			break;
		}
		struct bentry *be = add_entry(b, path);
		if (!be)
			goto oom_names;
		struct manifest_entry *e = &be->e;
		set_meta(e, &st);
		switch (st.st_mode & S_IFMT) {
		case S_IFDIR: {
			e->type = MF_DIR;
			if (st.st_dev != b->root_dev) {
				/* A mount point inside the tree (a chroot's /proc): the
				 * directory is kept, what is mounted on it is not. */
				fprintf(stderr, "minivmm image build: %s/%s is another filesystem; "
					"stored empty\n", src, shown(path, show, sizeof(show)));
				b->warnings++;
				break;
			}
			int sub = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				snprintf(b->err, sizeof(b->err), "%s/%s: %s", src,
					 shown(path, show, sizeof(show)), strerror(errno));
				rc = -1;
				break;
			}
			rc = walk_dir(b, sub, path, src);
			close(sub);
			break;
		}
		case S_IFREG: {
			e->type = MF_REG;
			if (st.st_nlink > 1) {
				size_t k;
				for (k = 0; k < b->n_inodes; k++)
					if (b->inodes[k].dev == st.st_dev && b->inodes[k].ino == st.st_ino)
						break;
				if (k < b->n_inodes) {
					be->group = b->inodes[k].group; /* content already stored */
					break;
				}
				if (b->n_inodes == b->cap_inodes) {
					size_t c2 = b->cap_inodes ? b->cap_inodes * 2 : 64;
					void *p = realloc(b->inodes, c2 * sizeof(*b->inodes));
					if (!p)
						goto oom_names;
					b->inodes = p, b->cap_inodes = c2;
				}
				b->inodes[b->n_inodes].dev = st.st_dev;
				b->inodes[b->n_inodes].ino = st.st_ino;
				b->inodes[b->n_inodes++].group = be->group = ++b->n_groups;
			}
			int fd = openat(dirfd, names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
			char what[700];
			snprintf(what, sizeof(what), "%s/%s", src, shown(path, show, sizeof(show)));
			if (fd < 0) {
				snprintf(b->err, sizeof(b->err), "%s: %s", what, strerror(errno));
				rc = -1;
				break;
			}
			rc = image_blob_from_fd_packed(b->out, fd, what, b->chunk, e, &be->data_bytes,
						       b->err, sizeof(b->err));
			close(fd);
			break;
		}
		case S_IFLNK: {
			/* Stored as a link, whatever it points at (even outside
			 * the tree): it is never followed. */
			char target[MANIFEST_PATH_MAX + 2];
			ssize_t len = readlinkat(dirfd, names[i], target, sizeof(target));
			if (len <= 0 || (size_t)len > MANIFEST_PATH_MAX) {
				snprintf(b->err, sizeof(b->err), "%s/%s: unreadable or too long symlink", src,
					 shown(path, show, sizeof(show)));
				rc = -1;
				break;
			}
			target[len] = '\0';
			e->type = MF_SYMLINK;
			e->target = strdup(target);
			e->size = (uint64_t)len;
			e->mode = 0777;
			break;
		}
		case S_IFCHR: e->type = MF_CHR; e->rdev = st.st_rdev; break;
		case S_IFBLK: e->type = MF_BLK; e->rdev = st.st_rdev; break;
		case S_IFIFO: e->type = MF_FIFO; break;
		case S_IFSOCK: e->type = MF_SOCK; break;
		default:
			snprintf(b->err, sizeof(b->err), "%s/%s: unknown file type", src,
				 shown(path, show, sizeof(show)));
			rc = -1;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
oom_names:
oom:
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	snprintf(b->err, sizeof(b->err), "out of memory");
	return -1;
}

static int read_dir_root(struct build *b, const char *src)
{
	int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(b->err, sizeof(b->err), "rootfs %s: %s", src, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	b->root_dev = st.st_dev;
	struct bentry *root = add_entry(b, "");
	if (!root) {
		close(fd);
		return -1;
	}
	root->e.type = MF_DIR;
	set_meta(&root->e, &st);
	int rc = walk_dir(b, fd, "", src);
	close(fd);
	return rc;
}

/* --- a tarball, through libarchive: owners and modes from the headers --- */

/* "./a//b/" -> "a/b"; refuses ".." and names that would leave the root. */
static int tar_path(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (n == 0)
			break;
		if (n == 1 && p[0] == '.') {
			p += n;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			snprintf(err, errlen, "has a '..' component");
			return -1;
		}
		if (o + n + 2 > outlen || n > MANIFEST_NAME_MAX) {
			snprintf(err, errlen, "is too long");
			return -1;
		}
		if (o)
			out[o++] = '/';
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
	return 0;
}

static int read_tarball(struct build *b, const char *src)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	char show[600], path[MANIFEST_PATH_MAX + 2], why[100];
	int rc = -1;
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	if (archive_read_open_filename(a, src, 1 << 16) != ARCHIVE_OK) {
		snprintf(b->err, sizeof(b->err), "rootfs %s: %s", src, archive_error_string(a));
		goto out;
	}
	bool have_root = false;
	for (;;) {
		int r = archive_read_next_header(a, &ae);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			snprintf(b->err, sizeof(b->err), "rootfs %s: %s", src, archive_error_string(a));
			goto out;
		}
		const char *name = archive_entry_pathname(ae);
		if (!name || tar_path(name, path, sizeof(path), why, sizeof(why)) < 0) {
			snprintf(b->err, sizeof(b->err), "rootfs %s: entry '%s' %s", src,
				 name ? shown(name, show, sizeof(show)) : "(no name)",
				 name ? why : "has no name");
			goto out;
		}
		struct bentry *be = add_entry(b, path);
		if (!be) {
			snprintf(b->err, sizeof(b->err), "out of memory");
			goto out;
		}
		struct manifest_entry *e = &be->e;
		const struct stat *st = archive_entry_stat(ae);
		set_meta(e, st);
		e->uid = (uint32_t)archive_entry_uid(ae);
		e->gid = (uint32_t)archive_entry_gid(ae);
		const char *hl = archive_entry_hardlink(ae);
		if (hl) {
			char tp[MANIFEST_PATH_MAX + 2];
			if (tar_path(hl, tp, sizeof(tp), why, sizeof(why)) < 0) {
				snprintf(b->err, sizeof(b->err), "rootfs %s: hard link target of '%s' %s",
					 src, shown(path, show, sizeof(show)), why);
				goto out;
			}
			/* The target came earlier; the newest entry of that name. */
			struct bentry *t = NULL;
			for (size_t i = b->n - 1; i-- > 0;)
				if (strcmp(b->v[i].e.path, tp) == 0) {
					t = &b->v[i];
					break;
				}
			be = &b->v[b->n - 1];
			e = &be->e;
			if (!t || t->e.type != MF_REG) {
				snprintf(b->err, sizeof(b->err), "rootfs %s: '%s' is a hard link to '%s', "
					 "which is %s", src, shown(path, show, 300), tp,
					 t ? "not a regular file" : "not in the archive before it");
				goto out;
			}
			if (!t->group)
				t->group = ++b->n_groups;
			be->group = t->group;
			e->type = MF_REG;
			/* One inode: the link has its target's metadata, as
			 * tar's link() on extraction gives it. */
			e->mode = t->e.mode, e->uid = t->e.uid, e->gid = t->e.gid;
			e->mtime_sec = t->e.mtime_sec, e->mtime_nsec = t->e.mtime_nsec;
			continue;
		}
		switch (archive_entry_filetype(ae)) {
		case AE_IFDIR:
			e->type = MF_DIR;
			if (!path[0])
				have_root = true;
			break;
		case AE_IFLNK: {
			const char *t = archive_entry_symlink(ae);
			if (!t || !*t || strlen(t) > MANIFEST_PATH_MAX) {
				snprintf(b->err, sizeof(b->err), "rootfs %s: symlink '%s' has no usable target",
					 src, shown(path, show, sizeof(show)));
				goto out;
			}
			e->type = MF_SYMLINK;
			e->target = strdup(t);
			e->size = strlen(t);
			e->mode = 0777;
			break;
		}
		case AE_IFCHR: e->type = MF_CHR; e->rdev = archive_entry_rdev(ae); break;
		case AE_IFBLK: e->type = MF_BLK; e->rdev = archive_entry_rdev(ae); break;
		case AE_IFIFO: e->type = MF_FIFO; break;
		case AE_IFSOCK: e->type = MF_SOCK; break;
		case AE_IFREG: {
			e->type = MF_REG;
			char what[700];
			snprintf(what, sizeof(what), "rootfs %s: '%s'", src, shown(path, show, sizeof(show)));
			struct image_blob_writer *w = image_blob_begin_packed(b->out, b->chunk, b->err,
									      sizeof(b->err));
			if (!w)
				goto out;
			uint64_t pos = 0, size = (uint64_t)archive_entry_size(ae);
			const void *buf;
			size_t len;
			la_int64_t off;
			/* Blocks come with their offsets: a gap is a hole. */
			while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
				if (off < 0 || (uint64_t)off < pos || (uint64_t)off + len > size) {
					snprintf(b->err, sizeof(b->err), "%s: data block outside the file", what);
					image_blob_abort(w);
					goto out;
				}
				if ((uint64_t)off > pos && image_blob_hole(w, (uint64_t)off - pos) < 0)
					goto blob_fail;
				if (image_blob_write(w, buf, len) < 0)
					goto blob_fail;
				pos = (uint64_t)off + len;
			}
			if (r != ARCHIVE_EOF) {
				snprintf(b->err, sizeof(b->err), "%s: %s (truncated archive?)", what,
					 archive_error_string(a));
				image_blob_abort(w);
				goto out;
			}
			if (pos < size && image_blob_hole(w, size - pos) < 0)
				goto blob_fail;
			if (image_blob_commit(w, e, &be->data_bytes, b->err, sizeof(b->err)) < 0)
				goto out;
			break;
		blob_fail:
			snprintf(b->err, sizeof(b->err), "%s: cannot write its blob", what);
			image_blob_abort(w);
			goto out;
		}
		default:
			snprintf(b->err, sizeof(b->err), "rootfs %s: '%s' has an unknown file type", src,
				 shown(path, show, sizeof(show)));
			goto out;
		}
	}
	if (!have_root) {
		struct bentry *root = add_entry(b, "");
		if (!root)
			goto out;
		root->e.type = MF_DIR;
		root->e.mode = 0755;
	}
	rc = 0;
out:
	archive_read_free(a);
	return rc;
}

/* --- from the collected entries to a valid manifest --- */

static int cmp_bentry(const void *x, const void *y)
{
	const struct bentry *a = x, *b = y;
	int c = strcmp(a->e.path, b->e.path);
	if (c)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int finish_entries(struct build *b, const char *src)
{
	char show[600];
	qsort(b->v, b->n, sizeof(*b->v), cmp_bentry);
	/* A tarball may name a path twice: the last one wins, as for tar. A
	 * replaced file that was a hard-link target keeps its content. */
	size_t o = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (i + 1 < b->n && strcmp(b->v[i].e.path, b->v[i + 1].e.path) == 0) {
			manifest_entry_free(&b->v[i].e);
			continue;
		}
		b->v[o++] = b->v[i];
	}
	b->n = o;
	/* Parents a tarball did not list are made: directories 0755 root. */
	size_t n0 = b->n;
	for (size_t i = 0; i < n0; i++) {
		char parent[MANIFEST_PATH_MAX + 1];
		snprintf(parent, sizeof(parent), "%s", b->v[i].e.path);
		char *slash;
		while ((slash = strrchr(parent, '/'))) {
			*slash = '\0';
			bool found = false;
			for (size_t k = i; k-- > 0 && !found;)
				found = strcmp(b->v[k].e.path, parent) == 0;
			for (size_t k = n0; k < b->n && !found; k++)
				found = strcmp(b->v[k].e.path, parent) == 0;
			if (found)
				break;
			struct bentry *d = add_entry(b, parent);
			if (!d) {
				snprintf(b->err, sizeof(b->err), "out of memory");
				return -1;
			}
			d->e.type = MF_DIR;
			d->e.mode = 0755;
		}
	}
	if (b->n != n0)
		qsort(b->v, b->n, sizeof(*b->v), cmp_bentry);

	/* Hard links: the smallest path of a group is the regular file, the
	 * others name it. */
	size_t *primary = calloc(b->n_groups + 1, sizeof(size_t));
	size_t *holder = calloc(b->n_groups + 1, sizeof(size_t));
	if (!primary || !holder) {
		free(primary), free(holder);
		snprintf(b->err, sizeof(b->err), "out of memory");
		return -1;
	}
	for (size_t i = b->n; i-- > 0;) {
		struct bentry *be = &b->v[i];
		if (!be->group)
			continue;
		primary[be->group] = i + 1;
		if (be->e.has_digest)
			holder[be->group] = i + 1;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct bentry *be = &b->v[i];
		if (!be->group)
			continue;
		size_t p = primary[be->group] - 1, h = holder[be->group];
		if (!h) {
			snprintf(b->err, sizeof(b->err), "rootfs %s: hard links to '%s' lost their content",
				 src, shown(be->e.path, show, sizeof(show)));
			free(primary), free(holder);
			return -1;
		}
		if (i == p) {
			if (!be->e.has_digest) {
				const struct bentry *c = &b->v[h - 1];
				be->e.has_digest = true;
				memcpy(be->e.digest, c->e.digest, MANIFEST_DIGEST_LEN);
				be->e.packed = c->e.packed;
				memcpy(be->e.blob, c->e.blob, MANIFEST_DIGEST_LEN);
				be->e.size = c->e.size;
				be->data_bytes = c->data_bytes;
				be->e.n_chunks = c->e.n_chunks;
				if (c->e.n_chunks) {
					be->e.chunks = malloc(c->e.n_chunks * MANIFEST_DIGEST_LEN);
					if (be->e.chunks)
						memcpy(be->e.chunks, c->e.chunks, c->e.n_chunks * MANIFEST_DIGEST_LEN);
				}
			}
			continue;
		}
		free(be->e.chunks);
		be->e.chunks = NULL;
		be->e.n_chunks = 0;
		be->e.has_digest = false;
		be->e.packed = false;
		be->e.size = 0;
		be->data_bytes = 0;
		be->e.type = MF_HARDLINK;
		be->e.target = strdup(b->v[p].e.path);
	}
	free(primary);
	free(holder);
	return 0;
}

/* --- boot files: what the guest's init needs before anything else --- */

static void add_boot_file(struct manifest *m, const char *path)
{
	for (size_t i = 0; i < m->n_boot_files; i++)
		if (strcmp(m->boot_files[i], path) == 0)
			return;
	char **p = realloc(m->boot_files, (m->n_boot_files + 1) * sizeof(char *));
	if (!p)
		return;
	m->boot_files = p;
	if ((p[m->n_boot_files] = strdup(path)))
		m->n_boot_files++;
}

/* Join "a/b" and "../c/./d" into "a/c/d" (".." stops at the root, as in
 * the guest). out gets a manifest path (no leading '/'). */
static void join_path(const char *base, const char *rel, char *out, size_t outlen)
{
	char tmp[2 * MANIFEST_PATH_MAX + 4];
	snprintf(tmp, sizeof(tmp), "%s/%s", rel[0] == '/' ? "" : base, rel);
	size_t o = 0;
	out[0] = '\0';
	for (char *save = NULL, *c = strtok_r(tmp, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			char *slash = strrchr(out, '/');
			o = slash ? (size_t)(slash - out) : 0;
			out[o] = '\0';
			continue;
		}
		int n = snprintf(out + o, outlen - o, "%s%s", o ? "/" : "", c);
		if (n < 0 || (size_t)n >= outlen - o)
			return;
		o += (size_t)n;
	}
}

/* Resolve abs (a path in the image) component by component through
 * symlinks, as the guest's kernel will, adding every entry it passes to
 * the boot files; a script's interpreter is followed too. Best effort:
 * boot files are a prefetch hint. */
static void add_boot_chain(struct manifest *m, const char *out, const char *abs, int depth)
{
	char path[MANIFEST_PATH_MAX + 1], done[MANIFEST_PATH_MAX + 1], next[MANIFEST_PATH_MAX + 1];
	join_path("", abs, path, sizeof(path));
	int hops = 0;
	size_t pos = 0; /* path[0..pos) is resolved and has no symlinks */
	while (depth < 4) {
		size_t end = pos + (path[pos] == '/');
		end += strcspn(path + end, "/");
		snprintf(done, sizeof(done), "%.*s", (int)end, path);
		const struct manifest_entry *e = manifest_lookup(m, done);
		if (!e)
			return;
		if (e->type == MF_SYMLINK) {
			if (++hops > BUILD_MAX_SYMLINK_HOPS)
				return;
			add_boot_file(m, done);
			const char *slash = strrchr(done, '/');
			char parent[MANIFEST_PATH_MAX + 1];
			snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - done) : 0, done);
			char rest[MANIFEST_PATH_MAX + 1];
			snprintf(rest, sizeof(rest), "%s", path + end);
			char joined[2 * MANIFEST_PATH_MAX + 2];
			snprintf(joined, sizeof(joined), "%s%s", e->target, rest);
			join_path(parent, joined, next, sizeof(next));
			snprintf(path, sizeof(path), "%s", next);
			pos = 0;
			continue;
		}
		if (path[end] == '/') {
			if (e->type != MF_DIR)
				return;
			pos = end;
			continue;
		}
		/* The last component: the file itself. */
		add_boot_file(m, done);
		if (e->type == MF_HARDLINK)
			e = manifest_lookup(m, e->target);
		if (!e || e->type != MF_REG)
			return;
		char blob[4300], line[256] = {0};
		/* A packed file starts with its first chunk unless that is a
		 * hole (zeros: no "#!"). */
		if (manifest_chunk_hole(e, m->chunk_size, 0))
			return;
		image_blob_path(out, manifest_blob_name(e), blob, sizeof(blob));
		FILE *f = fopen(blob, "r");
		if (!f)
			return;
		bool got = fgets(line, sizeof(line), f) != NULL;
		fclose(f);
		if (got && line[0] == '#' && line[1] == '!') {
			char *interp = line + 2;
			interp += strspn(interp, " \t");
			interp[strcspn(interp, " \t\n")] = '\0';
			if (interp[0] == '/')
				add_boot_chain(m, out, interp, depth + 1);
		}
		return;
	}
}

/* --- the ext4 disk image --- */

static int run_cmd(char *const argv[], const char *log_path, char *err, size_t errlen)
{
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char tail[600] = "";
	FILE *f = fopen(log_path, "r");
	if (f) {
		size_t n = fread(tail, 1, sizeof(tail) - 1, f);
		tail[n] = '\0';
		fclose(f);
	}
	snprintf(err, errlen, "%s failed (exit %d): %s", argv[0],
		 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), tail);
	return -1;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		chmod(p, 0700), rmdir(p);
	else
		unlink(p);
	return 0;
}

static void rm_rf(const char *dir)
{
	/* Directories staged 0555 must be writable before they can be emptied. */
	nftw(dir, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
	rmdir(dir);
}

/* debugfs reads one command per line and takes "..." with "" for a quote
 * (lib/ss/parse.c). A newline cannot be expressed. */
static bool debugfs_quote(FILE *f, const char *path)
{
	if (strchr(path, '\n'))
		return false;
	fputs("\"/", f);
	for (const char *p = path; *p; p++) {
		if (*p == '"')
			fputc('"', f);
		fputc(*p, f);
	}
	fputc('"', f);
	return true;
}

static int build_disk(struct build *b, struct manifest *m, const uint8_t seed[MANIFEST_DIGEST_LEN],
		      int64_t fixed_time, char *err, size_t errlen)
{
	char stage[4200], img[4200], cmds[4200], log[4200], show[600];
	snprintf(stage, sizeof(stage), "%s/.stage.%d", b->out, (int)getpid());
	snprintf(img, sizeof(img), "%s/.disk.%d.img", b->out, (int)getpid());
	snprintf(cmds, sizeof(cmds), "%s/.debugfs.%d.cmds", b->out, (int)getpid());
	snprintf(log, sizeof(log), "%s/.mkfs.%d.log", b->out, (int)getpid());
	bool root = geteuid() == 0;
	int rc = -1;
	FILE *dbg = NULL;
	size_t n_dbg = 0;
	uint64_t data = 0;
	rm_rf(stage);
	if (mkdir(stage, 0755) < 0) {
		snprintf(err, errlen, "%s: %s", stage, strerror(errno));
		return -1;
	}
	int sfd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 1; i < m->n_entries; i++) {
		const struct manifest_entry *e = &m->entries[i];
		int r = 0;
		data += BUILD_FS_BLOCK;
		switch (e->type) {
		case MF_DIR: r = mkdirat(sfd, e->path, 0700); break;
		case MF_REG: {
			char blob[4300];
			image_blob_path(b->out, manifest_blob_name(e), blob, sizeof(blob));
			int in = open(blob, O_RDONLY | O_CLOEXEC);
			int o = openat(sfd, e->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			r = in < 0 || o < 0 || image_blob_expand(in, o, e, m->chunk_size) < 0 ? -1 : 0;
			if (in >= 0)
				close(in);
			if (o >= 0)
				close(o);
			break;
		}
		case MF_SYMLINK: r = symlinkat(e->target, sfd, e->path); break;
		case MF_HARDLINK: r = linkat(sfd, e->target, sfd, e->path, 0); break;
		case MF_FIFO: r = mknodat(sfd, e->path, S_IFIFO | 0600, 0); break;
		case MF_SOCK: r = mknodat(sfd, e->path, S_IFSOCK | 0600, 0); break;
		case MF_CHR:
		case MF_BLK:
			if (root) {
				r = mknodat(sfd, e->path, (e->type == MF_CHR ? S_IFCHR : S_IFBLK) | 0600,
					    (dev_t)e->rdev);
			}
			/* Else made by debugfs after mkfs: an unprivileged
			 * process cannot create device nodes. */
			break;
		}
		if (r < 0) {
			snprintf(err, errlen, "staging %s for the disk image: %s",
				 shown(e->path, show, sizeof(show)), strerror(errno));
			close(sfd);
			goto out;
		}
	}
	/* The debugfs script: devices (non-root), owners wherever the staging
	 * directory could not hold them, and ctime, which mkfs -d copies from
	 * the staging files (the time they were made) and utimensat cannot set:
	 * set to mtime, so that the disk's digest depends on the content only. */
	dbg = fopen(cmds, "w");
	for (size_t i = 0; dbg && i < m->n_entries; i++) {
		const struct manifest_entry *e = &m->entries[i];
		bool dev = (e->type == MF_CHR || e->type == MF_BLK) && !root;
		bool owner = !root && (e->uid != geteuid() || e->gid != getegid());
		/* Bytes that are not holes: a sparse file costs only its data. */
		if (e->type == MF_REG)
			data += (b->v[i].data_bytes + BUILD_FS_BLOCK - 1) / BUILD_FS_BLOCK * BUILD_FS_BLOCK;
		if (e->type == MF_HARDLINK)
			continue; /* shares the inode of its target */
		if (strchr(e->path, '\n')) {
			fprintf(stderr, "minivmm image build: warning: %s has a newline in its name, "
				"which debugfs cannot take: its ctime%s in the disk image are left as "
				"staged\n", shown(e->path, show, sizeof(show)),
				dev ? " (and the device node)" : owner ? " and owner" : "");
			b->warnings++;
			continue;
		}
		if (dev) {
			/* debugfs mknod links the name into its current
			 * directory as given: cd to the parent first. */
			const char *slash = strrchr(e->path, '/');
			fprintf(dbg, "cd \"/%.*s\"\nmknod \"", slash ? (int)(slash - e->path) : 0, e->path);
			for (const char *p = slash ? slash + 1 : e->path; *p; p++)
				fprintf(dbg, *p == '"' ? "\"\"" : "%c", *p);
			fprintf(dbg, "\" %c %u %u\ncd /\n", e->type == MF_CHR ? 'c' : 'b',
				major((dev_t)e->rdev), minor((dev_t)e->rdev));
			fprintf(dbg, "sif ");
			debugfs_quote(dbg, e->path);
			fprintf(dbg, " mode 0%o\n", (e->type == MF_CHR ? S_IFCHR : S_IFBLK) | e->mode);
			fprintf(dbg, "sif ");
			debugfs_quote(dbg, e->path);
			fprintf(dbg, " mtime @%lld\n", (long long)e->mtime_sec);
		}
		if (owner || dev) {
			fprintf(dbg, "sif ");
			debugfs_quote(dbg, e->path);
			fprintf(dbg, " uid %u\nsif ", e->uid);
			debugfs_quote(dbg, e->path);
			fprintf(dbg, " gid %u\n", e->gid);
		}
		const char *tf[] = {"ctime", "atime"};
		for (int k = 0; k < 2; k++) {
			fprintf(dbg, "sif ");
			debugfs_quote(dbg, e->path);
			fprintf(dbg, " %s @%lld\n", tf[k], (long long)e->mtime_sec);
		}
		n_dbg++;
	}
	if (!dbg || fclose(dbg) != 0) {
		dbg = NULL;
		snprintf(err, errlen, "%s: %s", cmds, strerror(errno));
		close(sfd);
		goto out;
	}
	dbg = NULL;
	/* Modes, owners and times last, deepest first, so a read-only
	 * directory is filled before it becomes read-only. */
	for (size_t i = m->n_entries; i-- > 0;) {
		const struct manifest_entry *e = &m->entries[i];
		const char *p = e->path[0] ? e->path : ".";
		if ((e->type == MF_CHR || e->type == MF_BLK) && !root)
			continue;
		if (e->type == MF_HARDLINK)
			continue;
		if (root && fchownat(sfd, p, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
			goto stage_err;
		if (e->type != MF_SYMLINK && fchmodat(sfd, p, e->mode, 0) < 0)
			goto stage_err;
		struct timespec ts[2] = {{e->mtime_sec, e->mtime_nsec}, {e->mtime_sec, e->mtime_nsec}};
		if (utimensat(sfd, p, ts, AT_SYMLINK_NOFOLLOW) < 0)
			goto stage_err;
		continue;
	stage_err:
		snprintf(err, errlen, "staging %s: %s", shown(p, show, sizeof(show)), strerror(errno));
		close(sfd);
		goto out;
	}
	close(sfd);

	uint64_t inodes = m->n_entries + BUILD_EXTRA_INODES;
	uint64_t bytes = data + inodes * BUILD_INODE_SIZE;
	bytes = bytes + bytes / 4 + BUILD_DISK_SLACK;
	bytes = (bytes + (1 << 20) - 1) & ~((uint64_t)(1 << 20) - 1);
	char uuid[40], seed_hex[2 * MANIFEST_DIGEST_LEN + 1], size_arg[32], inodes_arg[32],
		ext_arg[128], fake_time[32];
	manifest_digest_hex(seed, seed_hex);
	snprintf(uuid, sizeof(uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", seed_hex, seed_hex + 8,
		 seed_hex + 12, seed_hex + 16, seed_hex + 20);
	snprintf(size_arg, sizeof(size_arg), "%" PRIu64 "k", bytes >> 10);
	snprintf(inodes_arg, sizeof(inodes_arg), "%" PRIu64, inodes);
	snprintf(ext_arg, sizeof(ext_arg), "hash_seed=%s,root_owner=%u:%u", uuid,
		 m->entries[0].uid, m->entries[0].gid);
	snprintf(fake_time, sizeof(fake_time), "%lld", (long long)fixed_time);
	/* mke2fs reads E2FSPROGS_FAKE_TIME for the times it sets itself. */
	setenv("E2FSPROGS_FAKE_TIME", fake_time, 1);
	unlink(img);
	char *mkfs[] = {"mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256", "-L", "minivmm-root",
			"-U", uuid, "-E", ext_arg, "-N", inodes_arg, "-d", stage, img, size_arg, NULL};
	if (run_cmd(mkfs, log, err, errlen) < 0)
		goto out;
	if (n_dbg) {
		char *dbgfs[] = {"debugfs", "-w", "-f", cmds, img, NULL};
		if (run_cmd(dbgfs, log, err, errlen) < 0)
			goto out;
		/* debugfs reports a failed command but still exits 0. */
		FILE *lf = fopen(log, "r");
		char line[512];
		while (lf && fgets(line, sizeof(line), lf))
			if (strstr(line, "Could not") || strstr(line, "not found") ||
			    strstr(line, "Invalid")) {
				snprintf(err, errlen, "debugfs on the disk image: %s", line);
				fclose(lf);
				goto out;
			}
		if (lf)
			fclose(lf);
	}
	/* Check the result the way the guest will mount it. */
	char *fsck[] = {"e2fsck", "-fn", img, NULL};
	if (run_cmd(fsck, log, err, errlen) < 0)
		goto out;
	if (image_blob_from_file(b->out, img, m->chunk_size, &m->disk, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	unsetenv("E2FSPROGS_FAKE_TIME");
	if (dbg)
		fclose(dbg);
	rm_rf(stage);
	unlink(img);
	unlink(cmds);
	unlink(log);
	return rc;
}

/* --- the command --- */

static int validate_chunk(const char *v, char *err, size_t errlen)
{
	uint64_t s;
	if (parse_size(v, &s) < 0 || s < MANIFEST_MIN_CHUNK || s > MANIFEST_MAX_CHUNK || (s & (s - 1))) {
		snprintf(err, errlen, "'%s' is not a power of two from 4K to 1G", v);
		return -1;
	}
	return 0;
}

CLI_OPTION(.command = "image build", .name = "rootfs", .argname = "DIR|TARBALL",
	   .help = "the root filesystem: a directory or a tarball (any compression)")
CLI_OPTION(.command = "image build", .name = "kernel", .argname = "FILE",
	   .help = "the guest kernel (bzImage), e.g. /boot/vmlinuz-*")
CLI_OPTION(.command = "image build", .name = "modules", .argname = "DIR",
	   .help = "kernel modules for the initramfs (default /lib/modules/<kernel version>)")
CLI_OPTION(.command = "image build", .name = "cmdline", .argname = "STR",
	   .help = "kernel command line (default \"console=ttyS0\"); init=PATH picks the image's init")
CLI_OPTION(.command = "image build", .name = "chunk-size", .argname = "SIZE",
	   .help = "files larger than this get per-chunk digests (default 1M)",
	   .validate = validate_chunk)
CLI_OPTION(.command = "image build", .name = "out", .argname = "DIR",
	   .help = "where to write the image (manifest and blobs)")
CLI_OPTION(.command = "image build", .name = "name", .argname = "NAME",
	   .help = "the image's name in the manifest (default: the rootfs's name)")
CLI_OPTION(.command = "image build", .name = "busybox", .argname = "FILE",
	   .help = "static busybox for the initramfs (default /bin/busybox)")
CLI_OPTION(.command = "image build", .name = "profile", .argname = "FILE",
	   .help = "store FILE (from `run --record-profile`) as the image's prefetch profile")
CLI_OPTION(.command = "image build", .name = "no-disk",
	   .help = "skip the ext4 disk image (no full mode)")

static int build_main(const struct config *cfg)
{
	const char *rootfs = config_get(cfg, "rootfs"), *kernel = config_get(cfg, "kernel");
	const char *out = config_get(cfg, "out"), *modules = config_get(cfg, "modules");
	const char *busybox = config_get(cfg, "busybox");
	const char *cs = config_get(cfg, "chunk-size");
	if (!rootfs || !kernel || !out) {
		fprintf(stderr, "minivmm image build: --rootfs, --kernel and --out are required\n"
				"(see minivmm image build --help)\n");
		return EXIT_USAGE;
	}
	if (cfg->n_args) {
		fprintf(stderr, "minivmm image build: unexpected argument '%s'\n", cfg->args[0]);
		return EXIT_USAGE;
	}
	double t0 = clock_now_s();
	char err[1024], ver[128], moddir[4200];
	/* The kernel first: a missing or wrong kernel fails before any work. */
	if (image_kernel_version(kernel, ver, sizeof(ver), err, sizeof(err)) < 0) {
		fprintf(stderr, "minivmm image build: %s\n", err);
		return EXIT_SETUP;
	}
	if (!modules) {
		snprintf(moddir, sizeof(moddir), "/lib/modules/%s", ver);
		modules = moddir;
	}
	struct stat st;
	if (stat(rootfs, &st) < 0) {
		fprintf(stderr, "minivmm image build: rootfs %s: %s\n", rootfs, strerror(errno));
		return EXIT_SETUP;
	}
	if (mkdir_p(out, 0755) < 0) {
		fprintf(stderr, "minivmm image build: %s: %s\n", out, strerror(errno));
		return EXIT_SETUP;
	}
	/* An output inside the tree would be walked while it grows. */
	char rabs[4096], oabs[4096];
	if (S_ISDIR(st.st_mode) && realpath(rootfs, rabs) && realpath(out, oabs)) {
		size_t rl = strlen(rabs);
		if (strncmp(oabs, rabs, rl) == 0 && (oabs[rl] == '/' || oabs[rl] == '\0' || rl == 1)) {
			fprintf(stderr, "minivmm image build: --out %s is inside the rootfs %s\n", out, rootfs);
			return EXIT_USAGE;
		}
	}
	int64_t fixed_time = BUILD_FIXED_TIME;
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	if (sde && *sde)
		fixed_time = strtoll(sde, NULL, 10);

	struct build b = {.out = out, .chunk = MANIFEST_DEFAULT_CHUNK};
	if (cs)
		parse_size(cs, &b.chunk);
	struct manifest m = {0};
	int status = EXIT_SETUP;
	int rc = S_ISDIR(st.st_mode) ? read_dir_root(&b, rootfs) : read_tarball(&b, rootfs);
	if (rc == 0)
		rc = finish_entries(&b, rootfs);
	if (rc < 0) {
		fprintf(stderr, "minivmm image build: %s\n", b.err);
		goto out;
	}
	double t_walk = clock_now_s();

	m.version = MANIFEST_VERSION;
	const char *name = config_get(cfg, "name");
	if (!name) {
		const char *slash = strrchr(rootfs, '/');
		name = slash && slash[1] ? slash + 1 : rootfs;
	}
	m.name = strdup(name);
	m.chunk_size = b.chunk;
	m.blobs_url = strdup(MANIFEST_DEFAULT_BLOBS);
	m.cmdline = strdup(config_get(cfg, "cmdline") ? config_get(cfg, "cmdline") : BUILD_DEFAULT_CMDLINE);
	m.entries = calloc(b.n, sizeof(*m.entries));
	if (!m.name || !m.blobs_url || !m.cmdline || !m.entries) {
		fprintf(stderr, "minivmm image build: out of memory\n");
		goto out;
	}
	uint64_t data_bytes = 0;
	for (size_t i = 0; i < b.n; i++) {
		m.entries[i] = b.v[i].e;
		memset(&b.v[i].e, 0, sizeof(b.v[i].e));
		if (m.entries[i].type == MF_REG)
			m.total_bytes += m.entries[i].size;
		data_bytes += b.v[i].data_bytes;
	}
	m.n_entries = b.n;
	if (manifest_validate(&m, err, sizeof(err)) < 0) {
		fprintf(stderr, "minivmm image build: rootfs %s: %s\n", rootfs, err);
		goto out;
	}
	/* The guest's init and what it runs first. */
	const char *init = BUILD_DEFAULT_INIT;
	char initbuf[MANIFEST_PATH_MAX + 1];
	const char *ip = strstr(m.cmdline, "init=");
	while (ip && ip != m.cmdline && ip[-1] != ' ')
		ip = strstr(ip + 1, "init=");
	if (ip) {
		snprintf(initbuf, sizeof(initbuf), "%.*s", (int)strcspn(ip + 5, " "), ip + 5);
		init = initbuf;
	}
	add_boot_chain(&m, out, init, 0);
	if (!m.n_boot_files)
		fprintf(stderr, "minivmm image build: warning: the image has no %s (its init)\n", init),
			b.warnings++;

	/* Kernel and the two initramfs images. */
	if (image_blob_from_file(out, kernel, b.chunk, &m.kernel, err, sizeof(err)) < 0) {
		fprintf(stderr, "minivmm image build: %s\n", err);
		goto out;
	}
	for (int lazy = 1; lazy >= 0; lazy--) {
		void *ird = NULL;
		size_t ilen;
		rc = image_initramfs_build(modules, lazy, busybox ? busybox : BUILD_DEFAULT_BUSYBOX,
					   &ird, &ilen, err, sizeof(err));
		if (rc == 0)
			rc = image_blob_from_buf(out, ird, ilen, lazy ? &m.initrd_lazy : &m.initrd_full,
						 err, sizeof(err));
		free(ird);
		if (rc < 0) {
			fprintf(stderr, "minivmm image build: %s initramfs: %s\n", lazy ? "lazy" : "full", err);
			goto out;
		}
	}
	double t_boot = clock_now_s();

	if (!config_flag(cfg, "no-disk")) {
		/* UUID and hash seed from the content: same files, same disk. */
		void *js;
		size_t jlen;
		uint8_t seed[MANIFEST_DIGEST_LEN];
		unsigned dl;
		if (manifest_write(&m, false, &js, &jlen, err, sizeof(err)) < 0) {
			fprintf(stderr, "minivmm image build: %s\n", err);
			goto out;
		}
		EVP_Digest(js, jlen, seed, &dl, EVP_sha256(), NULL);
		free(js);
		if (build_disk(&b, &m, seed, fixed_time, err, sizeof(err)) < 0) {
			fprintf(stderr, "minivmm image build: disk image: %s\n", err);
			goto out;
		}
		/* What the disk holds, so that verify tells when the files
		 * changed after it was built (a write-back). */
		if (manifest_tree_digest(&m, m.disk_tree) < 0) {
			fprintf(stderr, "minivmm image build: out of memory\n");
			goto out;
		}
		m.disk_tree_present = true;
	}
	double t_disk = clock_now_s();

	/* After the disk: its seed is the manifest without the profile, so
	 * the same files give the same disk with or without one. */
	const char *prof = config_get(cfg, "profile");
	if (prof) {
		char **pv;
		size_t pn, bad, kept, skipped;
		if (manifest_profile_read(prof, &pv, &pn, &bad, err, sizeof(err)) < 0) {
			fprintf(stderr, "minivmm image build: --profile: %s\n", err);
			goto out;
		}
		int prc = manifest_profile_set(&m, pv, pn, &kept, &skipped, err, sizeof(err));
		manifest_profile_free(pv, pn);
		if (prc < 0) {
			fprintf(stderr, "minivmm image build: --profile: %s\n", err);
			goto out;
		}
		if (skipped + bad)
			fprintf(stderr, "minivmm image build: --profile: %zu entries are not files of "
				"the image: skipped\n", skipped + bad);
	}

	char mpath[4200], zpath[4200];
	snprintf(mpath, sizeof(mpath), "%s/%s", out, MANIFEST_FILE);
	snprintf(zpath, sizeof(zpath), "%s/%s", out, MANIFEST_FILE_ZST);
	if (manifest_write_file(&m, mpath, false, err, sizeof(err)) < 0 ||
	    manifest_write_file(&m, zpath, true, err, sizeof(err)) < 0) {
		fprintf(stderr, "minivmm image build: %s\n", err);
		goto out;
	}
	struct stat ms, zs;
	stat(mpath, &ms);
	stat(zpath, &zs);
	size_t counts[8] = {0};
	for (size_t i = 0; i < m.n_entries; i++)
		counts[m.entries[i].type]++;
	uint64_t boot_bytes = m.kernel.size + m.initrd_lazy.size + (uint64_t)zs.st_size;
	for (size_t i = 0; i < m.n_boot_files; i++) {
		const struct manifest_entry *e = manifest_lookup(&m, m.boot_files[i]);
		if (e && e->type == MF_REG)
			boot_bytes += e->size;
	}
	printf("image %s (%s) in %s\n", m.name, ver, out);
	printf("  entries: %zu (%zu regular, %zu dirs, %zu symlinks, %zu hard links, %zu other)\n",
	       m.n_entries, counts[MF_REG], counts[MF_DIR], counts[MF_SYMLINK], counts[MF_HARDLINK],
	       counts[MF_CHR] + counts[MF_BLK] + counts[MF_FIFO] + counts[MF_SOCK]);
	printf("  content: %" PRIu64 " bytes (%" PRIu64 " not in holes)\n", m.total_bytes, data_bytes);
	printf("  boot portion: %" PRIu64 " bytes (kernel %" PRIu64 ", lazy initramfs %" PRIu64
	       ", manifest.json.zst %lld, %zu boot files)\n", boot_bytes, m.kernel.size,
	       m.initrd_lazy.size, (long long)zs.st_size, m.n_boot_files);
	printf("  full initramfs: %" PRIu64 " bytes\n", m.initrd_full.size);
	if (m.disk.present) {
		char hex[65];
		manifest_digest_hex(m.disk.digest, hex);
		printf("  disk image: %" PRIu64 " bytes, ext4, sha256 %s\n", m.disk.size, hex);
	}
	printf("  manifest: %lld bytes (%lld zstd)\n", (long long)ms.st_size, (long long)zs.st_size);
	printf("  time: %.2f s (walk+hash %.2f, boot %.2f, disk %.2f)%s\n", clock_now_s() - t0,
	       t_walk - t0, t_boot - t_walk, t_disk - t_boot,
	       b.warnings ? ", with warnings above" : "");
	status = EXIT_OK;
out:
	for (size_t i = 0; i < b.n; i++)
		manifest_entry_free(&b.v[i].e);
	free(b.v);
	free(b.inodes);
	manifest_free(&m);
	return status;
}

CLI_COMMAND(.name = "image build", .usage = "",
	    .summary = "build an image (manifest, blobs, boot portion, ext4 disk) from a root filesystem",
	    .main = build_main)
