/*
 * The local-directory backend (fs/backend.h): serve a host directory as
 * the image, for tests and for `minivmm run --fs-root DIR`. The directory
 * is only read; the guest's writes go to the upper layer.
 */
#include "fs/backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct dir_backend {
	int root_fd;
};

void *fs_backend_dir_open(const char *root_dir)
{
	struct dir_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->root_fd = open(root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->root_fd < 0) {
		int e = errno;
		free(b);
		errno = e;
		return NULL;
	}
	return b;
}

static int dir_open_content(void *ctx, const struct manifest_entry *e, struct fs_fetch_info *info)
{
	struct dir_backend *b = ctx;
	struct open_how how = {
		.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, b->root_fd, e->path, &how, sizeof(how));
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EIO; /* the host tree changed under us */
	}
	return fd;
}

static ssize_t dir_read_range(void *ctx, const struct manifest_entry *e, uint64_t off,
			      void *buf, size_t len, struct fs_fetch_info *info)
{
	int fd = dir_open_content(ctx, e, info);
	if (fd < 0)
		return fd;
	ssize_t n = pread(fd, buf, len, (off_t)off);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

static void dir_destroy(void *ctx)
{
	struct dir_backend *b = ctx;
	close(b->root_fd);
	free(b);
}

const struct fs_backend fs_backend_dir = {
	.name = "dir",
	.open_content = dir_open_content,
	.read_range = dir_read_range,
	.destroy = dir_destroy,
};

/* --- a manifest describing a host directory --- */

struct scan {
	struct manifest *m;
	size_t cap;
	struct { dev_t dev; ino_t ino; char *path; } *links;
	size_t n_links, cap_links;
	char *err;
	size_t errlen;
};

static struct manifest_entry *scan_add(struct scan *s)
{
	if (s->m->n_entries == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct manifest_entry *e = realloc(s->m->entries, cap * sizeof(*e));
		if (!e)
			return NULL;
		s->m->entries = e;
		s->cap = cap;
	}
	struct manifest_entry *e = &s->m->entries[s->m->n_entries++];
	memset(e, 0, sizeof(*e));
	return e;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int scan_dir(struct scan *s, int dfd, const char *prefix, int depth)
{
	if (depth > 256) {
		snprintf(s->err, s->errlen, "%s: too deep", prefix);
		return -1;
	}
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		snprintf(s->err, s->errlen, "%s: %s", prefix[0] ? prefix : ".", strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **t = realloc(names, cap * sizeof(*t));
			if (!t)
				break;
			names = t;
		}
		names[n++] = strdup(de->d_name);
	}
	/* A directory read short (no memory) must not become a tree that
	 * silently lacks files. */
	bool short_read = de != NULL;
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	int rc = 0;
	if (short_read) {
		snprintf(s->err, s->errlen, "%s: out of memory listing the directory",
			 prefix[0] ? prefix : ".");
		rc = -1;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct stat st;
		if (!names[i] || fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			snprintf(s->err, s->errlen, "%s/%s: %s", prefix, names[i] ? names[i] : "?",
				 strerror(errno));
			rc = -1;
			break;
		}
		size_t plen = strlen(prefix);
		char *path = malloc(plen + strlen(names[i]) + 2);
		if (!path) {
			rc = -1;
			break;
		}
		sprintf(path, plen ? "%s/%s" : "%s%s", prefix, names[i]);
		struct manifest_entry *e = scan_add(s);
		if (!e) {
			free(path);
			rc = -1;
			break;
		}
		e->path = path;
		e->mode = st.st_mode & 07777;
		e->uid = st.st_uid;
		e->gid = st.st_gid;
		e->mtime_sec = st.st_mtim.tv_sec;
		e->mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
		switch (st.st_mode & S_IFMT) {
		case S_IFREG:
			if (st.st_nlink > 1) {
				for (size_t k = 0; k < s->n_links; k++)
					if (s->links[k].dev == st.st_dev && s->links[k].ino == st.st_ino) {
						e->type = MF_HARDLINK;
						e->target = strdup(s->links[k].path);
						break;
					}
				if (e->type == MF_HARDLINK)
					break;
				if (s->n_links == s->cap_links) {
					size_t c = s->cap_links ? s->cap_links * 2 : 16;
					void *t = realloc(s->links, c * sizeof(*s->links));
					if (t) {
						s->links = t;
						s->cap_links = c;
					}
				}
				if (s->n_links < s->cap_links) {
					s->links[s->n_links].dev = st.st_dev;
					s->links[s->n_links].ino = st.st_ino;
					s->links[s->n_links].path = path;
					s->n_links++;
				}
			}
			e->type = MF_REG;
			e->size = (uint64_t)st.st_size;
			s->m->total_bytes += e->size;
			break;
		case S_IFDIR: {
			e->type = MF_DIR;
			int sub = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				snprintf(s->err, s->errlen, "%s: %s", path, strerror(errno));
				rc = -1;
				break;
			}
			rc = scan_dir(s, sub, path, depth + 1);
			close(sub);
			break;
		}
		case S_IFLNK: {
			char buf[4096];
			ssize_t l = readlinkat(dfd, names[i], buf, sizeof(buf) - 1);
			if (l < 0) {
				snprintf(s->err, s->errlen, "%s: %s", path, strerror(errno));
				rc = -1;
				break;
			}
			buf[l] = 0;
			e->type = MF_SYMLINK;
			e->target = strdup(buf);
			e->size = (uint64_t)l;
			break;
		}
		case S_IFCHR: e->type = MF_CHR; e->rdev = st.st_rdev; break;
		case S_IFBLK: e->type = MF_BLK; e->rdev = st.st_rdev; break;
		case S_IFIFO: e->type = MF_FIFO; break;
		default: e->type = MF_SOCK; break;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

struct manifest *fs_manifest_from_dir(const char *root_dir, char *err, size_t errlen)
{
	struct scan s = {.err = err, .errlen = errlen};
	s.m = calloc(1, sizeof(*s.m));
	int fd = open(root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!s.m || fd < 0) {
		snprintf(err, errlen, "%s: %s", root_dir, fd < 0 ? strerror(errno) : "out of memory");
		if (fd >= 0)
			close(fd);
		free(s.m);
		return NULL;
	}
	s.m->version = MANIFEST_VERSION;
	s.m->name = strdup(root_dir);
	struct stat st;
	struct manifest_entry *root = scan_add(&s);
	if (!root || fstat(fd, &st) < 0) {
		close(fd);
		fs_manifest_free(s.m);
		return NULL;
	}
	root->path = strdup("");
	root->type = MF_DIR;
	root->mode = st.st_mode & 07777;
	root->uid = st.st_uid;
	root->gid = st.st_gid;
	root->mtime_sec = st.st_mtim.tv_sec;
	int rc = scan_dir(&s, fd, "", 0);
	close(fd);
	free(s.links);
	if (rc < 0) {
		fs_manifest_free(s.m);
		return NULL;
	}
	return s.m;
}

void fs_manifest_free(struct manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_entries; i++) {
		free(m->entries[i].path);
		free(m->entries[i].target);
	}
	free(m->entries);
	free(m->name);
	free(m->blobs_url);
	free(m);
}
