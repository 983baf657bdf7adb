/*
 * image build's first input: a directory tree, walked in sorted order
 * with lstat (a symlink is never followed), hard links grouped by inode,
 * each regular file stored as a blob as it is read.
 */
#include "image/build_priv.h"
#include "lib/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int build_walk_dir(struct build *b, int dirfd, const char *rel, const char *src)
{
	char show[600];
	int fd2 = dup(dirfd);
	DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
	if (!d) {
		snprintf(b->err, sizeof(b->err), "%s/%s: %s", src, build_shown(rel, show, sizeof(show)), strerror(errno));
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
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char path[MANIFEST_PATH_MAX + 2];
		int plen = snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", names[i]);
		if (plen < 0 || (size_t)plen > MANIFEST_PATH_MAX) {
			snprintf(b->err, sizeof(b->err), "%s/%s/%s: path longer than %d bytes", src,
				 build_shown(rel, show, 300), names[i], MANIFEST_PATH_MAX);
			rc = -1;
			break;
		}
		struct stat st;
		if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			snprintf(b->err, sizeof(b->err), "%s/%s: %s", src, build_shown(path, show, sizeof(show)),
				 strerror(errno));
			rc = -1;
			break;
		}
		struct bentry *be = build_add_entry(b, path);
		if (!be)
			goto oom_names;
		struct manifest_entry *e = &be->e;
		build_set_meta(e, &st);
		switch (st.st_mode & S_IFMT) {
		case S_IFDIR: {
			e->type = MF_DIR;
			if (st.st_dev != b->root_dev) {
				/* A mount point inside the tree (a chroot's /proc): the
				 * directory is kept, what is mounted on it is not. */
				log_warn("image build: %s/%s is another filesystem; stored empty", src,
					 build_shown(path, show, sizeof(show)));
				b->warnings++;
				break;
			}
			int sub = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				snprintf(b->err, sizeof(b->err), "%s/%s: %s", src,
					 build_shown(path, show, sizeof(show)), strerror(errno));
				rc = -1;
				break;
			}
			rc = build_walk_dir(b, sub, path, src);
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
			snprintf(what, sizeof(what), "%s/%s", src, build_shown(path, show, sizeof(show)));
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
					 build_shown(path, show, sizeof(show)));
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
				 build_shown(path, show, sizeof(show)));
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

int build_read_dir(struct build *b, const char *src)
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
	struct bentry *root = build_add_entry(b, "");
	if (!root) {
		close(fd);
		return -1;
	}
	root->e.type = MF_DIR;
	build_set_meta(&root->e, &st);
	int rc = build_walk_dir(b, fd, "", src);
	close(fd);
	return rc;
}

