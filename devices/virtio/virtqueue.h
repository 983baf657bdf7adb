/*
 * Split virtqueues (virtio 1.2 section 2.7), device side.
 *
 * Everything here is pure: guest memory is reached only through
 * vmm/memory.h (gmem_ptr), so the code runs against a fake struct guest_mem
 * in unit tests and the fuzzer. A device sees a request as a struct
 * virtq_chain: the descriptor chain turned into host iovecs, the
 * device-readable part first (rd), then the device-writable part (wr).
 *
 * The guest is hostile. virtq_pop checks every descriptor: index < queue
 * size, buffer inside RAM (gmem_ptr), no loop, at most queue-size
 * descriptors per chain (2.7.5.3.1), readable never after writable
 * (2.7.4.2), total length below 4 GiB, indirect tables only with
 * VIRTIO_F_INDIRECT_DESC, a multiple of 16 bytes, not nested and not
 * combined with NEXT (2.7.5.3.1). A chain that breaks any rule is given
 * back to the guest with length 0 and the queue is marked broken: the
 * transport then sets DEVICE_NEEDS_RESET (2.1.2) and the queue stays
 * silent until the driver resets the device. The VMM never trusts a value
 * it read from the guest twice: each descriptor is copied once.
 *
 * Threading: every function takes the queue's own lock, so any thread may
 * pop, push and notify; chains may be pushed in any order and from worker
 * threads. virtq_reset bumps a generation: a chain popped before a reset
 * and pushed after it is dropped, so a late worker cannot write into a
 * ring the driver has since reallocated.
 */
#ifndef MINIVMM_VIRTQUEUE_H
#define MINIVMM_VIRTQUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/memory.h"
#include "lib/iov.h" /* iov_slice for the devices */

/* 2.7: "The maximum Queue Size value is 32768"; minivmm caps lower. */
#define VIRTQ_MAX_SIZE 1024
/* Most descriptors one chain may have, indirect ones included. A chain is
 * never longer than the queue size (2.7.5.3.1); an indirect table is
 * bounded by the same figure. */
#define VIRTQ_CHAIN_MAX VIRTQ_MAX_SIZE

/* Descriptor flags (2.7.5). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
/* Ring flags (2.7.6, 2.7.8). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* Feature bits the queue code implements (6 "Reserved Feature Bits"). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Ring layouts, little-endian in guest memory (2.7.5, 2.7.6, 2.7.8). */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

/* One request: a descriptor chain as host iovecs. iov[0, n_rd) is
 * device-readable, iov[n_rd, n_rd + n_wr) device-writable. Each iovec
 * points into guest RAM and may be used for exactly iov_len bytes. */
struct virtq_chain {
	uint16_t head;   /* head descriptor index, the id given back by push */
	uint32_t gen;    /* queue generation at pop (see virtq_reset) */
	uint16_t n_rd, n_wr;
	uint64_t rd_len, wr_len; /* byte totals of each part */
	struct iovec iov[VIRTQ_CHAIN_MAX];
};

static inline struct iovec *virtq_chain_rd(struct virtq_chain *c) { return c->iov; }
static inline struct iovec *virtq_chain_wr(struct virtq_chain *c) { return c->iov + c->n_rd; }

struct virtq;
/* Raise the "used buffer" interrupt for this queue (transport's job). */
typedef void (*virtq_irq_fn)(void *opaque, struct virtq *vq);
/* The guest broke the rules on this queue (why names the rule). */
typedef void (*virtq_error_fn)(void *opaque, struct virtq *vq, const char *why);

struct virtq {
	pthread_mutex_t lock;
	const struct guest_mem *mem;
	uint16_t index;    /* queue number within its device */
	uint16_t max_size; /* QueueNumMax */

	/* Written by the transport from the driver's registers while the
	 * queue is not ready (4.2.2: QueueNum, QueueDesc, QueueDriver,
	 * QueueDevice). */
	uint16_t num;
	uint64_t desc_gpa, avail_gpa, used_gpa;

	/* Everything below is owned by the queue code, under lock. */
	bool ready;
	bool broken;
	bool indirect, event_idx; /* negotiated features */
	uint32_t gen;
	uint16_t last_avail;   /* next avail ring slot to consume */
	uint16_t used_idx;     /* our copy of used->idx */
	uint16_t signalled_used; /* used_idx at the last interrupt */
	bool signalled_valid;
	/* Host views of the rings, checked by virtq_enable. */
	volatile struct virtq_desc *desc;
	volatile uint16_t *avail;          /* flags, idx, ring[num], used_event */
	volatile uint8_t *used;            /* flags, idx, ring[num], avail_event */

	virtq_irq_fn irq;
	virtq_error_fn error;
	void *cb_opaque;

	/* Figures for --stats. */
	uint64_t n_popped, n_pushed, n_irqs, n_irqs_suppressed, n_bad;
};

/* Prepare a queue (once, at device creation). */
void virtq_init(struct virtq *vq, const struct guest_mem *mem, uint16_t index,
		uint16_t max_size, virtq_irq_fn irq, virtq_error_fn error, void *opaque);
void virtq_destroy(struct virtq *vq);

/* The driver wrote QueueReady = 1: check num (a power of 2, at most
 * max_size, 2.7) and that the three areas are aligned (2.7 table "Queue
 * Part Alignment") and inside RAM, then start consuming from index 0.
 * features are the negotiated ones. Returns 0, or -1 (queue stays off). */
int virtq_enable(struct virtq *vq, uint64_t features);
/* Device reset or QueueReady = 0: forget the rings and bump gen. */
void virtq_reset(struct virtq *vq);
bool virtq_is_ready(struct virtq *vq);

/* Take the next available chain. Returns 1 with *c filled, 0 if there is
 * none (or the queue is not ready), -1 if the queue is broken: this chain
 * (or an earlier one) broke a rule, was given back with length 0, and
 * error() was called once. With VIRTIO_F_EVENT_IDX, publishes avail_event
 * so that the driver notifies again for the next buffer. */
int virtq_pop(struct virtq *vq, struct virtq_chain *c);

/* Give a chain back with len bytes written into its writable part
 * (len is clamped to wr_len). Dropped if the queue was reset since pop. */
void virtq_push(struct virtq *vq, const struct virtq_chain *c, uint32_t len);

/* After one or more pushes: interrupt the driver unless it asked not to
 * be (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX, 2.7.7). */
void virtq_notify(struct virtq *vq);

/* Helpers on a chain's parts, bounds-checked against the iovecs.
 * Copy len bytes at offset off of the readable part into dst; returns
 * 0, or -1 if the part is shorter. */
int virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, uint64_t len);
/* Copy len bytes into the writable part at offset off; 0 or -1. */
int virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, uint64_t len);

#endif
