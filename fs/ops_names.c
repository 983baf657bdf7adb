/*
 * Names and attributes: LOOKUP, FORGET, GETATTR, SETATTR, ACCESS, STATFS,
 * READLINK, and the namespace edits (MKNOD, MKDIR, SYMLINK, LINK, UNLINK,
 * RMDIR, RENAME). All of them are table edits answered from memory; only a
 * SETATTR that changes a size copies the file up (fs/copyup.c).
 *
 * Deleting is dropping the name (the whiteout is the absence); renames
 * and hard links move or add names. A path no manifest could hold is
 * refused (ENAMETOOLONG) rather than lost at write-back.
 */
#include "fs/fuse_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#define RENAME_WHITEOUT (1 << 2)
#endif

ssize_t fs_op_lookup(struct fs_req *r)
{
	size_t off = 0, len;
	const char *name;
	int rc = fuse_wire_name(r, &off, &name, &len);
	if (rc || (rc = fs_name_check(name, len)))
		return rc;
	struct fs_node *dir = fs_guest_dir(r->fs, r->h.nodeid, &rc);
	if (!dir)
		return rc;
	struct fs_dentry *d = fs_dentry_find(r->fs, dir, name, len);
	if (!d)
		return -ENOENT;
	return fs_reply_entry(r, d->node);
}

static void forget_one(struct fs *fs, uint64_t id, uint64_t count)
{
	struct fs_node *n = fs_node_get(fs, id);
	if (!n || id == 1)
		return;
	n->nlookup = count > n->nlookup ? 0 : n->nlookup - count;
	fs_node_maybe_free(fs, n);
}

ssize_t fs_op_forget(struct fs_req *r)
{
	struct fuse_forget_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	forget_one(r->fs, r->h.nodeid, in.nlookup);
	return 0;
}

ssize_t fs_op_batch_forget(struct fs_req *r)
{
	struct fuse_batch_forget_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	/* The wire layer checked body_len >= sizeof(in); a count past the body
	 * is cut to what it holds. */
	size_t avail = (r->body_len - sizeof(in)) / sizeof(struct fuse_forget_one);
	size_t count = in.count < avail ? in.count : avail;
	for (size_t i = 0; i < count; i++) {
		struct fuse_forget_one one;
		memcpy(&one, r->body + sizeof(in) + i * sizeof(one), sizeof(one));
		forget_one(r->fs, one.nodeid, one.nlookup);
	}
	return 0;
}

ssize_t fs_op_getattr(struct fs_req *r)
{
	struct fs_node *n = fs_guest_node(r->fs, r->h.nodeid);
	if (!n)
		return -ENOENT;
	return fs_reply_attr(r, n);
}

static int truncate_node(struct fs *fs, struct fs_node *n, uint64_t size)
{
	if (S_ISDIR(n->mode))
		return -EISDIR;
	if (!S_ISREG(n->mode))
		return -EINVAL;
	if (size > fs->max_file_size)
		return -EFBIG;
	if (size == n->size)
		return 0;
	n->nopen++; /* pinned across copy_up's unlock */
	int rc = fs_copy_up(fs, n, size == 0);
	if (rc == 0) {
		int fd = fs_upper_open(fs, n, O_WRONLY);
		if (fd < 0)
			rc = fd;
		else {
			if (ftruncate(fd, (off_t)size) < 0)
				rc = -errno;
			close(fd);
		}
		if (rc == 0)
			n->size = size;
	}
	n->nopen--;
	return rc;
}

static void set_time(struct timespec *ts, uint64_t sec, uint32_t nsec, bool now)
{
	if (now) {
		fs_now(ts);
	} else {
		ts->tv_sec = (time_t)sec;
		ts->tv_nsec = nsec < 1000000000u ? nsec : 999999999;
	}
}

