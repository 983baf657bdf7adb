/*
 * Extended attributes: GETXATTR and LISTXATTR answer from the image's
 * manifest (security.capability of ping, for instance); the guest cannot
 * set or remove any (SETXATTR, REMOVEXATTR: EOPNOTSUPP), so write-back
 * keeps the image's.
 */
#include "fs/fuse_ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A value of len bytes for a guest buffer of size bytes: its size when
 * the guest asks for it (size 0), ERANGE when the buffer is too small. */
static ssize_t reply_value(struct fs_req *r, uint32_t size, const void *val, size_t len)
{
	if (size == 0) {
		struct fuse_getxattr_out out = {.size = (uint32_t)len};
		return fuse_wire_reply(r, &out, sizeof(out));
	}
	if (size < len)
		return -ERANGE;
	return fuse_wire_reply(r, val, len);
}

ssize_t fs_op_getxattr(struct fs_req *r)
{
	struct fuse_getxattr_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	struct fs_node *n = fs_guest_node(r->fs, r->h.nodeid);
	if (!n)
		return -ENOENT;
	size_t off = sizeof(in), nlen;
	const char *name;
	int rc = fuse_wire_name(r, &off, &name, &nlen);
	if (rc)
		return rc;
	const struct manifest_entry *e = n->image;
	size_t nx = e ? e->n_xattrs : 0;
	for (size_t i = 0; i < nx; i++)
		if (strlen(e->xattrs[i].name) == nlen && !memcmp(e->xattrs[i].name, name, nlen))
			return reply_value(r, in.size, e->xattrs[i].value, e->xattrs[i].len);
	return -ENODATA;
}

ssize_t fs_op_listxattr(struct fs_req *r)
{
	struct fuse_getxattr_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	struct fs_node *n = fs_guest_node(r->fs, r->h.nodeid);
	if (!n)
		return -ENOENT;
	const struct manifest_entry *e = n->image;
	size_t nx = e ? e->n_xattrs : 0, len = 0;
	for (size_t i = 0; i < nx; i++)
		len += strlen(e->xattrs[i].name) + 1;
	if (!len || !in.size) /* nothing to list, or only its size asked */
		return reply_value(r, in.size, NULL, len);
	/* The names, each NUL-terminated, one after the other. */
	char *list = malloc(len);
	if (!list)
		return -ENOMEM;
	size_t p = 0;
	for (size_t i = 0; i < nx; i++) {
		size_t l = strlen(e->xattrs[i].name) + 1;
		memcpy(list + p, e->xattrs[i].name, l);
		p += l;
	}
	ssize_t ret = reply_value(r, in.size, list, len);
	free(list);
	return ret;
}

ssize_t fs_op_setxattr(struct fs_req *r)
{
	return -EOPNOTSUPP;
}

ssize_t fs_op_removexattr(struct fs_req *r)
{
	return -EOPNOTSUPP;
}
