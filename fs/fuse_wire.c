/*
 * The FUSE wire layer: the opcode table, request decoding, reply encoding,
 * the protocol handshake (INIT), per-opcode counts. See fs/fuse_wire.h.
 *
 * Every request is copied (up to FS_REQ_LINEAR bytes; a payload past it
 * stays in the guest's buffers) and decoded from that copy, so the guest
 * cannot change a length after it was checked.
 */
#include "fs/fuse_wire.h"
#include "fs/fuse_ops.h"
#include "fs/fs_priv.h"
#include "lib/iov.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Largest request other than a payload op's: header, two names, a
 * symlink target. */
#define FS_REQ_LINEAR (sizeof(struct fuse_in_header) + 64 + 2 * (FS_NAME_MAX + 1) + FS_SYMLINK_MAX + 1)
/* errno values fit a fuse_out_header's error; anything else becomes EIO. */
#define FS_ERRNO_MAX 4095

/* Arguments that grew with the protocol and have no FUSE_COMPAT_* name
 * in <linux/fuse.h>: the least the server reads of them. */
/* INIT: major and minor are enough to negotiate (or refuse). */
#define WIRE_INIT_IN_MIN offsetof(struct fuse_init_in, max_readahead)
/* READ, READDIR before 7.9: fh, offset, size (no lock_owner, flags). */
#define WIRE_COMPAT_READ_IN_SIZE offsetof(struct fuse_read_in, lock_owner)
/* RELEASE, RELEASEDIR: only fh is read. */
#define WIRE_RELEASE_IN_MIN offsetof(struct fuse_release_in, flags)

/* --- scatter/gather --- */

/* [skip, skip + len) of iov[0..n) as a new iovec array (malloc'd, *n_res
 * entries) for preadv/pwritev; NULL when out of memory or when the range
 * is not all there (the callers bound it first). */
static struct iovec *slice_alloc(const struct iovec *iov, int n, size_t skip, size_t len,
				 int *n_res)
{
	struct iovec *r = malloc((size_t)(n > 0 ? n : 1) * sizeof(*r));
	if (!r)
		return NULL;
	int k = iov_slice(iov, n, skip, len, r, n);
	if (k < 0) {
		free(r);
		return NULL;
	}
	*n_res = k;
	return r;
}

/* --- decoding --- */

void fuse_wire_arg(const struct fs_req *r, void *dst, size_t size)
{
	memset(dst, 0, size);
	memcpy(dst, r->body, r->body_len < size ? r->body_len : size);
}

int fuse_wire_name(const struct fs_req *r, size_t *off, const char **name, size_t *len)
{
	if (*off >= r->body_len)
		return -EINVAL;
	const char *s = (const char *)r->body + *off;
	const char *nul = memchr(s, 0, r->body_len - *off);
	if (!nul)
		return -EINVAL;
	size_t l = (size_t)(nul - s);
	*off += l + 1;
	*name = s;
	*len = l;
	return 0;
}

struct iovec *fuse_wire_payload(const struct fs_req *r, size_t off, size_t len, int *n)
{
	/* Fewer bytes when the body is shorter (fs/fuse_wire.h). */
	size_t have = off < r->body_total ? r->body_total - off : 0;
	return slice_alloc(r->in, r->n_in, sizeof(struct fuse_in_header) + off,
			   len < have ? len : have, n);
}

/* --- encoding --- */

static ssize_t reply_header(const struct fs_req *r, int error, size_t len)
{
	struct fuse_out_header oh = {
		.len = (uint32_t)(sizeof(oh) + len), .error = error, .unique = r->h.unique,
	};
	if (sizeof(oh) + len > r->out_len)
		return -EINVAL; /* the caller turns it into an error reply */
	iov_copy_to(r->out, r->n_out, 0, &oh, sizeof(oh));
	return (ssize_t)(sizeof(oh) + len);
}

ssize_t fuse_wire_reply(struct fs_req *r, const void *body, size_t len)
{
	ssize_t rc = reply_header(r, 0, len);
	if (rc > 0 && len)
		fuse_wire_reply_copy(r, body, len);
	return rc;
}

struct iovec *fuse_wire_reply_iov(const struct fs_req *r, size_t len, int *n)
{
	return slice_alloc(r->out, r->n_out, sizeof(struct fuse_out_header), len, n);
}

void fuse_wire_reply_copy(const struct fs_req *r, const void *body, size_t len)
{
	iov_copy_to(r->out, r->n_out, sizeof(struct fuse_out_header), body, len);
}

ssize_t fuse_wire_reply_written(const struct fs_req *r, size_t len)
{
	return reply_header(r, 0, len);
}

/* --- the session --- */