ssize_t fs_op_setattr(struct fs_req *r)
{
	struct fuse_setattr_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	struct fs *fs = r->fs;
	struct fs_node *n = fs_guest_node(fs, r->h.nodeid);
	if (!n)
		return -ENOENT;
	if (fs->read_only)
		return -EROFS;
	if (in.valid & FATTR_FH) {
		struct fs_fh *h = fs_fh_get(fs, in.fh, n->id);
		if (!h)
			return -EBADF;
		fs_fh_put(fs, h);
	}
	if (in.valid & FATTR_SIZE) {
		n->nopen++;
		int rc = truncate_node(fs, n, in.size);
		n->nopen--;
		if (rc)
			return rc;
		fs_touch(n, true, true);
	}
	if (in.valid & FATTR_MODE)
		n->mode = (n->mode & S_IFMT) | (in.mode & 07777);
	if (in.valid & FATTR_UID)
		n->uid = in.uid;
	if (in.valid & FATTR_GID)
		n->gid = in.gid;
	if ((in.valid & FATTR_KILL_SUIDGID) && S_ISREG(n->mode))
		n->mode &= ~(uint32_t)(S_ISUID | S_ISGID);
	if (in.valid & (FATTR_ATIME | FATTR_ATIME_NOW))
		set_time(&n->atime, in.atime, in.atimensec, in.valid & FATTR_ATIME_NOW);
	if (in.valid & (FATTR_MTIME | FATTR_MTIME_NOW))
		set_time(&n->mtime, in.mtime, in.mtimensec, in.valid & FATTR_MTIME_NOW);
	if (in.valid & FATTR_CTIME)
		set_time(&n->ctime, in.ctime, in.ctimensec, false);
	else if (in.valid & (FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_SIZE | FATTR_ATIME |
			     FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW))
		fs_touch(n, false, true);
	fs->dirty = true;
	return fs_reply_attr(r, n);
}

ssize_t fs_op_readlink(struct fs_req *r)
{
	struct fs_node *n = fs_guest_node(r->fs, r->h.nodeid);
	if (!n)
		return -ENOENT;
	if (!S_ISLNK(n->mode) || !n->symlink)
		return -EINVAL;
	return fuse_wire_reply(r, n->symlink, strlen(n->symlink));
}

/* Common part of MKNOD, MKDIR, SYMLINK, CREATE: a new name in dir. */
struct fs_node *fs_new_child(struct fs_req *r, uint64_t dirid, const char *name, size_t len,
			     uint32_t mode, int *err)
{
	struct fs *fs = r->fs;
	if ((*err = fs_name_check(name, len)))
		return NULL;
	struct fs_node *dir = fs_guest_dir(fs, dirid, err);
	if (!dir)
		return NULL;
	if (fs->read_only) {
		*err = -EROFS;
		return NULL;
	}
	if (fs_dentry_find(fs, dir, name, len)) {
		*err = -EEXIST;
		return NULL;
	}
	/* A path no manifest can hold would be lost at write-back. */
	if (fs_child_pathlen(dir, len) > FS_PATH_MAX) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	if ((*err = fs_may_add(fs, true)))
		return NULL;
	uint32_t gid = r->h.gid;
	if (dir->mode & S_ISGID) { /* BSD group semantics of a setgid directory */
		gid = dir->gid;
		if (S_ISDIR(mode))
			mode |= S_ISGID;
	}
	struct fs_node *n = fs_node_new(fs, mode, r->h.uid, gid);
	if (!n) {
		*err = -ENOMEM;
		return NULL;
	}
	if (S_ISREG(mode)) {
		int fd = fs_upper_open(fs, n, O_CREAT | O_TRUNC | O_WRONLY);
		if (fd < 0) {
			*err = fd;
			n->nlink = 0;
			fs_node_maybe_free(fs, n);
			return NULL;
		}
		close(fd);
		n->upper = true;
	}
	if (!fs_dentry_add(fs, dir, name, len, n)) {
		*err = -ENOMEM;
		n->nlink = 0;
		fs_node_maybe_free(fs, n);
		return NULL;
	}
	if (S_ISDIR(mode))
		dir->nlink++;
	fs_touch(dir, true, true);
	fs->dirty = true;
	return n;
}

