/*
 * virtio-net's data path. The contract is in net_queues.h.
 */
#include "devices/virtio/net_queues.h"

#include <stdlib.h>
#include <string.h>

struct vnet_frame {
	struct vnet_frame *next;
	size_t len;
	uint8_t data[];
};

int net_queues_init(struct net_queues *q, net_send_fn send, void *send_opaque)
{
	memset(q, 0, sizeof(*q));
	q->send = send;
	q->send_opaque = send_opaque;
	pthread_mutex_init(&q->rx_lock, NULL);
	for (unsigned i = 0; i < VNET_RX_SPAN_MAX; i++) {
		q->held[i] = malloc(sizeof(*q->held[i]));
		if (!q->held[i])
			return -1;
	}
	return 0;
}

static void backlog_free(struct net_queues *q)
{
	while (q->bl_head) {
		struct vnet_frame *f = q->bl_head;
		q->bl_head = f->next;
		free(f);
	}
	q->bl_tail = NULL;
	q->bl_frames = 0;
	q->bl_bytes = 0;
}

void net_queues_destroy(struct net_queues *q)
{
	backlog_free(q);
	for (unsigned i = 0; i < VNET_RX_SPAN_MAX; i++)
		free(q->held[i]);
	pthread_mutex_destroy(&q->rx_lock);
}

void net_queues_activate(struct net_queues *q, bool mrg_rxbuf, uint16_t rx_num)
{
	pthread_mutex_lock(&q->rx_lock);
	q->mrg_rxbuf = mrg_rxbuf;
	q->rx_num = rx_num;
	q->active = true;
	pthread_mutex_unlock(&q->rx_lock);
}

void net_queues_reset(struct net_queues *q)
{
	pthread_mutex_lock(&q->rx_lock);
	q->active = false;
	q->n_held = 0; /* popped before the reset: gone with the rings */
	backlog_free(q);
	pthread_mutex_unlock(&q->rx_lock);
}

static void backlog_pop(struct net_queues *q)
{
	struct vnet_frame *f = q->bl_head;
	q->bl_head = f->next;
	if (!q->bl_head)
		q->bl_tail = NULL;
	q->bl_frames--;
	q->bl_bytes -= f->len;
	free(f);
}

/* Give every held chain back unused (the frame is dropped). */
static void held_return(struct net_queues *q, struct virtq *vq)
{
	for (unsigned i = 0; i < q->n_held; i++)
		virtq_push(vq, q->held[i], 0);
	q->n_held = 0;
}

/* Write header + frame across the first held chains and push them. The
 * held chains hold at least sizeof(hdr) + len bytes together and each
 * at least the header. */
static void rx_write(struct net_queues *q, struct virtq *vq, const struct vnet_frame *f)
{
	uint64_t need = sizeof(struct vnet_hdr) + f->len, sum = 0;
	unsigned used = 0;
	while (sum < need)
		sum += q->held[used++]->wr_len;
	/* No offload negotiated: flags 0, GSO_NONE (5.1.6.4). */
	struct vnet_hdr h = {.num_buffers = (uint16_t)used};
	virtq_chain_write(q->held[0], 0, &h, sizeof(h));
	size_t done = 0;
	for (unsigned i = 0; i < used; i++) {
		struct virtq_chain *c = q->held[i];
		uint64_t off = i == 0 ? sizeof(h) : 0;
		uint64_t room = c->wr_len - off;
		size_t k = f->len - done < room ? f->len - done : (size_t)room;
		virtq_chain_write(c, off, f->data + done, k);
		done += k;
		virtq_push(vq, c, (uint32_t)(off + k));
	}
	/* Chains left over (none today: we pop only while short) stay held,
	 * moved to the front; the pushed ones' storage goes to the back. */
	for (unsigned i = used; i < q->n_held; i++) {
		struct virtq_chain *t = q->held[i - used];
		q->held[i - used] = q->held[i];
		q->held[i] = t;
	}
	q->n_held -= used;
	atomic_fetch_add(&q->rx_packets, 1);
	atomic_fetch_add(&q->rx_bytes, f->len);
}

