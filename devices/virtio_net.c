/*
 * virtio-net (virtio 1.2 section 5.1): the guest's network card, found by a
 * stock kernel's virtio_net driver. `--net user[,hostfwd=...]` (slirp,
 * net/slirp.c) or `--net tap,ifname=NAME` (net/tap.c) says where its
 * frames go; `--net none`, the default, makes no device.
 *
 * Queues (5.1.2): 0 receive, 1 transmit; no control queue, one pair.
 * Features (5.1.3): MAC, STATUS (link always up), MRG_RXBUF. No checksum
 * or segmentation offloads: slirp cannot take partial checksums or large
 * segments, and the tap backend keeps to the same plain frames. Every
 * header is the 12-byte struct virtio_net_hdr (5.1.6, VERSION_1 layout).
 *
 * Transmit: the device's I/O thread pops a chain, copies the frame after
 * the header into one buffer and hands it to the backend, which sends or
 * queues it (bounded) or drops it. Nothing grows with the guest's rate.
 * Receive: the backend's thread calls vnet_rx; the frame joins a bounded
 * backlog and is written into the guest's receive buffers as soon as there
 * are enough (several chains per frame with MRG_RXBUF). The I/O thread
 * drains the backlog too when the guest adds buffers. rx_lock orders the
 * two; it is taken after the transport's device lock, never before.
 */
#include "devices/device.h"
#include "devices/virtio/virtio.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/stats.h"
#include "net/backend.h"
#include "vmm/vm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
/* config.status bits (5.1.4). */
#define VIRTIO_NET_S_LINK_UP 1

#define VNET_RX_QUEUE 0
#define VNET_TX_QUEUE 1
#define VNET_QUEUE_SIZE 256
/* Receive chains one frame may span (MRG_RXBUF): Linux posts buffers of
 * at least 1518 bytes, so an MTU frame needs one; a guest whose buffers
 * are smaller than total/VNET_RX_SPAN_MAX loses the frame. */
#define VNET_RX_SPAN_MAX 16
/* Frames for the guest waiting for receive buffers: a guest that stops
 * reading loses the newest ones (TCP retransmits them). */
#define VNET_RX_BACKLOG 256
#define VNET_RX_BACKLOG_BYTES (1u << 20)

/* QEMU's default MAC: locally administered (bit 1 of byte 0), stable. */
static const uint8_t vnet_default_mac[NET_MAC_LEN] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

/* 5.1.4 struct virtio_net_config, up to max_virtqueue_pairs. */
struct vnet_config {
	uint8_t mac[NET_MAC_LEN];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
} __attribute__((packed));
_Static_assert(sizeof(struct vnet_config) == 10, "virtio_net_config layout (5.1.4)");

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

struct vnet_frame {
	struct vnet_frame *next;
	size_t len;
	uint8_t data[];
};

struct vnet {
	struct virtio_dev *dev;
	struct vnet_config config;
	struct net_options opts;
	struct net_backend *be;

	/* Transmit: the I/O thread's. */
	struct virtq_chain tx_chain;
	uint8_t tx_buf[NET_MAX_FRAME];

	/* Receive, under rx_lock. */
	pthread_mutex_t rx_lock;
	bool active;    /* DRIVER_OK and not reset since */
	bool mrg_rxbuf; /* negotiated */
	uint16_t rx_num; /* the receive queue's size, fixed from activate */
	struct vnet_frame *bl_head, *bl_tail;
	unsigned bl_frames;
	size_t bl_bytes;
	/* Receive chains popped for the frame at the backlog's head. */
	struct virtq_chain *held[VNET_RX_SPAN_MAX];
	unsigned n_held;

	_Atomic uint64_t rx_packets, rx_bytes, rx_dropped, rx_bad_buffers;
	_Atomic uint64_t tx_packets, tx_bytes, tx_dropped, tx_bad;
};

static int validate_net(const char *v, char *err, size_t errlen)
{
	struct net_options o;
	return net_options_parse(v, &o, err, errlen);
}

