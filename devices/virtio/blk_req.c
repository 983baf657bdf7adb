/*
 * virtio-blk request execution (contract in blk_req.h).
 */
#define _FILE_OFFSET_BITS 64
#include "devices/virtio/blk_req.h"
#include "lib/io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define BLK_HDR_BYTES 16

/* [sector, sector + bytes/512) inside the disk? Written so that nothing
 * can overflow: the guest controls both numbers. */
static bool range_ok(const struct blk_backend *b, uint64_t sector, uint64_t bytes)
{
	uint64_t n = bytes / VIRTIO_BLK_SECTOR;
	return sector <= b->capacity && n <= b->capacity - sector;
}

/* Full transfer or -1: retries short reads and writes, and a read past
 * the end of the file (a sparse tail) reads as zeros. */
static int do_io(struct blk_backend *b, bool write, struct iovec *iov, int n, uint64_t off)
{
	while (n > 0) {
		ssize_t r = write ? pwritev(b->fd, iov, n, (off_t)off)
				  : preadv(b->fd, iov, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			if (write)
				return -1;
			for (int i = 0; i < n; i++)
				memset(iov[i].iov_base, 0, iov[i].iov_len);
			return 0;
		}
		off += (uint64_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static uint8_t blk_rw(struct blk_backend *b, struct virtq_chain *c, const struct blk_req_hdr *h,
		      bool write, uint64_t *data_len)
{
	/* Data: after the header in the readable part (write), or before
	 * the status byte in the writable part (read). */
	struct iovec *src = write ? virtq_chain_rd(c) : virtq_chain_wr(c);
	int nsrc = write ? c->n_rd : c->n_wr;
	uint64_t off = write ? BLK_HDR_BYTES : 0;
	uint64_t len = write ? c->rd_len - BLK_HDR_BYTES : c->wr_len - 1;
	if (len % VIRTIO_BLK_SECTOR || !range_ok(b, h->sector, len))
		return VIRTIO_BLK_S_IOERR;
	if (write && b->ro)
		return VIRTIO_BLK_S_IOERR;
	struct iovec iov[VIRTQ_CHAIN_MAX];
	int n = iov_slice(src, nsrc, off, len, iov, VIRTQ_CHAIN_MAX);
	if (n < 0)
		return VIRTIO_BLK_S_IOERR;
	if (n > 0 && do_io(b, write, iov, n, h->sector * VIRTIO_BLK_SECTOR) < 0)
		return VIRTIO_BLK_S_IOERR;
	if (write) {
		b->n_write++;
		b->bytes_written += len;
	} else {
		b->n_read++;
		b->bytes_read += len;
		*data_len = len;
	}
	return VIRTIO_BLK_S_OK;
}

/* Zero [off, off + len) with plain writes when fallocate cannot. */
static int write_zeros(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536];
	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		if (pwrite_all(fd, zeros, n, (off_t)off) < 0)
			return -1;
		off += n;
		len -= n;
	}
	return 0;
}

static uint8_t blk_discard(struct blk_backend *b, struct virtq_chain *c, bool zeroes)
{
	if (b->ro)
		return VIRTIO_BLK_S_IOERR;
	uint64_t bytes = c->rd_len - BLK_HDR_BYTES;
	if (bytes == 0 || bytes % sizeof(struct blk_discard_seg) ||
	    bytes / sizeof(struct blk_discard_seg) > BLK_MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_IOERR;
	unsigned nseg = (unsigned)(bytes / sizeof(struct blk_discard_seg));
	struct blk_discard_seg seg[BLK_MAX_DISCARD_SEG];
	if (virtq_chain_read(c, BLK_HDR_BYTES, seg, bytes) < 0)
		return VIRTIO_BLK_S_IOERR;
	/* Check every segment before touching the file. */
	for (unsigned i = 0; i < nseg; i++) {
		uint64_t len = (uint64_t)seg[i].num_sectors * VIRTIO_BLK_SECTOR;
		if (!range_ok(b, seg[i].sector, len))
			return VIRTIO_BLK_S_IOERR;
		/* 5.2.6.2: discard has no flags; unknown flags are refused. */
		if (seg[i].flags & ~(uint32_t)(zeroes ? VIRTIO_BLK_WZ_F_UNMAP : 0))
			return VIRTIO_BLK_S_UNSUPP;
	}
	for (unsigned i = 0; i < nseg; i++) {
		off_t off = (off_t)(seg[i].sector * VIRTIO_BLK_SECTOR);
		off_t len = (off_t)seg[i].num_sectors * VIRTIO_BLK_SECTOR;
		if (len == 0)
			continue;
		int mode;
		if (!zeroes || (seg[i].flags & VIRTIO_BLK_WZ_F_UNMAP))
			mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		else
			mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		if (fallocate(b->fd, mode, off, len) == 0)
			continue;
		/* A discard is advice; zeroes must be written one way or another. */
		if (!zeroes)
			continue;
		if (write_zeros(b->fd, (uint64_t)off, (uint64_t)len) < 0)
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

uint32_t blk_handle_request(struct blk_backend *b, struct virtq_chain *c)
{
	/* Without a writable byte there is nowhere to put a status: give
	 * the chain back untouched. */
	if (c->wr_len == 0) {
		b->n_errors++;
		return 0;
	}
	uint8_t status;
	uint64_t data_len = 0; /* bytes written before the status byte */
	struct blk_req_hdr h;
	if (virtq_chain_read(c, 0, &h, sizeof(h)) < 0) {
		status = VIRTIO_BLK_S_IOERR;
		goto done;
	}
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
		status = blk_rw(b, c, &h, false, &data_len);
		break;
	case VIRTIO_BLK_T_OUT:
		status = blk_rw(b, c, &h, true, &data_len);
		break;
	case VIRTIO_BLK_T_FLUSH:
		b->n_flush++;
		status = (b->ro || fdatasync(b->fd) == 0) ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_GET_ID:
		b->n_other++;
		/* 5.2.6: 20 bytes, not NUL-terminated if all are used. */
		if (c->wr_len - 1 < VIRTIO_BLK_ID_BYTES ||
		    virtq_chain_write(c, 0, b->id, VIRTIO_BLK_ID_BYTES) < 0) {
			status = VIRTIO_BLK_S_IOERR;
		} else {
			status = VIRTIO_BLK_S_OK;
			data_len = VIRTIO_BLK_ID_BYTES;
		}
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		b->n_other++;
		status = blk_discard(b, c, h.type == VIRTIO_BLK_T_WRITE_ZEROES);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
done:
	if (status != VIRTIO_BLK_S_OK)
		b->n_errors++;
	/* The status byte is the last writable byte (5.2.6). */
	virtq_chain_write(c, c->wr_len - 1, &status, 1);
	/* A chain may hold 2^32 bytes (2.7.5), one more than a used length. */
	return data_len + 1 > UINT32_MAX ? UINT32_MAX : (uint32_t)(data_len + 1);
}
