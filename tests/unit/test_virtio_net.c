/* The virtio-net device (devices/virtio_net.c) over a fake VM, guest memory
 * and a fake backend registered as `--net fake`: the config space and the
 * features, a transmitted frame reaching the backend, received frames
 * written into one or several (mergeable) buffers, and hostile chains
 * dropped and counted without harm. Values restated from virtio 1.2 5.1. */
#include "tests/unit/unit.h"
#include "tests/unit/test_vm_fake.h"
#include "lib/cli.h"
#include "net/backend.h"

#include <stdlib.h>

#define NET_ID 1              /* 5 "Device Types" */
#define F_MAC 5               /* 5.1.3 */
#define F_MRG_RXBUF 15
#define F_STATUS 16
#define S_LINK_UP 1           /* 5.1.4 */
#define HDR 12                /* 5.1.6 virtio_net_hdr with VERSION_1 */
#define RXQ 0
#define TXQ 1
#define RING 8
/* The transmit ring's parts (the receive ring is at FAKE_DESC/AVAIL/USED). */
#define TX_DESC 0x4000ULL
#define TX_AVAIL 0x5000ULL
#define TX_USED 0x6000ULL
#define BUF 0x20000ULL        /* guest buffers from here */

/* The fake backend: remembers what the device sent, hands frames in. */
static struct {
	struct net_backend base;
	net_rx_fn rx;
	void *rx_opaque;
	int sent;
	size_t last_len;
	uint8_t last[2048];
	bool refuse;
} fnet;

static struct net_backend *fnet_open(const struct net_options *o, net_rx_fn rx, void *op)
{
	(void)o;
	fnet.rx = rx;
	fnet.rx_opaque = op;
	fnet.sent = 0;
	fnet.refuse = false;
	fnet.base.path = "fake";
	return &fnet.base;
}

static int fnet_send(struct net_backend *be, const void *frame, size_t len)
{
	(void)be;
	if (fnet.refuse)
		return -1;
	fnet.sent++;
	fnet.last_len = len;
	memcpy(fnet.last, frame, len < sizeof(fnet.last) ? len : sizeof(fnet.last));
	return 0;
}

static void fnet_close(struct net_backend *be)
{
	(void)be;
	fnet.rx = NULL;
}

static const struct net_backend_ops fnet_ops = {
	.name = "fake", .open = fnet_open, .send = fnet_send, .close = fnet_close,
};
NET_BACKEND_REGISTER(fnet_ops)

struct nt {
	struct fake_vm v;
	struct config cfg;
	uint64_t base;
	uint16_t tx_avail;
};

static void nt_init(struct nt *t, const char *spec)
{
	memset(&t->cfg, 0, sizeof(t->cfg));
	t->cfg.command = "run";
	ck_assert_int_eq(config_add(&t->cfg, "net", spec), 0);
	fnet.base.ops = &fnet_ops;
	fake_vm_init(&t->v, &t->cfg, RING);
	ck_assert_int_eq(device_create(&t->v.vm, "virtio-net"), 0);
	ck_assert_ptr_nonnull(t->v.vm.devices);
	t->base = fake_vm_window(&t->v, 0);
	t->tx_avail = 0;
}

static void nt_free(struct nt *t)
{
	fake_vm_free(&t->v);
	ck_assert_ptr_null(t->v.vm.devices);
	ck_assert_ptr_null(fnet.rx); /* the backend was closed */
	config_free(&t->cfg);
}

