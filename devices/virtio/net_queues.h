/*
 * virtio-net's data path (virtio 1.2 section 5.1.6): frames between a
 * backend and the receive and transmit virtqueues. No KVM, no transport:
 * the device (devices/virtio_net.c), the unit tests and the fuzzer drive
 * it with plain struct virtq.
 *
 * Transmit (net_tx): each chain is the 12-byte header and a frame, all
 * device-readable; the frame is copied into one buffer and given to
 * send(). A chain shorter than the header or with a frame longer than
 * NET_MAX_FRAME is dropped and counted (tx_bad); a frame send() refuses
 * is counted (tx_dropped). Every chain goes back with length 0.
 * Receive (net_rx_frame, net_rx_drain): a frame joins a bounded backlog
 * (VNET_RX_BACKLOG frames, VNET_RX_BACKLOG_BYTES) and is written into the
 * guest's receive chains, header first, as soon as they can hold it: one
 * chain, or up to VNET_RX_SPAN_MAX with MRG_RXBUF (num_buffers says how
 * many). A chain with a readable part or no room for the header goes back
 * empty (rx_bad_buffers). When the guest's buffers cannot hold a frame
 * even all together, they go back empty and the frame is dropped.
 *
 * Threading: net_tx from one thread (the I/O thread). The receive calls
 * take rx_lock and may come from any thread (the backend's, the I/O
 * thread's); activate / reset too (the vCPU thread, under the transport's
 * device lock: rx_lock is always taken after it).
 */
#ifndef MINIVMM_NET_QUEUES_H
#define MINIVMM_NET_QUEUES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/virtqueue.h"
#include "net/backend.h"

/* 5.1.6 struct virtio_net_hdr with VERSION_1: num_buffers always there. */
struct vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));
_Static_assert(sizeof(struct vnet_hdr) == 12, "virtio_net_hdr layout (5.1.6)");

/* Receive chains one frame may span (MRG_RXBUF): Linux posts buffers of
 * at least 1518 bytes, so an MTU frame needs one. */
#define VNET_RX_SPAN_MAX 16
/* Frames waiting for receive buffers: a guest that stops reading loses
 * the newest ones (its TCP retransmits). */
#define VNET_RX_BACKLOG 256
#define VNET_RX_BACKLOG_BYTES (1u << 20)

typedef int (*net_send_fn)(void *opaque, const void *frame, size_t len);

struct vnet_frame;

struct net_queues {
	net_send_fn send;
	void *send_opaque;

	/* Transmit: net_tx's. */
	struct virtq_chain tx_chain;
	uint8_t tx_buf[NET_MAX_FRAME];

	/* Receive, under rx_lock. */
	pthread_mutex_t rx_lock;
	bool active;     /* DRIVER_OK and not reset since */
	bool mrg_rxbuf;  /* negotiated */
	uint16_t rx_num; /* the receive queue's size */
	struct vnet_frame *bl_head, *bl_tail;
	unsigned bl_frames;
	size_t bl_bytes;
	struct virtq_chain *held[VNET_RX_SPAN_MAX]; /* popped for the head frame */
	unsigned n_held;

	_Atomic uint64_t rx_packets, rx_bytes, rx_dropped, rx_bad_buffers;
	_Atomic uint64_t tx_packets, tx_bytes, tx_dropped, tx_bad;
};

/* 0, or -1 out of memory. */
int net_queues_init(struct net_queues *q, net_send_fn send, void *send_opaque);
void net_queues_destroy(struct net_queues *q);
/* The driver is ready (DRIVER_OK): receive starts. */
void net_queues_activate(struct net_queues *q, bool mrg_rxbuf, uint16_t rx_num);
/* Device reset: receive stops, the backlog and held chains are forgotten. */
void net_queues_reset(struct net_queues *q);

void net_tx(struct net_queues *q, struct virtq *txq);
/* A frame for the guest (copied). Dropped and counted if receive is not
 * active, the backlog is full, or len is 0 or above NET_MAX_FRAME. */
void net_rx_frame(struct net_queues *q, struct virtq *rxq, const void *frame, size_t len);
/* The guest added receive buffers. */
void net_rx_drain(struct net_queues *q, struct virtq *rxq);

#endif