CLI_OPTION(.command = "run", .name = "net",
	   .argname = "none|user[,hostfwd=tcp:ADDR:PORT-:PORT]...|tap,ifname=NAME",
	   .help = "guest network card (virtio-net): none (default); user-mode networking "
		   "(slirp: guest 10.0.2.15, host loopback at 10.0.2.2, DHCP, hostfwd port "
		   "forwards, dns=on for a DNS relay); or an existing tap; mac=52:54:00:xx:xx:xx "
		   "sets the MAC. docs/networking.md",
	   .validate = validate_net)

static void backlog_free(struct vnet *n)
{
	while (n->bl_head) {
		struct vnet_frame *f = n->bl_head;
		n->bl_head = f->next;
		free(f);
	}
	n->bl_tail = NULL;
	n->bl_frames = 0;
	n->bl_bytes = 0;
}

static void backlog_pop(struct vnet *n)
{
	struct vnet_frame *f = n->bl_head;
	n->bl_head = f->next;
	if (!n->bl_head)
		n->bl_tail = NULL;
	n->bl_frames--;
	n->bl_bytes -= f->len;
	free(f);
}

/* Give every held chain back unused (the frame is dropped). */
static void held_return(struct vnet *n, struct virtq *vq)
{
	for (unsigned i = 0; i < n->n_held; i++)
		virtq_push(vq, n->held[i], 0);
	n->n_held = 0;
}

/* Write hdr + frame across the held chains, push them. The held chains
 * hold at least sizeof(hdr) + len bytes, each at least the header. */
static void rx_write(struct vnet *n, struct virtq *vq, const struct vnet_frame *f)
{
	uint64_t need = sizeof(struct vnet_hdr) + f->len, sum = 0;
	unsigned used = 0;
	while (sum < need)
		sum += n->held[used++]->wr_len;
	struct vnet_hdr h = {.num_buffers = (uint16_t)used};
	virtq_chain_write(n->held[0], 0, &h, sizeof(h)); /* wr_len >= sizeof(h) */
	size_t done = 0;
	for (unsigned i = 0; i < used; i++) {
		struct virtq_chain *c = n->held[i];
		uint64_t off = i == 0 ? sizeof(h) : 0;
		uint64_t room = c->wr_len - off;
		size_t k = f->len - done < room ? f->len - done : (size_t)room;
		virtq_chain_write(c, off, f->data + done, k);
		done += k;
		virtq_push(vq, c, (uint32_t)(off + k));
	}
	/* Chains left over (none today: we pop only while short) stay held. */
	for (unsigned i = used; i < n->n_held; i++) {
		struct virtq_chain *t = n->held[i - used];
		n->held[i - used] = n->held[i];
		n->held[i] = t;
	}
	n->n_held -= used;
	atomic_fetch_add(&n->rx_packets, 1);
	atomic_fetch_add(&n->rx_bytes, f->len);
}

/* Deliver backlog frames while the guest has buffers. rx_lock held. */
static void rx_drain(struct vnet *n)
{
	struct virtq *vq = virtio_dev_queue(n->dev, VNET_RX_QUEUE);
	bool pushed = false;
	while (n->active && n->bl_head) {
		struct vnet_frame *f = n->bl_head;
		uint64_t need = sizeof(struct vnet_hdr) + f->len, have = 0;
		/* 5.1.6.3.1: one chain per frame without MRG_RXBUF. Never
		 * wait for more chains than the ring can hold. */
		unsigned max = n->mrg_rxbuf ? VNET_RX_SPAN_MAX : 1;
		if (max > n->rx_num)
			max = n->rx_num;
		for (unsigned i = 0; i < n->n_held; i++)
			have += n->held[i]->wr_len;
		while (have < need && n->n_held < max) {
			struct virtq_chain *c = n->held[n->n_held];
			if (virtq_pop(vq, c) <= 0)
				break;
			if (c->n_rd || c->wr_len < sizeof(struct vnet_hdr)) {
				/* Not a receive buffer (5.1.6.3.1: write-only,
				 * room for the header): back unused. */
				virtq_push(vq, c, 0);
				pushed = true;
				atomic_fetch_add(&n->rx_bad_buffers, 1);
				continue;
			}
			n->n_held++;
			have += c->wr_len;
		}
		if (have < need) {
			if (n->n_held < max)
				break; /* until the guest adds buffers */
			/* Its buffers cannot hold this frame. */
			held_return(n, vq);
			pushed = true;
			backlog_pop(n);
			atomic_fetch_add(&n->rx_dropped, 1);
			continue;
		}
		rx_write(n, vq, f);
		pushed = true;
		backlog_pop(n);
	}
	if (pushed)
		virtq_notify(vq);
}