static void queue_at(struct nt *t, uint32_t q, uint64_t desc, uint64_t avail, uint64_t used)
{
	reg_wr(&t->v, t->base, REG_QUEUE_SEL, q);
	reg_wr(&t->v, t->base, REG_QUEUE_NUM, RING);
	reg_wr(&t->v, t->base, REG_QUEUE_DESC_LOW, (uint32_t)desc);
	reg_wr(&t->v, t->base, REG_QUEUE_DESC_HIGH, 0);
	reg_wr(&t->v, t->base, REG_QUEUE_DRIVER_LOW, (uint32_t)avail);
	reg_wr(&t->v, t->base, REG_QUEUE_DRIVER_HIGH, 0);
	reg_wr(&t->v, t->base, REG_QUEUE_DEVICE_LOW, (uint32_t)used);
	reg_wr(&t->v, t->base, REG_QUEUE_DEVICE_HIGH, 0);
	reg_wr(&t->v, t->base, REG_QUEUE_READY, 1);
	ck_assert_uint_eq(reg_rd(&t->v, t->base, REG_QUEUE_READY), 1);
}

/* Negotiate features, both queues, DRIVER_OK. */
static void nt_up(struct nt *t, uint64_t features)
{
	uint32_t st = driver_negotiate(&t->v, t->base, features);
	ck_assert(st & VIRTIO_STATUS_FEATURES_OK);
	queue_at(t, RXQ, FAKE_DESC, FAKE_AVAIL, FAKE_USED);
	queue_at(t, TXQ, TX_DESC, TX_AVAIL, TX_USED);
	driver_ok(&t->v, t->base);
}

static void tx_publish(struct nt *t, uint16_t head)
{
	uint16_t *avail = fake_host(&t->v.f, TX_AVAIL);
	avail[2 + t->tx_avail % RING] = head;
	t->tx_avail++;
	__atomic_store_n(&avail[1], t->tx_avail, __ATOMIC_RELEASE);
	reg_wr(&t->v, t->base, REG_QUEUE_NOTIFY, TXQ);
}

static uint16_t tx_used_idx(struct nt *t)
{
	return __atomic_load_n((uint16_t *)fake_host(&t->v.f, TX_USED + 2), __ATOMIC_ACQUIRE);
}

static uint16_t tx_wait_used(struct nt *t, uint16_t want)
{
	for (int ms = 0; ms < FAKE_WAIT_MS && tx_used_idx(t) != want; ms++)
		usleep(1000);
	return tx_used_idx(t);
}

/* A receive chain of one writable descriptor at slot i. */
static void rx_buffer(struct nt *t, uint16_t i, uint64_t gpa, uint32_t len)
{
	memset(fake_host(&t->v.f, gpa), 0xee, len);
	fake_desc(&t->v.f, i, gpa, len, VIRTQ_DESC_F_WRITE, 0);
	fake_publish(&t->v.f, i);
}

static uint64_t stat(const char *key)
{
	json_t *root = json_object();
	stats_fill_all(root);
	json_t *net = json_object_get(root, "net");
	ck_assert_ptr_nonnull(net);
	json_t *v = json_object_get(net, key);
	ck_assert_msg(v != NULL, "no net.%s", key);
	uint64_t x = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
	json_decref(root);
	return x;
}