/* Deliver backlog frames while the guest has buffers. rx_lock held. */
static void rx_drain_locked(struct net_queues *q, struct virtq *vq)
{
	bool pushed = false;
	while (q->active && q->bl_head) {
		struct vnet_frame *f = q->bl_head;
		uint64_t need = sizeof(struct vnet_hdr) + f->len, have = 0;
		/* 5.1.6.3.1: one chain per frame without MRG_RXBUF. Never
		 * wait for more chains than the ring can hold. */
		unsigned max = q->mrg_rxbuf ? VNET_RX_SPAN_MAX : 1;
		if (max > q->rx_num)
			max = q->rx_num;
		for (unsigned i = 0; i < q->n_held; i++)
			have += q->held[i]->wr_len;
		while (have < need && q->n_held < max) {
			struct virtq_chain *c = q->held[q->n_held];
			if (virtq_pop(vq, c) <= 0)
				break;
			if (c->n_rd || c->wr_len < sizeof(struct vnet_hdr)) {
				/* Not a receive buffer (5.1.6.3.1: write-only,
				 * room for the header): back unused. */
				virtq_push(vq, c, 0);
				pushed = true;
				atomic_fetch_add(&q->rx_bad_buffers, 1);
				continue;
			}
			q->n_held++;
			have += c->wr_len;
		}
		if (have < need) {
			if (q->n_held < max)
				break; /* until the guest adds buffers */
			/* Its buffers cannot hold this frame. */
			held_return(q, vq);
			pushed = true;
			backlog_pop(q);
			atomic_fetch_add(&q->rx_dropped, 1);
			continue;
		}
		rx_write(q, vq, f);
		pushed = true;
		backlog_pop(q);
	}
	if (pushed)
		virtq_notify(vq);
}

void net_rx_drain(struct net_queues *q, struct virtq *rxq)
{
	pthread_mutex_lock(&q->rx_lock);
	rx_drain_locked(q, rxq);
	pthread_mutex_unlock(&q->rx_lock);
}

void net_rx_frame(struct net_queues *q, struct virtq *rxq, const void *frame, size_t len)
{
	if (len == 0 || len > NET_MAX_FRAME) {
		atomic_fetch_add(&q->rx_dropped, 1);
		return;
	}
	pthread_mutex_lock(&q->rx_lock);
	struct vnet_frame *f = NULL;
	if (q->active && q->bl_frames < VNET_RX_BACKLOG &&
	    q->bl_bytes + len <= VNET_RX_BACKLOG_BYTES)
		f = malloc(sizeof(*f) + len);
	if (!f) {
		pthread_mutex_unlock(&q->rx_lock);
		atomic_fetch_add(&q->rx_dropped, 1);
		return;
	}
	f->next = NULL;
	f->len = len;
	memcpy(f->data, frame, len);
	if (q->bl_tail)
		q->bl_tail->next = f;
	else
		q->bl_head = f;
	q->bl_tail = f;
	q->bl_frames++;
	q->bl_bytes += len;
	rx_drain_locked(q, rxq);
	pthread_mutex_unlock(&q->rx_lock);
}

void net_tx(struct net_queues *q, struct virtq *txq)
{
	struct virtq_chain *c = &q->tx_chain;
	while (virtq_pop(txq, c) > 0) {
		/* 5.1.6.2: header then frame, all device-readable. The header
		 * asks nothing of us: no offload was negotiated. */
		if (c->rd_len < sizeof(struct vnet_hdr) ||
		    c->rd_len - sizeof(struct vnet_hdr) > NET_MAX_FRAME) {
			atomic_fetch_add(&q->tx_bad, 1);
			atomic_fetch_add(&q->tx_dropped, 1);
		} else {
			size_t len = (size_t)(c->rd_len - sizeof(struct vnet_hdr));
			if (virtq_chain_read(c, sizeof(struct vnet_hdr), q->tx_buf, len) == 0 &&
			    q->send(q->send_opaque, q->tx_buf, len) == 0) {
				atomic_fetch_add(&q->tx_packets, 1);
				atomic_fetch_add(&q->tx_bytes, len);
			} else {
				atomic_fetch_add(&q->tx_dropped, 1);
			}
		}
		virtq_push(txq, c, 0);
		/* Per chain, as virtio-blk: the guest reuses the slot at once;
		 * EVENT_IDX keeps the interrupts down. */
		virtq_notify(txq);
	}
}
