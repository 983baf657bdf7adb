/*
 * virtio-blk requests (virtio 1.2 section 5.2.6), executed against a host
 * file descriptor. Pure: no KVM, no threads; the device (devices/virtio_blk.c),
 * the unit tests and the fuzzer all drive it with a struct virtq_chain.
 *
 * A request is a 16-byte header in the readable part (type, reserved,
 * sector), data (readable for writes, writable for reads), and a status
 * byte, the last byte of the writable part. Data moves with preadv /
 * pwritev straight between the file and guest RAM. Every field is
 * checked: unknown type -> UNSUPP; short header, no status byte, data not
 * a multiple of 512, sectors beyond the capacity, a write to a read-only
 * disk, a host I/O error -> IOERR.
 */
#ifndef MINIVMM_BLK_REQ_H
#define MINIVMM_BLK_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/virtqueue.h"

/* Request types (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
/* Status values (5.2.6). */
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR 512     /* 5.2.6: sectors are 512 bytes */
#define VIRTIO_BLK_ID_BYTES 20    /* 5.2.6: GET_ID answer */
/* Most segments one discard / write-zeroes request may carry (what the
 * device puts in max_discard_seg / max_write_zeroes_seg). */
#define BLK_MAX_DISCARD_SEG 32

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* 5.2.6: one segment of a discard or write-zeroes request. */
struct blk_discard_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags; /* bit 0: unmap (write-zeroes only) */
};
#define VIRTIO_BLK_WZ_F_UNMAP 1

struct blk_backend {
	int fd;
	uint64_t capacity;  /* in 512-byte sectors */
	bool ro;
	char id[VIRTIO_BLK_ID_BYTES];
	/* Figures (updated by the one thread that runs requests). */
	uint64_t n_read, n_write, n_flush, n_other, n_errors;
	uint64_t bytes_read, bytes_written;
};

/* Execute the request in c and write its status byte. Returns the number
 * of bytes written into the chain's writable part (the used length). */
uint32_t blk_handle_request(struct blk_backend *b, struct virtq_chain *c);

#endif