static bool needs_reset(struct nt *t)
{
	return reg_rd(&t->v, t->base, REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

static void frame_fill(uint8_t *f, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		f[i] = (uint8_t)(seed + i * 7);
}

START_TEST(net_config_and_features)
{
	struct nt t;
	nt_init(&t, "fake");
	ck_assert_uint_eq(reg_rd(&t.v, t.base, REG_DEVICE_ID), NET_ID);
	reg_wr(&t.v, t.base, REG_DEVICE_FEATURES_SEL, 0);
	uint32_t lo = reg_rd(&t.v, t.base, REG_DEVICE_FEATURES);
	reg_wr(&t.v, t.base, REG_DEVICE_FEATURES_SEL, 1);
	uint32_t hi = reg_rd(&t.v, t.base, REG_DEVICE_FEATURES);
	ck_assert(lo & (1u << F_MAC));
	ck_assert(lo & (1u << F_MRG_RXBUF));
	ck_assert(lo & (1u << F_STATUS));
	ck_assert(hi & 1u); /* VERSION_1 */
	/* No offloads: CSUM (0), GUEST_CSUM (1), GUEST_TSO4 (7), HOST_TSO4 (11). */
	ck_assert(!(lo & ((1u << 0) | (1u << 1) | (1u << 7) | (1u << 11))));
	/* QEMU's default MAC, link up. */
	uint32_t w0 = reg_rd(&t.v, t.base, REG_CONFIG), w1 = reg_rd(&t.v, t.base, REG_CONFIG + 4);
	uint8_t mac[6];
	memcpy(mac, &w0, 4);
	memcpy(mac + 4, &w1, 2);
	const uint8_t def[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	ck_assert_mem_eq(mac, def, 6);
	ck_assert_uint_eq(w1 >> 16, S_LINK_UP);
	for (uint32_t q = 0; q < 2; q++) {
		reg_wr(&t.v, t.base, REG_QUEUE_SEL, q);
		ck_assert_uint_eq(reg_rd(&t.v, t.base, REG_QUEUE_NUM_MAX), 256);
	}
	reg_wr(&t.v, t.base, REG_QUEUE_SEL, 2); /* no control queue */
	ck_assert_uint_eq(reg_rd(&t.v, t.base, REG_QUEUE_NUM_MAX), 0);
	/* A driver asking for an offload that was not offered is refused. */
	ck_assert(!(driver_negotiate(&t.v, t.base, (1ULL << VIRTIO_F_VERSION_1) | 1) &
		    VIRTIO_STATUS_FEATURES_OK));
	ck_assert(driver_negotiate(&t.v, t.base, (1ULL << VIRTIO_F_VERSION_1) |
						     (1ULL << F_MAC) | (1ULL << F_MRG_RXBUF)) &
		  VIRTIO_STATUS_FEATURES_OK);
	nt_free(&t);
}
END_TEST

START_TEST(net_config_mac_option)
{
	struct nt t;
	nt_init(&t, "fake,mac=52:54:00:ab:cd:EF");
	uint32_t w0 = reg_rd(&t.v, t.base, REG_CONFIG), w1 = reg_rd(&t.v, t.base, REG_CONFIG + 4);
	ck_assert_uint_eq(w0, 0xab005452u);
	ck_assert_uint_eq(w1 & 0xffff, 0xefcd);
	nt_free(&t);
}
END_TEST

START_TEST(net_tx_reaches_backend)
{
	struct nt t;
	nt_init(&t, "fake");
	nt_up(&t, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << F_MRG_RXBUF));
	/* Header in one descriptor, the frame over two more. */
	uint8_t frame[300];
	frame_fill(frame, sizeof(frame), 1);
	memset(fake_host(&t.v.f, BUF), 0, HDR);
	memcpy(fake_host(&t.v.f, BUF + 0x1000), frame, 100);
	memcpy(fake_host(&t.v.f, BUF + 0x2000), frame + 100, 200);
	fake_desc_at(&t.v.f, TX_DESC, 0, BUF, HDR, VIRTQ_DESC_F_NEXT, 1);
	fake_desc_at(&t.v.f, TX_DESC, 1, BUF + 0x1000, 100, VIRTQ_DESC_F_NEXT, 2);
	fake_desc_at(&t.v.f, TX_DESC, 2, BUF + 0x2000, 200, 0, 0);
	tx_publish(&t, 0);
	ck_assert_uint_eq(tx_wait_used(&t, 1), 1);
	ck_assert_int_eq(fnet.sent, 1);
	ck_assert_uint_eq(fnet.last_len, sizeof(frame));
	ck_assert_mem_eq(fnet.last, frame, sizeof(frame));
	struct virtq_used_elem e;
	memcpy(&e, fake_host(&t.v.f, TX_USED + 4), sizeof(e));
	ck_assert_uint_eq(e.id, 0);
	ck_assert_uint_eq(e.len, 0);
	ck_assert_uint_eq(stat("tx_packets"), 1);
	ck_assert_uint_eq(stat("tx_bytes"), sizeof(frame));
	/* Header and frame in one descriptor; the backend refuses: dropped. */
	fnet.refuse = true;
	fake_desc_at(&t.v.f, TX_DESC, 3, BUF, HDR + 64, 0, 0);
	tx_publish(&t, 3);
	ck_assert_uint_eq(tx_wait_used(&t, 2), 2);
	ck_assert_uint_eq(stat("tx_dropped"), 1);
	ck_assert_uint_eq(stat("tx_packets"), 1);
	ck_assert(!needs_reset(&t));
	nt_free(&t);
}
END_TEST

START_TEST(net_tx_hostile)
{
	struct nt t;
	nt_init(&t, "fake");
	nt_up(&t, 1ULL << VIRTIO_F_VERSION_1);
	/* Shorter than the header: dropped, counted, given back. */
	fake_desc_at(&t.v.f, TX_DESC, 0, BUF, HDR - 4, 0, 0);
	tx_publish(&t, 0);
	/* Writable only: no frame at all. */
	fake_desc_at(&t.v.f, TX_DESC, 1, BUF, 256, VIRTQ_DESC_F_WRITE, 0);
	tx_publish(&t, 1);
	/* Longer than any frame (in RAM): dropped. */
	fake_desc_at(&t.v.f, TX_DESC, 2, BUF, 512 * 1024, 0, 0);
	tx_publish(&t, 2);
	ck_assert_uint_eq(tx_wait_used(&t, 3), 3);
	ck_assert_int_eq(fnet.sent, 0);
	ck_assert_uint_eq(stat("tx_bad"), 3);
	ck_assert_uint_eq(stat("tx_dropped"), 3);
	ck_assert(!needs_reset(&t));
	/* A buffer outside RAM: the queue code refuses the chain, the device
	 * needs a reset, nothing reaches the backend. */
	fake_desc_at(&t.v.f, TX_DESC, 3, FAKE_RAM - 16, 4096, 0, 0);
	tx_publish(&t, 3);
	ck_assert_uint_eq(tx_wait_used(&t, 4), 4);
	for (int ms = 0; ms < FAKE_WAIT_MS && !needs_reset(&t); ms++)
		usleep(1000);
	ck_assert(needs_reset(&t));
	ck_assert_int_eq(fnet.sent, 0);
	nt_free(&t);
}
END_TEST

START_TEST(net_tx_loop_needs_reset)
{
	struct nt t;
	nt_init(&t, "fake");
	nt_up(&t, 1ULL << VIRTIO_F_VERSION_1);
	fake_desc_at(&t.v.f, TX_DESC, 0, BUF, HDR, VIRTQ_DESC_F_NEXT, 1);
	fake_desc_at(&t.v.f, TX_DESC, 1, BUF, 64, VIRTQ_DESC_F_NEXT, 0);
	tx_publish(&t, 0);
	ck_assert_uint_eq(tx_wait_used(&t, 1), 1);
	for (int ms = 0; ms < FAKE_WAIT_MS && !needs_reset(&t); ms++)
		usleep(1000);
	ck_assert(needs_reset(&t));
	ck_assert_int_eq(fnet.sent, 0);
	/* After a reset (over fresh rings) the device works again. */
	memset(fake_host(&t.v.f, TX_USED), 0, 4 + 8 * RING + 2);
	memset(fake_host(&t.v.f, TX_AVAIL), 0, 4 + 2 * RING + 2);
	t.tx_avail = 0;
	nt_up(&t, 1ULL << VIRTIO_F_VERSION_1);
	ck_assert(!needs_reset(&t));
	fake_desc_at(&t.v.f, TX_DESC, 0, BUF, HDR + 60, 0, 0);
	tx_publish(&t, 0);
	ck_assert_uint_eq(tx_wait_used(&t, 1), 1);
	ck_assert_int_eq(fnet.sent, 1);
	nt_free(&t);
}
END_TEST

START_TEST(net_rx_mergeable_spans_buffers)
{
	struct nt t;
	nt_init(&t, "fake");
	nt_up(&t, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << F_MRG_RXBUF));
	for (uint16_t i = 0; i < 3; i++)
		rx_buffer(&t, i, BUF + 0x1000ULL * i, 600);
	uint8_t frame[1400];
	frame_fill(frame, sizeof(frame), 9);
	fnet.rx(fnet.rx_opaque, frame, sizeof(frame));
	/* 12 + 1400 = 1412 bytes: 600 + 600 + 212. */
	ck_assert_uint_eq(fake_used_idx(&t.v.f), 3);
	const uint32_t lens[3] = {600, 600, 212};
	for (uint16_t i = 0; i < 3; i++) {
		struct virtq_used_elem e = fake_used(&t.v.f, i);
		ck_assert_uint_eq(e.id, i);
		ck_assert_uint_eq(e.len, lens[i]);
	}
	uint8_t *b0 = fake_host(&t.v.f, BUF);
	uint16_t num_buffers;
	memcpy(&num_buffers, b0 + 10, 2);
	ck_assert_uint_eq(num_buffers, 3);
	ck_assert_uint_eq(b0[0], 0); /* flags */
	ck_assert_uint_eq(b0[1], 0); /* gso_type NONE */
	ck_assert_mem_eq(b0 + HDR, frame, 600 - HDR);
	ck_assert_mem_eq(fake_host(&t.v.f, BUF + 0x1000), frame + 588, 600);
	ck_assert_mem_eq(fake_host(&t.v.f, BUF + 0x2000), frame + 1188, 212);
	ck_assert_uint_eq(*(uint8_t *)fake_host(&t.v.f, BUF + 0x2000 + 212), 0xee);
	ck_assert(fake_vm_wait_irq(&t.v) >= 1);
	ck_assert_uint_eq(stat("rx_packets"), 1);
	ck_assert_uint_eq(stat("rx_bytes"), sizeof(frame));
	nt_free(&t);
}
END_TEST

START_TEST(net_rx_waits_for_buffers)
{
	struct nt t;
	nt_init(&t, "fake");
	/* Before DRIVER_OK: dropped. */
	uint8_t frame[60];
	frame_fill(frame, sizeof(frame), 3);
	fnet.rx(fnet.rx_opaque, frame, sizeof(frame));
	ck_assert_uint_eq(stat("rx_dropped"), 1);
	nt_up(&t, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << F_MRG_RXBUF));
	/* No buffers yet: the frame waits in the backlog... */
	fnet.rx(fnet.rx_opaque, frame, sizeof(frame));
	ck_assert_uint_eq(fake_used_idx(&t.v.f), 0);
	/* ...until the guest adds one and notifies. */
	rx_buffer(&t, 0, BUF, 2048);
	reg_wr(&t.v, t.base, REG_QUEUE_NOTIFY, RXQ);
	ck_assert_uint_eq(fake_vm_wait_used(&t.v, 1), 1);
	ck_assert_uint_eq(fake_used(&t.v.f, 0).len, HDR + sizeof(frame));
	ck_assert_mem_eq(fake_host(&t.v.f, BUF + HDR), frame, sizeof(frame));
	ck_assert_uint_eq(stat("rx_packets"), 1);
	/* The backlog is bounded: a guest that never reads loses frames. */
	for (int i = 0; i < 1000; i++)
		fnet.rx(fnet.rx_opaque, frame, sizeof(frame));
	ck_assert_uint_ge(stat("rx_dropped"), 1000 - 256 + 1);
	nt_free(&t);
}
END_TEST