ssize_t fs_op_mknod(struct fs_req *r)
{
	struct fuse_mknod_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	int rc;
	size_t off = r->fs->proto_minor < 12 ? FUSE_COMPAT_MKNOD_IN_SIZE : sizeof(in);
	if (r->body_len < off)
		return -EINVAL;
	const char *name;
	size_t len;
	if ((rc = fuse_wire_name(r, &off, &name, &len)))
		return rc;
	uint32_t t = in.mode & S_IFMT;
	if (t != S_IFREG && t != S_IFCHR && t != S_IFBLK && t != S_IFIFO && t != S_IFSOCK)
		return -EINVAL;
	struct fs_node *n = fs_new_child(r, r->h.nodeid, name, len, t | (in.mode & 07777), &rc);
	if (!n)
		return rc;
	if (t == S_IFCHR || t == S_IFBLK)
		n->rdev = in.rdev;
	return fs_reply_entry(r, n);
}

ssize_t fs_op_mkdir(struct fs_req *r)
{
	struct fuse_mkdir_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	int rc;
	size_t off = sizeof(in), len;
	const char *name;
	if ((rc = fuse_wire_name(r, &off, &name, &len)))
		return rc;
	struct fs_node *n = fs_new_child(r, r->h.nodeid, name, len, S_IFDIR | (in.mode & 07777), &rc);
	if (!n)
		return rc;
	n->parent = fs_node_get(r->fs, r->h.nodeid);
	return fs_reply_entry(r, n);
}

ssize_t fs_op_symlink(struct fs_req *r)
{
	size_t off = 0, len, tlen;
	const char *name, *target;
	int rc;
	if ((rc = fuse_wire_name(r, &off, &name, &len)) || (rc = fuse_wire_name(r, &off, &target, &tlen)))
		return rc;
	if (tlen == 0)
		return -ENOENT;
	if (tlen > FS_SYMLINK_MAX)
		return -ENAMETOOLONG;
	char *copy = strndup(target, tlen);
	if (!copy)
		return -ENOMEM;
	struct fs_node *n = fs_new_child(r, r->h.nodeid, name, len, S_IFLNK | 0777, &rc);
	if (!n) {
		free(copy);
		return rc;
	}
	n->symlink = copy;
	n->size = tlen;
	return fs_reply_entry(r, n);
}

static ssize_t remove_name(struct fs_req *r, bool want_dir)
{
	struct fs *fs = r->fs;
	size_t off = 0, len;
	const char *name;
	int rc = fuse_wire_name(r, &off, &name, &len);
	if (rc || (rc = fs_name_check(name, len)))
		return rc;
	struct fs_node *dir = fs_guest_dir(fs, r->h.nodeid, &rc);
	if (!dir)
		return rc;
	struct fs_dentry *d = fs_dentry_find(fs, dir, name, len);
	if (!d)
		return -ENOENT;
	if (fs->read_only)
		return -EROFS;
	struct fs_node *n = d->node;
	if (want_dir && !S_ISDIR(n->mode))
		return -ENOTDIR;
	if (!want_dir && S_ISDIR(n->mode))
		return -EISDIR;
	if (want_dir && n->nentries)
		return -ENOTEMPTY;
	fs_dentry_remove(fs, d);
	if (want_dir) {
		n->nlink = 0;
		dir->nlink--;
	} else {
		n->nlink--;
	}
	fs_touch(n, false, true);
	fs_touch(dir, true, true);
	fs->dirty = true;
	fs_node_maybe_free(fs, n);
	return fuse_wire_reply(r, NULL, 0);
}

ssize_t fs_op_unlink(struct fs_req *r) { return remove_name(r, false); }
ssize_t fs_op_rmdir(struct fs_req *r) { return remove_name(r, true); }

/* Is a inside (or equal to) directory d? */
static bool is_within(struct fs_node *a, struct fs_node *d)
{
	for (int depth = 0; depth < 100000; depth++) {
		if (a == d)
			return true;
		if (a->id == 1 || !a->parent || a->parent == a)
			return false;
		a = a->parent;
	}
	return true; /* a corrupt chain: refuse */
}

