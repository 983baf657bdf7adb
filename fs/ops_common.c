/*
 * What the op files share: the node or directory a guest's id names (with
 * the check that the kernel was told about it), the rules for names,
 * attribute and entry replies, and the handle table.
 */
#include "fs/fuse_ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* NUL cannot occur in a name: it ends it. */
int fs_name_check(const char *name, size_t len)
{
	if (len == 0)
		return -EINVAL;
	if (len > FS_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', len))
		return -EINVAL;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return -EINVAL;
	return 0;
}

struct fs_node *fs_guest_node(struct fs *fs, uint64_t id)
{
	struct fs_node *n = fs_node_get(fs, id);
	/* nlookup 0: the kernel never looked it up (or forgot it). */
	if (n && n->nlookup == 0 && n->nopen == 0)
		return NULL;
	return n;
}

struct fs_node *fs_guest_dir(struct fs *fs, uint64_t id, int *err)
{
	struct fs_node *n = fs_guest_node(fs, id);
	if (!n)
		*err = -ENOENT;
	else if (!S_ISDIR(n->mode))
		*err = -ENOTDIR, n = NULL;
	else if (n->nlink == 0)
		*err = -ENOENT, n = NULL; /* removed: nothing may be created in it */
	return n;
}

/* --- attributes --- */

void fs_attr_fill(const struct fs_node *n, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = n->id;
	a->size = n->size;
	a->blocks = (n->size + 511) / 512;
	a->atime = (uint64_t)n->atime.tv_sec;
	a->mtime = (uint64_t)n->mtime.tv_sec;
	a->ctime = (uint64_t)n->ctime.tv_sec;
	a->atimensec = (uint32_t)n->atime.tv_nsec;
	a->mtimensec = (uint32_t)n->mtime.tv_nsec;
	a->ctimensec = (uint32_t)n->ctime.tv_nsec;
	a->mode = n->mode;
	a->nlink = S_ISDIR(n->mode) ? (n->nlink ? 2 + n->nsubdirs : 0) : n->nlink;
	a->uid = n->uid;
	a->gid = n->gid;
	a->rdev = (uint32_t)n->rdev;
	a->blksize = 4096;
}

void fs_entry_fill(struct fs_node *n, struct fuse_entry_out *e)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = n->id;
	e->generation = 0; /* ids are never reused */
	e->entry_valid = FS_TTL_SEC;
	e->attr_valid = FS_TTL_SEC;
	fs_attr_fill(n, &e->attr);
	n->nlookup++;
}

static size_t entry_out_size(struct fs_req *r)
{
	return r->fs->proto_minor < 9 ? FUSE_COMPAT_ENTRY_OUT_SIZE : sizeof(struct fuse_entry_out);
}

ssize_t fs_reply_entry(struct fs_req *r, struct fs_node *n)
{
	struct fuse_entry_out e;
	fs_entry_fill(n, &e);
	ssize_t rc = fuse_wire_reply(r, &e, entry_out_size(r));
	if (rc < 0)
		n->nlookup--;
	return rc;
}

void fs_touch(struct fs_node *n, bool m, bool c)
{
	struct timespec now;
	fs_now(&now);
	if (m)
		n->mtime = now;
	if (c)
		n->ctime = now;
}

ssize_t fs_reply_attr(struct fs_req *r, struct fs_node *n)
{
	struct fuse_attr_out out = {.attr_valid = FS_TTL_SEC};
	fs_attr_fill(n, &out.attr);
	return fuse_wire_reply(r, &out, r->fs->proto_minor < 9 ? FUSE_COMPAT_ATTR_OUT_SIZE : sizeof(out));
}

/* --- handles --- */

int fs_fh_alloc(struct fs *fs, struct fs_node *n, struct fs_fh **hp)
{
	uint32_t i;
	for (i = 0; i < fs->n_fhs; i++)
		if (!fs->fhs[i])
			break;
	if (i == fs->n_fhs) {
		if (fs->n_fhs >= FS_MAX_HANDLES)
			return -ENFILE;
		uint32_t cap = fs->n_fhs ? fs->n_fhs * 2 : 64;
		struct fs_fh **t = realloc(fs->fhs, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		memset(t + fs->n_fhs, 0, (cap - fs->n_fhs) * sizeof(*t));
		fs->fhs = t;
		fs->n_fhs = cap;
	}
	struct fs_fh *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->slot = i;
	h->node = n;
	h->fd = h->upper_fd = -1;
	h->refs = 1; /* the table's, dropped by RELEASE */
	n->nopen++;
	fs->fhs[i] = h;
	*hp = h;
	return 0;
}

struct fs_fh *fs_fh_get(struct fs *fs, uint64_t fh, uint64_t nodeid)
{
	if (fh == 0 || fh > fs->n_fhs)
		return NULL;
	struct fs_fh *h = fs->fhs[fh - 1];
	if (!h || h->released || h->node->id != nodeid)
		return NULL;
	h->refs++;
	return h;
}

void fs_fh_put(struct fs *fs, struct fs_fh *h)
{
	if (--h->refs)
		return;
	if (h->fd >= 0)
		close(h->fd);
	if (h->upper_fd >= 0)
		close(h->upper_fd);
	struct fs_node *n = h->node;
	fs->fhs[h->slot] = NULL;
	free(h);
	n->nopen--;
	fs_node_maybe_free(fs, n);
}

void fs_fh_release(struct fs *fs, struct fs_fh *h)
{
	if (h->released)
		return;
	h->released = true;
	fs_fh_put(fs, h);
}


ssize_t fs_release_req(struct fs_req *r, bool dir)
{
	struct fuse_release_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	struct fs_fh *h = fs_fh_get(r->fs, in.fh, r->h.nodeid);
	if (!h)
		return -EBADF;
	if (dir != h->is_dir) {
		fs_fh_put(r->fs, h);
		return -EBADF;
	}
	/* Drop our reference (never the last: the table holds one), then
	 * the table's: the handle closes once no other request uses it. */
	h->refs--;
	fs_fh_release(r->fs, h);
	return fuse_wire_reply(r, NULL, 0);
}
