/*
 * File content: OPEN, CREATE, READ, WRITE, FLUSH, FSYNC, RELEASE,
 * FALLOCATE, LSEEK, SYNCFS. Opening an image file not in the cache is a
 * file fault (the whole file fetched and verified); a chunked file faults
 * chunk by chunk at READ instead. Opening for writing copies the file up
 * (fs/copyup.c); writes go to the upper file. Data moves between the
 * content file and the guest's buffers directly (preadv/pwritev), with the
 * lock dropped.
 */
#include "fs/fuse_ops.h"
#include "lib/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* fallocate(2) modes passed on to the upper file; any other bit: EOPNOTSUPP. */
#define FS_FALLOCATE_MODES (FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | \
			    FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)

/* Open node n with flags (O_ACCMODE, O_TRUNC) into a new handle. Called
 * with the lock held; drops it while content is fetched. */
static int open_node(struct fs *fs, struct fs_node *n, uint32_t flags, uint64_t *fhp)
{
	if (S_ISDIR(n->mode))
		return -EISDIR;
	if (!S_ISREG(n->mode))
		return -EINVAL; /* the guest kernel opens device nodes and FIFOs itself */
	uint32_t acc = flags & O_ACCMODE;
	bool wr = acc == O_WRONLY || acc == O_RDWR, trunc = (flags & O_TRUNC) && wr;
	if ((wr || trunc) && fs->read_only)
		return -EROFS;
	struct fs_fh *h;
	int rc = fs_fh_alloc(fs, n, &h);
	if (rc)
		return rc;
	h->readable = acc != O_WRONLY;
	h->writable = wr;
	if (wr) {
		rc = fs_copy_up(fs, n, trunc);
		if (rc == 0 && trunc && n->size) {
			int fd = fs_upper_open(fs, n, O_WRONLY | O_TRUNC);
			if (fd < 0)
				rc = fd;
			else
				close(fd);
		}
		if (rc == 0) {
			if (trunc) {
				n->size = 0;
				fs_touch(n, true, true);
			}
			rc = fs_upper_open(fs, n, O_RDWR);
			if (rc >= 0) {
				h->upper_fd = rc;
				rc = 0;
			}
		}
	} else if (n->upper) {
		rc = fs_upper_open(fs, n, O_RDONLY);
		if (rc >= 0) {
			h->upper_fd = rc;
			rc = 0;
		}
	} else if (n->lower && n->size > 0 && !(n->lower->n_chunks && fs->backend->read_range)) {
		/* A file fault when the content is not local: the whole file
		 * comes now, verified. Chunked files fault chunk by chunk in
		 * READ instead. */
		const struct manifest_entry *e = n->lower;
		pthread_mutex_unlock(&fs->lock);
		struct fs_fetch_info info = {0};
		uint64_t t0 = clock_now_ns();
		int fd = fs->backend->open_content(fs->backend_ctx, e, &info);
		uint64_t ns = clock_now_ns() - t0;
		pthread_mutex_lock(&fs->lock);
		fs_note_fetch(fs, n, &info, ns);
		if (fd < 0) {
			rc = fd;
			fs->st_faults_failed++;
		} else {
			h->fd = fd;
		}
	}
	if (rc) {
		fs_fh_release(fs, h);
		return rc;
	}
	*fhp = (uint64_t)h->slot + 1;
	return 0;
}

ssize_t fs_op_open(struct fs_req *r)
{
	struct fuse_open_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	struct fs_node *n = fs_guest_node(r->fs, r->h.nodeid);
	if (!n)
		return -ENOENT;
	struct fuse_open_out out = {.open_flags = FOPEN_KEEP_CACHE};
	int rc;
	if ((rc = open_node(r->fs, n, in.flags, &out.fh)))
		return rc;
	ssize_t w = fuse_wire_reply(r, &out, sizeof(out));
	if (w < 0)
		fs_fh_release(r->fs, r->fs->fhs[out.fh - 1]);
	return w;
}

ssize_t fs_op_create(struct fs_req *r)
{
	struct fuse_create_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	int rc;
	size_t off = r->fs->proto_minor < 12 ? sizeof(struct fuse_open_in) : sizeof(in), len;
	const char *name;
	if ((rc = fuse_wire_name(r, &off, &name, &len)))
		return rc;
	struct fs_node *n = fs_new_child(r, r->h.nodeid, name, len, S_IFREG | (in.mode & 07777), &rc);
	if (!n)
		return rc;
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out;
	memset(&out, 0, sizeof(out));
	if ((rc = open_node(r->fs, n, in.flags & ~(uint32_t)O_TRUNC, &out.o.fh)))
		return rc; /* the name stays, as after open(O_CREAT) failing late */
	out.o.open_flags = FOPEN_KEEP_CACHE;
	fs_entry_fill(n, &out.e);
	ssize_t w = fuse_wire_reply(r, &out, sizeof(out));
	if (w < 0) {
		n->nlookup--;
		fs_fh_release(r->fs, r->fs->fhs[out.o.fh - 1]);
	}
	return w;
}