static ssize_t wire_init(struct fs_req *r)
{
	struct fuse_init_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	struct fuse_init_out out = {.major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION};
	if (in.major < 7)
		return -EPROTO;
	if (in.major > 7) /* the kernel retries with our major */
		return fuse_wire_reply(r, &out, FUSE_COMPAT_INIT_OUT_SIZE);
	if (r->body_len < offsetof(struct fuse_init_in, flags) + sizeof(in.flags))
		in.flags = 0;
	struct fs *fs = r->fs;
	fs->proto_minor = in.minor < FUSE_KERNEL_MINOR_VERSION ? in.minor : FUSE_KERNEL_MINOR_VERSION;
	uint32_t want = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES |
			FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS |
			FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS | FUSE_AUTO_INVAL_DATA;
	out.flags = in.flags & want;
	out.max_readahead = in.max_readahead;
	out.max_background = 64;
	out.congestion_threshold = 48;
	out.max_write = fs->max_write;
	out.time_gran = 1;
	out.max_pages = (uint16_t)(fs->max_write / 4096);
	fs->initialized = true;
	size_t size = in.minor < 5 ? FUSE_COMPAT_INIT_OUT_SIZE
		    : in.minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : sizeof(out);
	return fuse_wire_reply(r, &out, size);
}

static ssize_t wire_destroy(struct fs_req *r)
{
	return fuse_wire_reply(r, NULL, 0); /* the state outlives the session */
}

/* --- the opcode table --- */

#define OP(code, fn, min, fl) [FUSE_##code] = {.name = #code, .min_in = (min), .flags = (fl), .handler = (fn)}

static const struct fuse_wire_op wire_ops[FUSE_WIRE_OPS] = {
	OP(LOOKUP, fs_op_lookup, 0, 0),
	OP(FORGET, fs_op_forget, sizeof(struct fuse_forget_in), FUSE_WIRE_NO_REPLY),
	OP(GETATTR, fs_op_getattr, 0, 0),
	OP(SETATTR, fs_op_setattr, sizeof(struct fuse_setattr_in), 0),
	OP(READLINK, fs_op_readlink, 0, 0),
	OP(SYMLINK, fs_op_symlink, 0, 0),
	OP(MKNOD, fs_op_mknod, FUSE_COMPAT_MKNOD_IN_SIZE, 0),
	OP(MKDIR, fs_op_mkdir, sizeof(struct fuse_mkdir_in), 0),
	OP(UNLINK, fs_op_unlink, 0, 0),
	OP(RMDIR, fs_op_rmdir, 0, 0),
	OP(RENAME, fs_op_rename, sizeof(struct fuse_rename_in), 0),
	OP(LINK, fs_op_link, sizeof(struct fuse_link_in), 0),
	OP(OPEN, fs_op_open, sizeof(struct fuse_open_in), 0),
	OP(READ, fs_op_read, WIRE_COMPAT_READ_IN_SIZE, 0),
	OP(WRITE, fs_op_write, FUSE_COMPAT_WRITE_IN_SIZE, FUSE_WIRE_PAYLOAD),
	OP(STATFS, fs_op_statfs, 0, 0),
	OP(RELEASE, fs_op_release, WIRE_RELEASE_IN_MIN, 0),
	OP(FSYNC, fs_op_fsync, sizeof(struct fuse_fsync_in), 0),
	/* A value of any size is refused the same way. */
	OP(SETXATTR, fs_op_setxattr, 0, FUSE_WIRE_PAYLOAD),
	OP(GETXATTR, fs_op_getxattr, sizeof(struct fuse_getxattr_in), 0),
	OP(LISTXATTR, fs_op_listxattr, sizeof(struct fuse_getxattr_in), 0),
	OP(REMOVEXATTR, fs_op_removexattr, 0, 0),
	OP(FLUSH, fs_op_flush, sizeof(struct fuse_flush_in), 0),
	OP(INIT, wire_init, WIRE_INIT_IN_MIN, 0),
	OP(OPENDIR, fs_op_opendir, 0, 0),
	OP(READDIR, fs_op_readdir, WIRE_COMPAT_READ_IN_SIZE, 0),
	OP(RELEASEDIR, fs_op_releasedir, WIRE_RELEASE_IN_MIN, 0),
	OP(FSYNCDIR, fs_op_fsyncdir, 0, 0),
	/* POSIX locks: ENOSYS, and the guest kernel keeps them itself. */
	OP(GETLK, NULL, 0, 0),
	OP(SETLK, NULL, 0, 0),
	OP(SETLKW, NULL, 0, 0),
	OP(ACCESS, fs_op_access, sizeof(struct fuse_access_in), 0),
	OP(CREATE, fs_op_create, sizeof(struct fuse_create_in), 0),
	/* Every request is answered in full; there is nothing to interrupt. */
	OP(INTERRUPT, NULL, 0, FUSE_WIRE_NO_REPLY),
	OP(BMAP, NULL, 0, 0),
	OP(DESTROY, wire_destroy, 0, 0),
	OP(IOCTL, NULL, 0, 0),
	OP(POLL, NULL, 0, 0),
	OP(NOTIFY_REPLY, NULL, 0, 0),
	OP(BATCH_FORGET, fs_op_batch_forget, sizeof(struct fuse_batch_forget_in), FUSE_WIRE_NO_REPLY),
	OP(FALLOCATE, fs_op_fallocate, sizeof(struct fuse_fallocate_in), 0),
	OP(READDIRPLUS, fs_op_readdirplus, WIRE_COMPAT_READ_IN_SIZE, 0),
	OP(RENAME2, fs_op_rename2, sizeof(struct fuse_rename2_in), 0),
	OP(LSEEK, fs_op_lseek, sizeof(struct fuse_lseek_in), 0),
	OP(COPY_FILE_RANGE, NULL, 0, 0), /* the guest kernel falls back to read + write */
	OP(SETUPMAPPING, NULL, 0, 0),    /* no DAX window */
	OP(REMOVEMAPPING, NULL, 0, 0),
	OP(SYNCFS, fs_op_syncfs, 0, 0),
	OP(TMPFILE, NULL, 0, 0),
};