/* A frame from the backend (its thread). */
static void vnet_rx(void *opaque, const void *frame, size_t len)
{
	struct vnet *n = opaque;
	if (len == 0 || len > NET_MAX_FRAME) {
		atomic_fetch_add(&n->rx_dropped, 1);
		return;
	}
	pthread_mutex_lock(&n->rx_lock);
	struct vnet_frame *f = NULL;
	if (n->active && n->bl_frames < VNET_RX_BACKLOG &&
	    n->bl_bytes + len <= VNET_RX_BACKLOG_BYTES)
		f = malloc(sizeof(*f) + len);
	if (!f) {
		pthread_mutex_unlock(&n->rx_lock);
		atomic_fetch_add(&n->rx_dropped, 1);
		return;
	}
	f->next = NULL;
	f->len = len;
	memcpy(f->data, frame, len);
	if (n->bl_tail)
		n->bl_tail->next = f;
	else
		n->bl_head = f;
	n->bl_tail = f;
	n->bl_frames++;
	n->bl_bytes += len;
	rx_drain(n);
	pthread_mutex_unlock(&n->rx_lock);
}

static void vnet_tx(struct vnet *n, struct virtq *vq)
{
	struct virtq_chain *c = &n->tx_chain;
	while (virtq_pop(vq, c) > 0) {
		/* 5.1.6.2: header then frame, all device-readable. The header
		 * asks nothing of us: no offload was negotiated. */
		if (c->rd_len < sizeof(struct vnet_hdr) ||
		    c->rd_len - sizeof(struct vnet_hdr) > NET_MAX_FRAME) {
			atomic_fetch_add(&n->tx_bad, 1);
			atomic_fetch_add(&n->tx_dropped, 1);
		} else {
			size_t len = (size_t)(c->rd_len - sizeof(struct vnet_hdr));
			if (virtq_chain_read(c, sizeof(struct vnet_hdr), n->tx_buf, len) == 0 &&
			    n->be->ops->send(n->be, n->tx_buf, len) == 0) {
				atomic_fetch_add(&n->tx_packets, 1);
				atomic_fetch_add(&n->tx_bytes, len);
			} else {
				atomic_fetch_add(&n->tx_dropped, 1);
			}
		}
		virtq_push(vq, c, 0);
		virtq_notify(vq);
	}
}

static void vnet_handle_queue(struct virtio_dev *dev, struct virtq *vq)
{
	struct vnet *n = virtio_dev_opaque(dev);
	if (vq->index == VNET_TX_QUEUE) {
		vnet_tx(n, vq);
		return;
	}
	/* New receive buffers: frames may be waiting for them. */
	pthread_mutex_lock(&n->rx_lock);
	rx_drain(n);
	pthread_mutex_unlock(&n->rx_lock);
}

static void vnet_activate(struct virtio_dev *dev)
{
	struct vnet *n = virtio_dev_opaque(dev);
	pthread_mutex_lock(&n->rx_lock);
	n->mrg_rxbuf = virtio_dev_features(dev) & (1ULL << VIRTIO_NET_F_MRG_RXBUF);
	n->rx_num = virtio_dev_queue(dev, VNET_RX_QUEUE)->num;
	n->active = true;
	pthread_mutex_unlock(&n->rx_lock);
}

static void vnet_reset(struct virtio_dev *dev)
{
	struct vnet *n = virtio_dev_opaque(dev);
	pthread_mutex_lock(&n->rx_lock);
	n->active = false;
	n->n_held = 0; /* popped before the reset: gone with the rings */
	backlog_free(n);
	pthread_mutex_unlock(&n->rx_lock);
}

static const struct virtio_dev_ops vnet_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.features = (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_MRG_RXBUF) |
		    (1ULL << VIRTIO_NET_F_STATUS),
	.config_size = sizeof(struct vnet_config),
	.num_queues = 2,
	.queue_max_size = VNET_QUEUE_SIZE,
	.handle_queue = vnet_handle_queue,
	.activate = vnet_activate,
	.reset = vnet_reset,
};