START_TEST(net_rx_without_mergeable)
{
	struct nt t;
	nt_init(&t, "fake");
	nt_up(&t, 1ULL << VIRTIO_F_VERSION_1);
	uint8_t frame[1000];
	frame_fill(frame, sizeof(frame), 5);
	/* One buffer too small: given back empty, the frame dropped. */
	rx_buffer(&t, 0, BUF, 500);
	fnet.rx(fnet.rx_opaque, frame, sizeof(frame));
	ck_assert_uint_eq(fake_used_idx(&t.v.f), 1);
	ck_assert_uint_eq(fake_used(&t.v.f, 0).len, 0);
	ck_assert_uint_eq(stat("rx_dropped"), 1);
	/* One large enough: num_buffers is 1. */
	rx_buffer(&t, 1, BUF + 0x1000, 2048);
	fnet.rx(fnet.rx_opaque, frame, sizeof(frame));
	ck_assert_uint_eq(fake_used_idx(&t.v.f), 2);
	ck_assert_uint_eq(fake_used(&t.v.f, 1).len, HDR + sizeof(frame));
	uint16_t nb;
	memcpy(&nb, fake_host(&t.v.f, BUF + 0x1000 + 10), 2);
	ck_assert_uint_eq(nb, 1);
	ck_assert_mem_eq(fake_host(&t.v.f, BUF + 0x1000 + HDR), frame, sizeof(frame));
	nt_free(&t);
}
END_TEST

