/*
 * The filesystem side of the FUSE server: the handlers the opcode table
 * (fs/fuse_wire.c) calls, and what the op files share. Not for use outside
 * fs/.
 *
 *   fs/ops_names.c   names and attributes: LOOKUP, FORGET, GETATTR, SETATTR,
 *                    ACCESS, STATFS, READLINK, MKNOD, MKDIR, SYMLINK, LINK,
 *                    UNLINK, RMDIR, RENAME
 *   fs/ops_data.c    file content: OPEN, CREATE, READ, WRITE, FLUSH, FSYNC,
 *                    RELEASE, FALLOCATE, LSEEK, SYNCFS
 *   fs/ops_dir.c     listings: OPENDIR, READDIR(PLUS), RELEASEDIR, FSYNCDIR
 *   fs/ops_xattr.c   extended attributes (from the image, read-only)
 *   fs/ops_common.c  nodes and names the guest gives, attribute replies, handles
 *   fs/copyup.c      the upper layer: a file's content copied up to be written
 *
 * Handlers follow fs/fuse_wire.h (called with fs->lock held; the reply's
 * length or -errno). Every id, handle, length, offset and name from the
 * guest is checked before use.
 */
#ifndef MINIVMM_FUSE_OPS_H
#define MINIVMM_FUSE_OPS_H

#include "fs/fs_priv.h"
#include "fs/fuse_wire.h"

/* The guest is the only writer, so what it was told stays true: cache
 * names and attributes for a day (virtiofsd's cache=always does the same). */
#define FS_TTL_SEC 86400

/* --- handlers --- */
ssize_t fs_op_lookup(struct fs_req *r);
ssize_t fs_op_forget(struct fs_req *r);
ssize_t fs_op_batch_forget(struct fs_req *r);
ssize_t fs_op_getattr(struct fs_req *r);
ssize_t fs_op_setattr(struct fs_req *r);
ssize_t fs_op_access(struct fs_req *r);
ssize_t fs_op_statfs(struct fs_req *r);
ssize_t fs_op_readlink(struct fs_req *r);
ssize_t fs_op_mknod(struct fs_req *r);
ssize_t fs_op_mkdir(struct fs_req *r);
ssize_t fs_op_symlink(struct fs_req *r);
ssize_t fs_op_link(struct fs_req *r);
ssize_t fs_op_unlink(struct fs_req *r);
ssize_t fs_op_rmdir(struct fs_req *r);
ssize_t fs_op_rename(struct fs_req *r);
ssize_t fs_op_rename2(struct fs_req *r);

ssize_t fs_op_open(struct fs_req *r);
ssize_t fs_op_create(struct fs_req *r);
ssize_t fs_op_read(struct fs_req *r);
ssize_t fs_op_write(struct fs_req *r);
ssize_t fs_op_flush(struct fs_req *r);
ssize_t fs_op_fsync(struct fs_req *r);
ssize_t fs_op_release(struct fs_req *r);
ssize_t fs_op_fallocate(struct fs_req *r);
ssize_t fs_op_lseek(struct fs_req *r);
ssize_t fs_op_syncfs(struct fs_req *r);

ssize_t fs_op_opendir(struct fs_req *r);
ssize_t fs_op_readdir(struct fs_req *r);
ssize_t fs_op_readdirplus(struct fs_req *r);
ssize_t fs_op_releasedir(struct fs_req *r);
ssize_t fs_op_fsyncdir(struct fs_req *r);

ssize_t fs_op_getxattr(struct fs_req *r);
ssize_t fs_op_listxattr(struct fs_req *r);
ssize_t fs_op_setxattr(struct fs_req *r);
ssize_t fs_op_removexattr(struct fs_req *r);

/* --- ops_common.c --- */

/* Names the guest may create or look up: 1..NAME_MAX bytes, no '/', not
 * "." or "..". 0, -EINVAL or -ENAMETOOLONG. */
int fs_name_check(const char *name, size_t len);
/* The node the guest names by id, or NULL: a node the kernel was never
 * told about (or forgot) is unknown to it, so naming it is guessing. */
struct fs_node *fs_guest_node(struct fs *fs, uint64_t id);
/* The same for a directory that can take new names; NULL with *err set
 * (-ENOENT, -ENOTDIR). */
struct fs_node *fs_guest_dir(struct fs *fs, uint64_t id, int *err);
void fs_attr_fill(const struct fs_node *n, struct fuse_attr *a);
/* An entry for n; takes a lookup reference (the kernel now knows n). */
void fs_entry_fill(struct fs_node *n, struct fuse_entry_out *e);
/* Reply with n's entry (its reference dropped again if the reply fails). */
ssize_t fs_reply_entry(struct fs_req *r, struct fs_node *n);
ssize_t fs_reply_attr(struct fs_req *r, struct fs_node *n);
/* Set n's mtime (m) and ctime (c) to now. */
void fs_touch(struct fs_node *n, bool m, bool c);

/* Handles: fh is the slot + 1. A handle lives while the table holds it
 * (until RELEASE) or a request uses it. */
int fs_fh_alloc(struct fs *fs, struct fs_node *n, struct fs_fh **hp);
/* The handle fh of node id, with a reference; NULL if either is wrong or
 * the handle was released. */
struct fs_fh *fs_fh_get(struct fs *fs, uint64_t fh, uint64_t nodeid);
void fs_fh_put(struct fs *fs, struct fs_fh *h);
/* Drop the table's reference: the handle closes once no request uses it. */
void fs_fh_release(struct fs *fs, struct fs_fh *h);
/* RELEASE or RELEASEDIR (dir): end the handle the request names. */
ssize_t fs_release_req(struct fs_req *r, bool dir);

/* ops_names.c: a new name in directory dirid (MKNOD, MKDIR, SYMLINK,
 * CREATE), with its node; NULL with *err set. A regular file starts empty
 * in the upper layer. */
struct fs_node *fs_new_child(struct fs_req *r, uint64_t dirid, const char *name, size_t len,
			     uint32_t mode, int *err);

/* --- copyup.c --- */

/* Open n's upper file (state_dir/upper/<id>) with flags: fd or -errno. */
int fs_upper_open(struct fs *fs, struct fs_node *n, int flags);
/* Bring n's content into the upper layer (or make it empty when
 * truncate). Called and returns with fs->lock held; drops it while
 * fetching. 0 or -errno. */
int fs_copy_up(struct fs *fs, struct fs_node *n, bool truncate);

#endif