static void vnet_stats(void *opaque, json_t *o)
{
	struct vnet *n = opaque;
	char mac[18];
	const uint8_t *m = n->config.mac;
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
		 m[5]);
	json_object_set_new(o, "backend", json_string(n->opts.type));
	json_object_set_new(o, "path", json_string(n->be ? n->be->path : "none"));
	json_object_set_new(o, "mac", json_string(mac));
	json_object_set_new(o, "offloads", json_false());
	json_object_set_new(o, "rx_packets", json_integer((json_int_t)n->rx_packets));
	json_object_set_new(o, "rx_bytes", json_integer((json_int_t)n->rx_bytes));
	json_object_set_new(o, "rx_dropped", json_integer((json_int_t)n->rx_dropped));
	json_object_set_new(o, "rx_bad_buffers", json_integer((json_int_t)n->rx_bad_buffers));
	json_object_set_new(o, "tx_packets", json_integer((json_int_t)n->tx_packets));
	json_object_set_new(o, "tx_bytes", json_integer((json_int_t)n->tx_bytes));
	json_object_set_new(o, "tx_dropped", json_integer((json_int_t)n->tx_dropped));
	json_object_set_new(o, "tx_bad", json_integer((json_int_t)n->tx_bad));
	if (n->be && n->be->ops->stats)
		n->be->ops->stats(n->be, o);
}

static void vnet_free(struct vnet *n)
{
	stats_unregister(n);
	if (n->be)
		n->be->ops->close(n->be); /* no rx after this */
	virtio_dev_destroy(n->dev);
	backlog_free(n);
	for (unsigned i = 0; i < VNET_RX_SPAN_MAX; i++)
		free(n->held[i]);
	pthread_mutex_destroy(&n->rx_lock);
	free(n);
}

static const struct device_ops vnet_device;

static int vnet_create(struct vm *vm)
{
	const char *spec = config_get(vm->cfg, "net");
	if (!spec)
		return 0;
	struct net_options o;
	char err[256];
	if (net_options_parse(spec, &o, err, sizeof(err)) < 0) {
		log_error("--net %s", err);
		return -1;
	}
	if (!strcmp(o.type, "none"))
		return 0;
	const struct net_backend_ops *bops = net_backend_find(o.type);
	struct vnet *n = calloc(1, sizeof(*n));
	if (!n)
		return -1;
	pthread_mutex_init(&n->rx_lock, NULL);
	n->opts = o;
	for (unsigned i = 0; i < VNET_RX_SPAN_MAX; i++) {
		n->held[i] = malloc(sizeof(*n->held[i]));
		if (!n->held[i]) {
			log_error("virtio-net: out of memory");
			goto fail;
		}
	}
	memcpy(n->config.mac, o.has_mac ? o.mac : vnet_default_mac, NET_MAC_LEN);
	n->config.status = VIRTIO_NET_S_LINK_UP; /* x86: little-endian already */
	n->config.max_virtqueue_pairs = 1;
	n->dev = virtio_dev_create(vm, &vnet_ops, n, &n->config);
	if (!n->dev)
		goto fail;
	n->be = bops->open(&n->opts, vnet_rx, n);
	if (!n->be)
		goto fail;
	if (device_add(vm, &vnet_device, n) < 0)
		goto fail;
	stats_register("net", vnet_stats, n);
	log_debug("virtio-net: --net %s, path %s", o.type, n->be->path);
	return 0;
fail:
	vnet_free(n);
	return -1;
}

static void vnet_stop(void *instance)
{
	struct vnet *n = instance;
	if (n->be->ops->stop)
		n->be->ops->stop(n->be); /* no rx from here on */
	virtio_dev_stop(n->dev);
}

static void vnet_destroy(void *instance)
{
	vnet_free(instance);
}

static const struct device_ops vnet_device = {
	.name = "virtio-net",
	.order = DEVICE_ORDER_VIRTIO,
	.create = vnet_create,
	.stop = vnet_stop,
	.destroy = vnet_destroy,
};

DEVICE_REGISTER(vnet_device)