static ssize_t do_rename(struct fs_req *r, uint64_t newdir_id, uint32_t flags, size_t off)
{
	struct fs *fs = r->fs;
	const char *oname, *nname;
	size_t olen, nlen;
	int rc;
	if ((rc = fuse_wire_name(r, &off, &oname, &olen)) || (rc = fuse_wire_name(r, &off, &nname, &nlen)))
		return rc;
	if ((rc = fs_name_check(oname, olen)) || (rc = fs_name_check(nname, nlen)))
		return rc;
	if (flags & ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL; /* RENAME_WHITEOUT: overlayfs-on-FUSE only */
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	struct fs_node *odir = fs_guest_dir(fs, r->h.nodeid, &rc);
	if (!odir)
		return rc;
	struct fs_node *ndir = fs_guest_dir(fs, newdir_id, &rc);
	if (!ndir)
		return rc;
	struct fs_dentry *od = fs_dentry_find(fs, odir, oname, olen);
	if (!od)
		return -ENOENT;
	if (fs->read_only)
		return -EROFS;
	struct fs_dentry *nd = fs_dentry_find(fs, ndir, nname, nlen);
	struct fs_node *src = od->node;
	if (S_ISDIR(src->mode) && is_within(ndir, src))
		return -EINVAL; /* into itself */
	/* Every path the move makes (a directory's whole subtree) must fit
	 * in a manifest: refused now rather than lost at write-back. */
	size_t src_ext = 0, dst_ext = 0;
	if (S_ISDIR(src->mode) && (rc = fs_subtree_extent(src, &src_ext)))
		return rc;
	if (fs_child_pathlen(ndir, nlen) + src_ext > FS_PATH_MAX)
		return -ENAMETOOLONG;
	if (flags & RENAME_EXCHANGE) {
		if (!nd)
			return -ENOENT;
		struct fs_node *dst = nd->node;
		if (S_ISDIR(dst->mode) && is_within(odir, dst))
			return -EINVAL;
		if (od == nd)
			return fuse_wire_reply(r, NULL, 0);
		if (S_ISDIR(dst->mode) && (rc = fs_subtree_extent(dst, &dst_ext)))
			return rc;
		if (fs_child_pathlen(odir, olen) + dst_ext > FS_PATH_MAX)
			return -ENAMETOOLONG;
		bool sd = S_ISDIR(src->mode), dd = S_ISDIR(dst->mode);
		od->node = dst;
		nd->node = src;
		if (sd != dd) {
			struct fs_node *from = sd ? odir : ndir, *to = sd ? ndir : odir;
			from->nsubdirs--, from->nlink--;
			to->nsubdirs++, to->nlink++;
		}
		if (sd) {
			src->parent = ndir;
			src->pathlen = (uint32_t)fs_child_pathlen(ndir, nlen);
			fs_subtree_repath(src);
		}
		if (dd) {
			dst->parent = odir;
			dst->pathlen = (uint32_t)fs_child_pathlen(odir, olen);
			fs_subtree_repath(dst);
		}
		fs_touch(src, false, true);
		fs_touch(dst, false, true);
	} else {
		if (nd) {
			struct fs_node *dst = nd->node;
			if (flags & RENAME_NOREPLACE)
				return -EEXIST;
			if (dst == src)
				return fuse_wire_reply(r, NULL, 0); /* same file: POSIX says do nothing */
			if (S_ISDIR(src->mode) && !S_ISDIR(dst->mode))
				return -ENOTDIR;
			if (!S_ISDIR(src->mode) && S_ISDIR(dst->mode))
				return -EISDIR;
			if (S_ISDIR(dst->mode) && dst->nentries)
				return -ENOTEMPTY;
			if (S_ISDIR(dst->mode) && is_within(odir, dst))
				return -EINVAL;
			fs_dentry_remove(fs, nd);
			if (S_ISDIR(dst->mode)) {
				dst->nlink = 0;
				ndir->nlink--;
			} else {
				dst->nlink--;
			}
			fs_touch(dst, false, true);
			fs_node_maybe_free(fs, dst);
		}
		char *copy = malloc(nlen + 1);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, nname, nlen);
		copy[nlen] = 0;
		fs_dentry_remove(fs, od);
		if (S_ISDIR(src->mode))
			odir->nlink--;
		if (!fs_dentry_add(fs, ndir, copy, nlen, src)) {
			free(copy);
			return -ENOMEM; /* the name is lost; only under memory exhaustion */
		}
		free(copy);
		if (S_ISDIR(src->mode)) {
			ndir->nlink++;
			fs_subtree_repath(src); /* fs_dentry_add set src's own */
		}
		fs_touch(src, false, true);
	}
	fs_touch(odir, true, true);
	fs_touch(ndir, true, true);
	fs->dirty = true;
	return fuse_wire_reply(r, NULL, 0);
}