START_TEST(net_rx_hostile_buffers)
{
	struct nt t;
	nt_init(&t, "fake");
	nt_up(&t, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << F_MRG_RXBUF));
	uint8_t frame[100];
	frame_fill(frame, sizeof(frame), 7);
	/* Read-only, then too short for the header: both back unused. */
	fake_desc(&t.v.f, 0, BUF, 2048, 0, 0);
	fake_publish(&t.v.f, 0);
	rx_buffer(&t, 1, BUF + 0x1000, HDR - 1);
	rx_buffer(&t, 2, BUF + 0x2000, 2048);
	fnet.rx(fnet.rx_opaque, frame, sizeof(frame));
	ck_assert_uint_eq(fake_used_idx(&t.v.f), 3);
	ck_assert_uint_eq(fake_used(&t.v.f, 0).len, 0);
	ck_assert_uint_eq(fake_used(&t.v.f, 1).len, 0);
	ck_assert_uint_eq(fake_used(&t.v.f, 2).id, 2);
	ck_assert_uint_eq(fake_used(&t.v.f, 2).len, HDR + sizeof(frame));
	ck_assert_uint_eq(*(uint8_t *)fake_host(&t.v.f, BUF + 0x1000), 0xee);
	ck_assert_uint_eq(stat("rx_bad_buffers"), 2);
	ck_assert_uint_eq(stat("rx_packets"), 1);
	/* Eight 16-byte buffers (the whole ring) cannot hold 1000 bytes:
	 * all back empty, the frame dropped, the ring not held forever. */
	uint8_t big[1000];
	frame_fill(big, sizeof(big), 1);
	for (uint16_t i = 0; i < RING; i++) {
		uint16_t slot = (uint16_t)(3 + i) % RING;
		fake_desc(&t.v.f, slot, BUF + 0x3000 + 16ULL * i, 16, VIRTQ_DESC_F_WRITE, 0);
		fake_publish(&t.v.f, slot);
	}
	fnet.rx(fnet.rx_opaque, big, sizeof(big));
	ck_assert_uint_eq(fake_used_idx(&t.v.f), 3 + RING);
	for (uint16_t i = 3; i < 3 + RING; i++)
		ck_assert_uint_eq(fake_used(&t.v.f, i).len, 0);
	ck_assert_uint_eq(stat("rx_dropped"), 1);
	/* A loop in a receive chain: the queue is refused. */
	uint16_t s = fake_used_idx(&t.v.f) % RING;
	fake_desc(&t.v.f, s, BUF, 64, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, s);
	fake_publish(&t.v.f, s);
	fnet.rx(fnet.rx_opaque, frame, sizeof(frame));
	ck_assert(needs_reset(&t));
	/* An absurd frame from the backend is refused before any copy. */
	fnet.rx(fnet.rx_opaque, big, NET_MAX_FRAME + 1);
	nt_free(&t);
}
END_TEST