ssize_t fs_op_read(struct fs_req *r)
{
	struct fs *fs = r->fs;
	struct fuse_read_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	struct fs_fh *h = fs_fh_get(fs, in.fh, r->h.nodeid);
	if (!h)
		return -EBADF;
	struct fs_node *n = h->node;
	ssize_t ret;
	if (h->is_dir || !h->readable) {
		ret = -EBADF;
		goto out;
	}
	/* Another handle copied the file up: read what the guest wrote. */
	if (n->upper && h->upper_fd < 0 && h->fd >= 0) {
		int fd = fs_upper_open(fs, n, O_RDONLY);
		if (fd < 0) {
			ret = fd;
			goto out;
		}
		h->upper_fd = fd;
	}
	uint64_t size = n->size;
	int fd = h->upper_fd >= 0 ? h->upper_fd : h->fd;
	bool ranged = fd < 0 && n->lower && !n->upper;
	const struct manifest_entry *e = n->lower;
	pthread_mutex_unlock(&fs->lock);

	size_t room = fuse_wire_room(r);
	size_t len = in.size;
	if (len > room)
		len = room;
	if (len > fs->max_write * 2u)
		len = fs->max_write * 2u;
	if (in.offset >= size)
		len = 0;
	else if (len > size - in.offset)
		len = (size_t)(size - in.offset);
	ssize_t got = 0;
	struct fs_fetch_info info = {0};
	uint64_t ns = 0;
	if (len && fd >= 0) {
		int niov;
		struct iovec *iov = fuse_wire_reply_iov(r, len, &niov);
		if (!iov)
			got = -ENOMEM;
		else {
			got = preadv(fd, iov, niov, (off_t)in.offset);
			if (got < 0)
				got = -errno;
			free(iov);
		}
	} else if (len && ranged) {
		void *buf = malloc(len);
		if (!buf)
			got = -ENOMEM;
		else {
			uint64_t t0 = clock_now_ns();
			got = fs->backend->read_range(fs->backend_ctx, e, in.offset, buf, len, &info);
			ns = clock_now_ns() - t0;
			if (got > 0) {
				if ((size_t)got > len)
					got = (ssize_t)len; /* a backend that lies is cut */
				fuse_wire_reply_copy(r, buf, (size_t)got);
			}
			free(buf);
		}
	}
	pthread_mutex_lock(&fs->lock);
	fs_note_fetch(fs, n, &info, ns);
	if (got < 0) {
		if (ranged && got != -ENOMEM)
			fs->st_faults_failed++;
		ret = got;
		goto out;
	}
	fs->st_bytes_read += (uint64_t)got;
	ret = fuse_wire_reply_written(r, (size_t)got);
out:
	fs_fh_put(fs, h);
	return ret;
}

ssize_t fs_op_write(struct fs_req *r)
{
	struct fs *fs = r->fs;
	struct fuse_write_in in;
	/* The data follows the argument as this protocol version has it. */
	size_t arg = fs->proto_minor < 9 ? FUSE_COMPAT_WRITE_IN_SIZE : sizeof(in);
	if (r->body_len < arg)
		return -EINVAL;
	fuse_wire_arg(r, &in, sizeof(in));
	if (in.size > r->body_total - arg)
		return -EINVAL; /* claims more data than it sent */
	if (in.offset > fs->max_file_size || in.size > fs->max_file_size - in.offset)
		return -EFBIG;
	struct fs_fh *h = fs_fh_get(fs, in.fh, r->h.nodeid);
	if (!h)
		return -EBADF;
	ssize_t ret;
	struct fs_node *n = h->node;
	if (h->is_dir || !h->writable || h->upper_fd < 0) {
		ret = -EBADF;
		goto out;
	}
	int fd = h->upper_fd;
	pthread_mutex_unlock(&fs->lock);
	int niov;
	ssize_t put = 0;
	struct iovec *iov = in.size ? fuse_wire_payload(r, arg, in.size, &niov) : NULL;
	if (in.size && !iov)
		put = -ENOMEM;
	else if (in.size) {
		put = pwritev(fd, iov, niov, (off_t)in.offset);
		if (put < 0)
			put = -errno;
	}
	free(iov);
	pthread_mutex_lock(&fs->lock);
	if (put < 0) {
		ret = put;
		goto out;
	}
	if (in.offset + (uint64_t)put > n->size)
		n->size = in.offset + (uint64_t)put;
	if (in.write_flags & FUSE_WRITE_KILL_SUIDGID)
		n->mode &= ~(uint32_t)(S_ISUID | S_ISGID);
	fs_touch(n, true, true);
	fs->st_bytes_written += (uint64_t)put;
	fs->dirty = true;
	struct fuse_write_out out = {.size = (uint32_t)put};
	ret = fuse_wire_reply(r, &out, sizeof(out));
out:
	fs_fh_put(fs, h);
	return ret;
}