ssize_t fs_op_rename(struct fs_req *r)
{
	struct fuse_rename_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	return do_rename(r, in.newdir, 0, sizeof(in));
}

ssize_t fs_op_rename2(struct fs_req *r)
{
	struct fuse_rename2_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	return do_rename(r, in.newdir, in.flags, sizeof(in));
}

ssize_t fs_op_link(struct fs_req *r)
{
	struct fs *fs = r->fs;
	struct fuse_link_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	int rc;
	size_t off = sizeof(in), len;
	const char *name;
	if ((rc = fuse_wire_name(r, &off, &name, &len)) || (rc = fs_name_check(name, len)))
		return rc;
	struct fs_node *n = fs_guest_node(fs, in.oldnodeid);
	if (!n)
		return -ENOENT;
	if (S_ISDIR(n->mode))
		return -EPERM;
	if (n->nlink == 0)
		return -ENOENT;
	if (n->nlink >= 65000)
		return -EMLINK;
	struct fs_node *dir = fs_guest_dir(fs, r->h.nodeid, &rc);
	if (!dir)
		return rc;
	if (fs->read_only)
		return -EROFS;
	if (fs_dentry_find(fs, dir, name, len))
		return -EEXIST;
	if (fs_child_pathlen(dir, len) > FS_PATH_MAX)
		return -ENAMETOOLONG;
	if ((rc = fs_may_add(fs, false)))
		return rc;
	if (!fs_dentry_add(fs, dir, name, len, n))
		return -ENOMEM;
	n->nlink++;
	fs_touch(n, false, true);
	fs_touch(dir, true, true);
	fs->dirty = true;
	return fs_reply_entry(r, n);
}

ssize_t fs_op_statfs(struct fs_req *r)
{
	struct fs *fs = r->fs;
	struct statvfs sv;
	struct fuse_statfs_out out;
	memset(&out, 0, sizeof(out));
	uint64_t free_blocks = 0;
	if (fstatvfs(fs->upper_fd, &sv) == 0 && sv.f_frsize)
		free_blocks = (uint64_t)sv.f_bavail * sv.f_frsize / 4096;
	out.st.bsize = out.st.frsize = 4096;
	out.st.blocks = (fs->mf->total_bytes + 4095) / 4096 + free_blocks;
	out.st.bfree = out.st.bavail = free_blocks;
	out.st.files = fs->live_nodes + 1000000;
	out.st.ffree = 1000000;
	out.st.namelen = FS_NAME_MAX;
	return fuse_wire_reply(r, &out, fs->proto_minor < 4 ? FUSE_COMPAT_STATFS_SIZE : sizeof(out));
}

ssize_t fs_op_access(struct fs_req *r)
{
	struct fuse_access_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	struct fs_node *n = fs_guest_node(r->fs, r->h.nodeid);
	if (!n)
		return -ENOENT;
	uint32_t mask = in.mask & 7, perm;
	if ((mask & W_OK) && r->fs->read_only)
		return -EROFS;
	if (r->h.uid == 0) { /* root: x needs some x bit on a non-directory */
		if ((mask & X_OK) && !S_ISDIR(n->mode) && !(n->mode & 0111))
			return -EACCES;
		return fuse_wire_reply(r, NULL, 0);
	}
	if (r->h.uid == n->uid)
		perm = (n->mode >> 6) & 7;
	else if (r->h.gid == n->gid)
		perm = (n->mode >> 3) & 7;
	else
		perm = n->mode & 7;
	if ((perm & mask) != mask)
		return -EACCES;
	return fuse_wire_reply(r, NULL, 0);
}