const struct fuse_wire_op *fuse_wire_op(uint32_t opcode)
{
	if (opcode >= FUSE_WIRE_OPS || !wire_ops[opcode].name)
		return NULL;
	return &wire_ops[opcode];
}

bool fs_opcode_has_reply(uint32_t opcode)
{
	const struct fuse_wire_op *op = fuse_wire_op(opcode);
	return !op || !(op->flags & FUSE_WIRE_NO_REPLY);
}

/* --- per-opcode counts --- */

static void count_request(struct fs *fs, uint32_t opcode)
{
	size_t slot = fuse_wire_op(opcode) ? opcode : FUSE_WIRE_UNKNOWN;
	__atomic_fetch_add(&fs->st_ops[slot], 1, __ATOMIC_RELAXED);
}

json_t *fs_request_counts_json(struct fs *fs)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	for (size_t i = 0; i <= FUSE_WIRE_UNKNOWN; i++) {
		uint64_t n = __atomic_load_n(&fs->st_ops[i], __ATOMIC_RELAXED);
		if (n)
			json_object_set_new(o, i == FUSE_WIRE_UNKNOWN ? "UNKNOWN" : wire_ops[i].name,
					    json_integer((json_int_t)n));
	}
	return o;
}

/* --- one request --- */

size_t fs_handle(struct fs *fs, const struct iovec *in, int n_in,
		 const struct iovec *out, int n_out)
{
	size_t in_total = 0, out_total = 0;
	for (int i = 0; i < n_in; i++) {
		if (in[i].iov_len > SIZE_MAX / 2 - in_total)
			return 0;
		in_total += in[i].iov_len;
	}
	for (int i = 0; i < n_out; i++) {
		if (out[i].iov_len > SIZE_MAX / 2 - out_total)
			return 0;
		out_total += out[i].iov_len;
	}
	struct fs_req r = {.fs = fs, .in = in, .n_in = n_in, .out = out, .n_out = n_out,
			   .out_len = out_total};
	if (in_total < sizeof(r.h))
		return 0; /* not even a header: nothing to answer to */
	iov_copy_from(in, n_in, 0, &r.h, sizeof(r.h));
	const struct fuse_wire_op *op = fuse_wire_op(r.h.opcode);
	bool replies = fs_opcode_has_reply(r.h.opcode);
	if (replies && out_total < sizeof(struct fuse_out_header))
		return 0;
	ssize_t rc;
	uint8_t *lin = NULL;
	if (r.h.len < sizeof(r.h) || r.h.len > in_total) {
		rc = -EINVAL; /* a length that lies */
		goto done;
	}
	r.body_total = r.h.len - sizeof(r.h);
	size_t lin_len = r.h.len;
	if (lin_len > FS_REQ_LINEAR) {
		if (!op || !(op->flags & FUSE_WIRE_PAYLOAD)) {
			rc = -EINVAL;
			goto done;
		}
		lin_len = FS_REQ_LINEAR;
	}
	lin = malloc(lin_len);
	if (!lin) {
		rc = -ENOMEM;
		goto done;
	}
	iov_copy_from(in, n_in, 0, lin, lin_len);
	r.body = lin + sizeof(r.h);
	r.body_len = lin_len - sizeof(r.h);

	pthread_mutex_lock(&fs->lock);
	fs->st_requests++;
	count_request(fs, r.h.opcode);
	if (r.h.opcode != FUSE_INIT && !fs->initialized)
		rc = -EIO;
	else if (!op || !op->handler)
		rc = -ENOSYS;
	else if (r.body_len < op->min_in)
		rc = -EINVAL; /* refused before the filesystem sees it */
	else
		rc = op->handler(&r);
	pthread_mutex_unlock(&fs->lock);
done:
	free(lin);
	if (!replies)
		return 0;
	if (rc < 0) {
		if (rc < -FS_ERRNO_MAX)
			rc = -EIO;
		rc = reply_header(&r, (int)rc, 0);
	}
	return rc < 0 ? 0 : (size_t)rc;
}
