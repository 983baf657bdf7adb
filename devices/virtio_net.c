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
 * The data path is devices/virtio/net_queues.c. Transmit: the device's
 * I/O thread pops a chain, copies the frame after the header into one
 * buffer and hands it to the backend, which sends or queues it (bounded)
 * or drops it: nothing grows with the guest's rate, and a flooding guest
 * busies only this device's I/O thread. Receive: the backend's thread
 * hands each frame over; it waits in a bounded backlog until the guest's
 * receive buffers can hold it. The I/O thread drains the backlog too when
 * the guest adds buffers.
 */
#include "devices/device.h"
#include "devices/virtio/net_queues.h"
#include "devices/virtio/virtio.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/stats.h"
#include "net/backend.h"
#include "vmm/vm.h"

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

/* QEMU's default MAC: locally administered (bit 1 of byte 0), stable. */
static const uint8_t vnet_default_mac[NET_MAC_LEN] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

/* 5.1.4 struct virtio_net_config, up to max_virtqueue_pairs. */
struct vnet_config {
	uint8_t mac[NET_MAC_LEN];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
} __attribute__((packed));
_Static_assert(sizeof(struct vnet_config) == 10, "virtio_net_config layout (5.1.4)");

struct vnet {
	struct virtio_dev *dev;
	struct vnet_config config;
	struct net_options opts;
	struct net_backend *be;
	struct net_queues q;
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

/* A frame from the backend (its thread). */
static void vnet_rx(void *opaque, const void *frame, size_t len)
{
	struct vnet *n = opaque;
	net_rx_frame(&n->q, virtio_dev_queue(n->dev, VNET_RX_QUEUE), frame, len);
}

static int vnet_send(void *opaque, const void *frame, size_t len)
{
	struct vnet *n = opaque;
	return n->be->ops->send(n->be, frame, len);
}

static void vnet_handle_queue(struct virtio_dev *dev, struct virtq *vq)
{
	struct vnet *n = virtio_dev_opaque(dev);
	if (vq->index == VNET_TX_QUEUE)
		net_tx(&n->q, vq);
	else /* new receive buffers: frames may be waiting for them */
		net_rx_drain(&n->q, vq);
}

static void vnet_activate(struct virtio_dev *dev)
{
	struct vnet *n = virtio_dev_opaque(dev);
	net_queues_activate(&n->q, virtio_dev_features(dev) & (1ULL << VIRTIO_NET_F_MRG_RXBUF),
			    virtio_dev_queue(dev, VNET_RX_QUEUE)->num);
}

static void vnet_reset(struct virtio_dev *dev)
{
	struct vnet *n = virtio_dev_opaque(dev);
	net_queues_reset(&n->q);
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
	json_object_set_new(o, "rx_packets", json_integer((json_int_t)n->q.rx_packets));
	json_object_set_new(o, "rx_bytes", json_integer((json_int_t)n->q.rx_bytes));
	json_object_set_new(o, "rx_dropped", json_integer((json_int_t)n->q.rx_dropped));
	json_object_set_new(o, "rx_bad_buffers", json_integer((json_int_t)n->q.rx_bad_buffers));
	json_object_set_new(o, "tx_packets", json_integer((json_int_t)n->q.tx_packets));
	json_object_set_new(o, "tx_bytes", json_integer((json_int_t)n->q.tx_bytes));
	json_object_set_new(o, "tx_dropped", json_integer((json_int_t)n->q.tx_dropped));
	json_object_set_new(o, "tx_bad", json_integer((json_int_t)n->q.tx_bad));
	if (n->be && n->be->ops->stats)
		n->be->ops->stats(n->be, o);
}

static void vnet_free(struct vnet *n)
{
	stats_unregister(n);
	virtio_dev_stop(n->dev); /* no more sends to the backend */
	if (n->be)
		n->be->ops->close(n->be); /* no rx into the queues after this */
	virtio_dev_destroy(n->dev);
	net_queues_destroy(&n->q);
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
	n->opts = o;
	if (net_queues_init(&n->q, vnet_send, n) < 0) {
		log_error("virtio-net: out of memory");
		goto fail;
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