ssize_t fs_op_release(struct fs_req *r)
{
	return fs_release_req(r, false);
}

ssize_t fs_op_fsync(struct fs_req *r)
{
	struct fs *fs = r->fs;
	struct fuse_fsync_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	int rc = 0;
	struct fs_fh *h = fs_fh_get(fs, in.fh, r->h.nodeid);
	if (!h)
		return -EBADF;
	int fd = h->upper_fd;
	if (fd >= 0) {
		pthread_mutex_unlock(&fs->lock);
		if ((in.fsync_flags & FUSE_FSYNC_FDATASYNC) ? fdatasync(fd) : fsync(fd))
			rc = -errno;
		pthread_mutex_lock(&fs->lock);
	}
	fs_fh_put(fs, h);
	return rc ? rc : fuse_wire_reply(r, NULL, 0);
}

ssize_t fs_op_flush(struct fs_req *r)
{
	struct fuse_flush_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	struct fs_fh *h = fs_fh_get(r->fs, in.fh, r->h.nodeid);
	if (!h)
		return -EBADF;
	fs_fh_put(r->fs, h);
	return fuse_wire_reply(r, NULL, 0);
}

ssize_t fs_op_lseek(struct fs_req *r)
{
	struct fuse_lseek_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	struct fs_fh *h = fs_fh_get(r->fs, in.fh, r->h.nodeid);
	if (!h)
		return -EBADF;
	uint64_t size = h->node->size;
	struct fuse_lseek_out out = {0};
	ssize_t ret = 0;
	/* Holes are not tracked: data runs from 0 to the end. */
	switch (in.whence) {
	case SEEK_SET: out.offset = in.offset; break;
	case SEEK_END: out.offset = size; break;
	case SEEK_DATA:
		if (in.offset >= size)
			ret = -ENXIO;
		out.offset = in.offset;
		break;
	case SEEK_HOLE:
		if (in.offset >= size)
			ret = -ENXIO;
		out.offset = size;
		break;
	default: ret = -EINVAL;
	}
	fs_fh_put(r->fs, h);
	return ret ? ret : fuse_wire_reply(r, &out, sizeof(out));
}

ssize_t fs_op_fallocate(struct fs_req *r)
{
	struct fs *fs = r->fs;
	struct fuse_fallocate_in in;
	fuse_wire_arg(r, &in, sizeof(in));
	/* Both checks before any host call: offset + length may not wrap or
	 * pass the size cap (EFBIG, as a too-long WRITE), and only the modes
	 * a guest's fallocate(2) can ask for reach the host. */
	if (in.offset > fs->max_file_size || in.length > fs->max_file_size - in.offset)
		return -EFBIG;
	if (in.mode & ~(uint32_t)FS_FALLOCATE_MODES)
		return -EOPNOTSUPP;
	struct fs_fh *h = fs_fh_get(fs, in.fh, r->h.nodeid);
	if (!h)
		return -EBADF;
	ssize_t ret = 0;
	if (!h->writable || h->upper_fd < 0) {
		ret = -EBADF;
		goto out;
	}
	/* INSERT_RANGE grows the file by length wherever offset is. */
	if ((in.mode & FALLOC_FL_INSERT_RANGE) && h->node->size > fs->max_file_size - in.length) {
		ret = -EFBIG;
		goto out;
	}
	if (fallocate(h->upper_fd, (int)in.mode, (off_t)in.offset, (off_t)in.length) < 0) {
		ret = -errno;
		goto out;
	}
	struct stat st;
	if (fstat(h->upper_fd, &st) == 0)
		h->node->size = (uint64_t)st.st_size;
	fs_touch(h->node, true, true);
	fs->dirty = true;
	ret = fuse_wire_reply(r, NULL, 0);
out:
	fs_fh_put(fs, h);
	return ret;
}


/* Answered without a host sync: FSYNC on a file is what reaches its
 * upper file. */
ssize_t fs_op_syncfs(struct fs_req *r)
{
	return fuse_wire_reply(r, NULL, 0);
}