START_TEST(net_stats_keys)
{
	struct nt t;
	nt_init(&t, "fake");
	json_t *root = json_object();
	stats_fill_all(root);
	json_t *net = json_object_get(root, "net");
	ck_assert_ptr_nonnull(net);
	ck_assert_str_eq(json_string_value(json_object_get(net, "backend")), "fake");
	ck_assert_str_eq(json_string_value(json_object_get(net, "path")), "fake");
	ck_assert_str_eq(json_string_value(json_object_get(net, "mac")), "52:54:00:12:34:56");
	json_decref(root);
	nt_free(&t);
}
END_TEST

START_TEST(net_none_makes_no_device)
{
	struct config cfg = {0};
	cfg.command = "run";
	ck_assert_int_eq(config_add(&cfg, "net", "none"), 0);
	struct fake_vm v;
	fake_vm_init(&v, &cfg, RING);
	ck_assert_int_eq(device_create(&v.vm, "virtio-net"), 0);
	ck_assert_ptr_null(v.vm.devices);
	fake_vm_free(&v);
	config_free(&cfg);
}
END_TEST


/* The device with the real user-mode backend: the guest's ARP request for
 * the gateway goes out on the transmit queue and slirp's reply comes back
 * into a receive buffer, through slirp's thread. */
START_TEST(net_user_backend_end_to_end)
{
	struct nt t;
	nt_init(&t, "user");
	nt_up(&t, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << F_MRG_RXBUF));
	for (uint16_t i = 0; i < 4; i++)
		rx_buffer(&t, i, BUF + 0x1000ULL * i, 2048);
	reg_wr(&t.v, t.base, REG_QUEUE_NOTIFY, RXQ);
	/* RFC 826 request: who has 10.0.2.2, tell 10.0.2.15. */
	uint8_t *p = fake_host(&t.v.f, BUF + 0x8000);
	memset(p, 0, HDR + 60);
	uint8_t *f = p + HDR;
	const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	memcpy(f + 12, "\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01", 10);
	memcpy(f + 22, mac, 6);
	memcpy(f + 28, "\x0a\x00\x02\x0f", 4);
	memcpy(f + 38, "\x0a\x00\x02\x02", 4);
	fake_desc_at(&t.v.f, TX_DESC, 0, BUF + 0x8000, HDR + 60, 0, 0);
	tx_publish(&t, 0);
	ck_assert_uint_eq(tx_wait_used(&t, 1), 1);
	ck_assert_uint_ge(fake_vm_wait_used(&t.v, 1), 1);
	struct virtq_used_elem e = fake_used(&t.v.f, 0);
	ck_assert_uint_ge(e.len, HDR + 42);
	const uint8_t *r = fake_host(&t.v.f, BUF + 0x1000ULL * e.id) + HDR;
	ck_assert_mem_eq(r, mac, 6);                       /* to the guest */
	ck_assert_mem_eq(r + 12, "\x08\x06", 2);           /* ARP */
	ck_assert_mem_eq(r + 20, "\x00\x02", 2);           /* reply */
	ck_assert_mem_eq(r + 28, "\x0a\x00\x02\x02", 4); /* from the gateway */
	ck_assert_uint_eq(stat("tx_packets"), 1);
	ck_assert_uint_ge(stat("rx_packets"), 1);
	nt_free(&t);
}
END_TEST

static Suite *virtio_net_suite(void)
{
	Suite *s = suite_create("virtio_net");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, net_config_and_features);
	tcase_add_test(tc, net_config_mac_option);
	tcase_add_test(tc, net_tx_reaches_backend);
	tcase_add_test(tc, net_tx_hostile);
	tcase_add_test(tc, net_tx_loop_needs_reset);
	tcase_add_test(tc, net_rx_mergeable_spans_buffers);
	tcase_add_test(tc, net_rx_waits_for_buffers);
	tcase_add_test(tc, net_rx_without_mergeable);
	tcase_add_test(tc, net_rx_hostile_buffers);
	tcase_add_test(tc, net_stats_keys);
	tcase_add_test(tc, net_none_makes_no_device);
	tcase_add_test(tc, net_user_backend_end_to_end);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(virtio_net_suite)
