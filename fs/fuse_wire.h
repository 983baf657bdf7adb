/*
 * The FUSE wire layer (<linux/fuse.h>, protocol 7.x): decodes a request's
 * bytes and encodes its reply, and knows nothing of the filesystem. One
 * table indexed by opcode (fs/fuse_wire.c) gives each opcode its name, the
 * smallest argument it accepts, whether it is answered at all, and the
 * handler (fs/fuse_ops.h) that acts on it; an opcode without a handler is
 * answered ENOSYS. fs_handle (fs/fs.h) is the way in.
 *
 * A handler is called with fs->lock held, on a request whose header length
 * agrees with the buffers and whose body holds at least its opcode's
 * minimum. It returns the length of the reply it wrote (fuse_wire_reply)
 * or -errno, which the wire layer turns into an error reply.
 */
#ifndef MINIVMM_FUSE_WIRE_H
#define MINIVMM_FUSE_WIRE_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct fs;

/* One request, as the handlers see it. */
struct fs_req {
	struct fs *fs;
	struct fuse_in_header h;
	const uint8_t *body;   /* after the header, in a copy the guest cannot change */
	size_t body_len;       /* bytes in that copy (a payload may go past it) */
	size_t body_total;     /* h.len minus the header, checked against the buffers */
	const struct iovec *in;
	int n_in;
	const struct iovec *out;
	int n_out;
	size_t out_len;        /* room in out[], at least a fuse_out_header */
};

typedef ssize_t (*fuse_wire_handler)(struct fs_req *r);

/* Opcodes the table can name: every one of <linux/fuse.h> up to
 * FUSE_TMPFILE. Any other is unknown: ENOSYS, counted together. */
#define FUSE_WIRE_OPS (FUSE_TMPFILE + 1)
/* The counter slot (fs->st_ops) of opcodes the table does not name. */
#define FUSE_WIRE_UNKNOWN FUSE_WIRE_OPS

enum {
	FUSE_WIRE_NO_REPLY = 1 << 0, /* the guest waits for no answer */
	/* Data follows the argument (WRITE, SETXATTR): the request may be
	 * longer than the copy, and the handler reads the rest from in[]. */
	FUSE_WIRE_PAYLOAD = 1 << 1,
};

struct fuse_wire_op {
	const char *name;          /* "LOOKUP"; NULL: not an opcode */
	uint32_t min_in;           /* smallest body accepted; shorter: EINVAL */
	uint32_t flags;            /* FUSE_WIRE_* */
	fuse_wire_handler handler; /* NULL: ENOSYS */
};

/* The table's entry for opcode, or NULL if it names none. */
const struct fuse_wire_op *fuse_wire_op(uint32_t opcode);

/* --- decoding (the body of a request) --- */

/* The op's fixed argument: copies what the body holds of it, up to size,
 * and zero-fills the rest (older kernels send shorter ones). */
void fuse_wire_arg(const struct fs_req *r, void *dst, size_t size);
/* A NUL-terminated string at *off of the body; advances *off past it.
 * -EINVAL if there is none. */
int fuse_wire_name(const struct fs_req *r, size_t *off, const char **name, size_t *len);
/* Bytes [off, off + len) of the body as a new iovec array over in[]
 * (malloc'd; *n entries; fewer bytes if the body is shorter). */
struct iovec *fuse_wire_payload(const struct fs_req *r, size_t off, size_t len, int *n);

/* --- encoding (the reply) --- */

/* Room for a reply body in out[]. */
static inline size_t fuse_wire_room(const struct fs_req *r)
{
	return r->out_len - sizeof(struct fuse_out_header);
}
/* A success reply with body (len bytes): its length, or -EINVAL when out[]
 * cannot hold it (then the caller answers the error instead). */
ssize_t fuse_wire_reply(struct fs_req *r, const void *body, size_t len);
/* The first len bytes of the reply body in out[] as an iovec array
 * (malloc'd), for reading data straight into it; len <= fuse_wire_room. */
struct iovec *fuse_wire_reply_iov(const struct fs_req *r, size_t len, int *n);
/* Copy len bytes into the reply body; len <= fuse_wire_room. */
void fuse_wire_reply_copy(const struct fs_req *r, const void *body, size_t len);
/* A success reply whose body (len bytes) is already in out[]. */
ssize_t fuse_wire_reply_written(const struct fs_req *r, size_t len);

#endif
