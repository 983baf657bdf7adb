/*
 * Directory listings: OPENDIR, READDIR, READDIRPLUS, RELEASEDIR, FSYNCDIR.
 * A listing is read from the inode table under the lock; its cookies
 * follow each name's position, so names removed during a listing neither
 * shift nor repeat the others.
 */
#include "fs/fuse_ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Largest READDIR reply built, whatever the guest asks for. */
#define FS_MAX_READDIR (1u << 20)

ssize_t fs_op_opendir(struct fs_req *r)
{
	struct fs_node *n = fs_guest_node(r->fs, r->h.nodeid);
	if (!n)
		return -ENOENT;
	if (!S_ISDIR(n->mode))
		return -ENOTDIR;
	struct fuse_open_out out = {.open_flags = FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR};
	struct fs_fh *h;
	int rc = fs_fh_alloc(r->fs, n, &h);
	if (rc)
		return rc;
	h->is_dir = true;
	out.fh = (uint64_t)h->slot + 1;
	ssize_t w = fuse_wire_reply(r, &out, sizeof(out));
	if (w < 0)
		fs_fh_release(r->fs, h);
	return w;
}

/* Append one entry to buf (capacity cap, used *used); false if full. */
static bool put_dirent(uint8_t *buf, size_t cap, size_t *used, bool plus, struct fs_node *n,
		       uint64_t ino, const char *name, size_t len, uint64_t cookie, uint32_t mode)
{
	size_t base = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
	size_t rec = FUSE_DIRENT_ALIGN(base + len);
	if (*used + rec > cap)
		return false;
	uint8_t *p = buf + *used;
	memset(p, 0, rec);
	struct fuse_dirent *de;
	if (plus) {
		struct fuse_direntplus *dp = (struct fuse_direntplus *)p;
		if (n) /* "." and "..": nodeid 0, the kernel takes no reference */
			fs_entry_fill(n, &dp->entry_out);
		de = &dp->dirent;
	} else {
		de = (struct fuse_dirent *)p;
	}
	de->ino = ino;
	de->off = cookie;
	de->namelen = (uint32_t)len;
	de->type = (mode & S_IFMT) >> 12;
	memcpy(p + base, name, len);
	*used += rec;
	return true;
}

/* READDIR, or READDIRPLUS (plus: each name with its entry, which takes a
 * lookup reference as LOOKUP does). */
static ssize_t readdir_common(struct fs_req *r, bool plus)
{
	struct fs *fs = r->fs;
	struct fuse_read_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	struct fs_fh *h = fs_fh_get(fs, in.fh, r->h.nodeid);
	if (!h)
		return -EBADF;
	struct fs_node *dir = h->node;
	ssize_t ret;
	if (!h->is_dir) {
		ret = -ENOTDIR;
		goto out;
	}
	size_t cap = in.size;
	if (cap > fuse_wire_room(r))
		cap = fuse_wire_room(r);
	if (cap > FS_MAX_READDIR)
		cap = FS_MAX_READDIR;
	uint8_t *buf = malloc(cap ? cap : 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	size_t used = 0;
	uint64_t o = in.offset;
	/* Cookies: "." 1, ".." 2, an entry at pos p: p + 2. A removed entry
	 * does not shift the others, so a listing interleaved with unlinks
	 * neither skips nor repeats names. */
	bool full = false;
	if (o < 1)
		full = !put_dirent(buf, cap, &used, plus, NULL, dir->id, ".", 1, 1, S_IFDIR);
	if (!full && o < 2)
		full = !put_dirent(buf, cap, &used, plus, NULL, dir->parent ? dir->parent->id : dir->id,
				   "..", 2, 2, S_IFDIR);
	for (struct fs_dentry *d = dir->first; d && !full; d = d->dnext) {
		if (d->pos + 2 <= o)
			continue;
		full = !put_dirent(buf, cap, &used, plus, d->node, d->node->id, d->name, d->namelen,
				   d->pos + 2, d->node->mode);
	}
	ret = fuse_wire_reply(r, buf, used);
	free(buf);
out:
	fs_fh_put(fs, h);
	return ret;
}


ssize_t fs_op_readdir(struct fs_req *r)
{
	return readdir_common(r, false);
}

ssize_t fs_op_readdirplus(struct fs_req *r)
{
	return readdir_common(r, true);
}

ssize_t fs_op_releasedir(struct fs_req *r)
{
	return fs_release_req(r, true);
}

/* The namespace lives in memory: nothing of a directory to sync. */
ssize_t fs_op_fsyncdir(struct fs_req *r)
{
	return fuse_wire_reply(r, NULL, 0);
}
