/* The virtio-mmio transport (devices/virtio/mmio.c) over a fake VM: the
 * register protocol a driver sees (virtio 1.2, 4.2.2-4.2.3), feature
 * negotiation, queue setup and its bounds, reset, notifications and
 * interrupts, without /dev/kvm. */
#include "tests/unit/unit.h"
#include "tests/unit/test_vm_fake.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define TDEV_ID 9999
#define TDEV_FEATURE 3
#define TDEV_QUEUES 2
#define TDEV_QUEUE_MAX 8
#define TDEV_QUEUE 1 /* the queue the tests lay out */

struct tdev {
	uint8_t config[8];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int handled, last_queue, resets, chains;
	struct virtq_chain chain;
};

static void tdev_handle(struct virtio_dev *dev, struct virtq *vq)
{
	struct tdev *t = virtio_dev_opaque(dev);
	pthread_mutex_lock(&t->lock);
	while (virtq_pop(vq, &t->chain) > 0) {
		virtq_push(vq, &t->chain, 1);
		virtq_notify(vq);
		t->chains++;
	}
	t->handled++;
	t->last_queue = vq->index;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void tdev_reset(struct virtio_dev *dev)
{
	struct tdev *t = virtio_dev_opaque(dev);
	t->resets++;
}

static const struct virtio_dev_ops tdev_ops = {
	.name = "test-dev",
	.device_id = TDEV_ID,
	.features = 1ULL << TDEV_FEATURE,
	.config_size = sizeof(((struct tdev *)0)->config),
	.num_queues = TDEV_QUEUES,
	.queue_max_size = TDEV_QUEUE_MAX,
	.handle_queue = tdev_handle,
	.reset = tdev_reset,
};

struct mt {
	struct fake_vm v;
	struct tdev t;
	struct virtio_dev *dev;
	uint64_t base;
};

static void mt_init(struct mt *m)
{
	fake_vm_init(&m->v, NULL, TDEV_QUEUE_MAX);
	memset(&m->t, 0, sizeof(m->t));
	pthread_mutex_init(&m->t.lock, NULL);
	pthread_cond_init(&m->t.cond, NULL);
	memcpy(m->t.config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	m->dev = virtio_dev_create(&m->v.vm, &tdev_ops, &m->t, m->t.config);
	ck_assert_ptr_nonnull(m->dev);
	m->base = fake_vm_window(&m->v, 0);
}

static void mt_free(struct mt *m)
{
	virtio_dev_destroy(m->dev);
	fake_vm_free(&m->v);
}

/* Wait until *counter (handle_queue calls or chains served) reaches n;
 * false on timeout. Two kicks may be read as one: wait on chains where
 * there are some. */
static bool wait_for(struct tdev *t, const int *counter, int n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += FAKE_WAIT_MS / 1000;
	pthread_mutex_lock(&t->lock);
	int rc = 0;
	while (*counter < n && rc == 0)
		rc = pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	bool ok = *counter >= n;
	pthread_mutex_unlock(&t->lock);
	return ok;
}

static bool wait_handled(struct tdev *t, int n) { return wait_for(t, &t->handled, n); }
static bool wait_chains(struct tdev *t, int n) { return wait_for(t, &t->chains, n); }

static uint64_t version_1 = 1ULL << VIRTIO_F_VERSION_1;

/* A driver brings the device up with queue TDEV_QUEUE over the fake ring. */
static void mt_up(struct mt *m)
{
	uint32_t st = driver_negotiate(&m->v, m->base, version_1);
	ck_assert(st & VIRTIO_STATUS_FEATURES_OK);
	driver_queue(&m->v, m->base, TDEV_QUEUE, TDEV_QUEUE_MAX);
	ck_assert_uint_eq(reg_rd(&m->v, m->base, REG_QUEUE_READY), 1);
	driver_ok(&m->v, m->base);
}

START_TEST(mmio_identity_and_wiring)
{
	struct mt m;
	mt_init(&m);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_MAGIC), 0x74726976); /* "virt" */
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_VERSION), 2);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_DEVICE_ID), TDEV_ID);
	ck_assert_uint_ne(reg_rd(&m.v, m.base, REG_VENDOR_ID), 0);
	/* Config space, as bytes and as a word. */
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_CONFIG), 0x44332211);
	uint8_t b = 0;
	ck_assert(bus_dispatch(&m.v.vm.mmio, m.base + REG_CONFIG + 5, &b, 1, false));
	ck_assert_uint_eq(b, 0x66);
	/* No config_write: a driver's write changes nothing. */
	reg_wr(&m.v, m.base, REG_CONFIG, 0);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_CONFIG), 0x44332211);
	/* QueueNumMax per queue; none past the last queue. */
	reg_wr(&m.v, m.base, REG_QUEUE_SEL, 1);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_QUEUE_NUM_MAX), TDEV_QUEUE_MAX);
	reg_wr(&m.v, m.base, REG_QUEUE_SEL, TDEV_QUEUES);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_QUEUE_NUM_MAX), 0);
	/* Wiring: an ioeventfd per queue on QueueNotify matching its index,
	 * an irqfd on the DSDT's line, an edge-triggered ACPI entry. */
	ck_assert_int_eq(m.v.n_ioeventfds, TDEV_QUEUES);
	for (int i = 0; i < TDEV_QUEUES; i++) {
		ck_assert_uint_eq(m.v.ioeventfd_addr[i], m.base + REG_QUEUE_NOTIFY);
		ck_assert_uint_eq(m.v.ioeventfd_match[i], (uint64_t)i);
	}
	ck_assert_int_ge(m.v.irqfd, 0);
	ck_assert_uint_eq(m.v.irq_gsi, m.v.vm.platform[0].irq);
	ck_assert(m.v.vm.platform[0].irq_edge);
	ck_assert_str_eq(m.v.vm.platform[0].name, "VR00");
	/* Unaligned or narrow register writes are ignored (4.2.2). */
	uint16_t half = 1;
	ck_assert(bus_dispatch(&m.v.vm.mmio, m.base + REG_QUEUE_SEL, (uint8_t *)&half, 2, true));
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_QUEUE_NUM_MAX), 0);
	mt_free(&m);
}
END_TEST

START_TEST(mmio_second_device_gets_its_own_name_and_window)
{
	struct mt m;
	mt_init(&m);
	struct tdev t2 = {0};
	struct virtio_dev *d2 = virtio_dev_create(&m.v.vm, &tdev_ops, &t2, t2.config);
	ck_assert_ptr_nonnull(d2);
	uint64_t b2 = fake_vm_window(&m.v, 1);
	ck_assert_uint_ne(b2, m.base);
	ck_assert_str_eq(m.v.vm.platform[1].name, "VR01");
	ck_assert_uint_ne(m.v.vm.platform[1].irq, m.v.vm.platform[0].irq);
	const struct bus_range *r = bus_find(&m.v.vm.mmio, b2, 4);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->owner, "test-dev1");
	virtio_dev_destroy(d2);
	/* Gone from the bus: nothing answers at its window. */
	ck_assert_ptr_null(bus_find(&m.v.vm.mmio, b2, 4));
	mt_free(&m);
}
END_TEST

START_TEST(mmio_features)
{
	struct mt m;
	mt_init(&m);
	reg_wr(&m.v, m.base, REG_DEVICE_FEATURES_SEL, 0);
	uint32_t lo = reg_rd(&m.v, m.base, REG_DEVICE_FEATURES);
	ck_assert(lo & (1u << TDEV_FEATURE));
	ck_assert(lo & (1u << VIRTIO_F_INDIRECT_DESC));
	ck_assert(lo & (1u << VIRTIO_F_EVENT_IDX));
	reg_wr(&m.v, m.base, REG_DEVICE_FEATURES_SEL, 1);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_DEVICE_FEATURES), 1); /* VERSION_1 */
	reg_wr(&m.v, m.base, REG_DEVICE_FEATURES_SEL, 2);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_DEVICE_FEATURES), 0);
	/* A legacy driver (no VERSION_1): FEATURES_OK is refused (3.1.1). */
	uint32_t st = driver_negotiate(&m.v, m.base, 1ULL << TDEV_FEATURE);
	ck_assert(!(st & VIRTIO_STATUS_FEATURES_OK));
	ck_assert(st & VIRTIO_STATUS_DRIVER);
	/* A feature the device did not offer: refused too. */
	st = driver_negotiate(&m.v, m.base, version_1 | (1ULL << 4));
	ck_assert(!(st & VIRTIO_STATUS_FEATURES_OK));
	/* What it offered, with VERSION_1: kept. */
	st = driver_negotiate(&m.v, m.base, version_1 | (1ULL << TDEV_FEATURE));
	ck_assert(st & VIRTIO_STATUS_FEATURES_OK);
	mt_free(&m);
}
END_TEST

START_TEST(mmio_queue_bounds)
{
	struct mt m;
	mt_init(&m);
	ck_assert(driver_negotiate(&m.v, m.base, version_1) & VIRTIO_STATUS_FEATURES_OK);
	/* A size over QueueNumMax: the queue does not come up, the device
	 * needs a reset. */
	driver_queue(&m.v, m.base, TDEV_QUEUE, TDEV_QUEUE_MAX * 2);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_QUEUE_READY), 0);
	ck_assert(reg_rd(&m.v, m.base, REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);

	/* Reset clears it; a size that is not a power of 2 is refused. */
	ck_assert(driver_negotiate(&m.v, m.base, version_1) & VIRTIO_STATUS_FEATURES_OK);
	ck_assert(!(reg_rd(&m.v, m.base, REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
	driver_queue(&m.v, m.base, TDEV_QUEUE, 3);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_QUEUE_READY), 0);
	ck_assert(reg_rd(&m.v, m.base, REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);

	/* A ring outside guest RAM is refused. */
	ck_assert(driver_negotiate(&m.v, m.base, version_1) & VIRTIO_STATUS_FEATURES_OK);
	reg_wr(&m.v, m.base, REG_QUEUE_SEL, TDEV_QUEUE);
	reg_wr(&m.v, m.base, REG_QUEUE_NUM, TDEV_QUEUE_MAX);
	reg_wr(&m.v, m.base, REG_QUEUE_DESC_LOW, (uint32_t)(FAKE_RAM - 16));
	reg_wr(&m.v, m.base, REG_QUEUE_DRIVER_LOW, (uint32_t)FAKE_AVAIL);
	reg_wr(&m.v, m.base, REG_QUEUE_DEVICE_LOW, (uint32_t)FAKE_USED);
	reg_wr(&m.v, m.base, REG_QUEUE_READY, 1);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_QUEUE_READY), 0);
	ck_assert(reg_rd(&m.v, m.base, REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* ... and so is one whose high word puts it past 4 GiB. */
	ck_assert(driver_negotiate(&m.v, m.base, version_1) & VIRTIO_STATUS_FEATURES_OK);
	driver_queue(&m.v, m.base, TDEV_QUEUE, TDEV_QUEUE_MAX);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_QUEUE_READY), 1);
	reg_wr(&m.v, m.base, REG_QUEUE_READY, 0);
	reg_wr(&m.v, m.base, REG_QUEUE_DEVICE_HIGH, 1);
	reg_wr(&m.v, m.base, REG_QUEUE_READY, 1);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_QUEUE_READY), 0);

	/* A good queue; while it is live its layout cannot change (4.2.3.2). */
	ck_assert(driver_negotiate(&m.v, m.base, version_1) & VIRTIO_STATUS_FEATURES_OK);
	driver_queue(&m.v, m.base, TDEV_QUEUE, TDEV_QUEUE_MAX);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_QUEUE_READY), 1);
	ck_assert(!(reg_rd(&m.v, m.base, REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
	reg_wr(&m.v, m.base, REG_QUEUE_DESC_LOW, (uint32_t)(FAKE_RAM - 16));
	driver_ok(&m.v, m.base);
	fake_desc(&m.v.f, 0, FAKE_DATA, 16, 0, 0);
	fake_publish(&m.v.f, 0);
	reg_wr(&m.v, m.base, REG_QUEUE_NOTIFY, TDEV_QUEUE);
	ck_assert(wait_chains(&m.t, 1));
	ck_assert_int_eq(fake_used_idx(&m.v.f), 1);
	ck_assert(!(reg_rd(&m.v, m.base, REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
	mt_free(&m);
}
END_TEST

START_TEST(mmio_notify_and_interrupts)
{
	struct mt m;
	mt_init(&m);
	/* Before DRIVER_OK a notification is not handed to the device. */
	ck_assert(driver_negotiate(&m.v, m.base, version_1) & VIRTIO_STATUS_FEATURES_OK);
	driver_queue(&m.v, m.base, TDEV_QUEUE, TDEV_QUEUE_MAX);
	fake_desc(&m.v.f, 2, FAKE_DATA, 16, 0, 0);
	fake_publish(&m.v.f, 2);
	reg_wr(&m.v, m.base, REG_QUEUE_NOTIFY, TDEV_QUEUE);
	reg_wr(&m.v, m.base, REG_QUEUE_NOTIFY, 77); /* no such queue: ignored */
	usleep(100 * 1000); /* time enough for the I/O thread to (wrongly) serve it */
	ck_assert_int_eq(m.t.chains, 0);
	ck_assert_int_eq(fake_used_idx(&m.v.f), 0);
	/* DRIVER_OK: the device looks at every queue once, finds the chain. */
	driver_ok(&m.v, m.base);
	ck_assert_uint_ge(fake_vm_wait_irq(&m.v), 1);
	ck_assert_int_eq(fake_used_idx(&m.v.f), 1);
	ck_assert_uint_eq(fake_used(&m.v.f, 0).id, 2);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_INTERRUPT_STATUS), INT_VRING);
	reg_wr(&m.v, m.base, REG_INTERRUPT_ACK, INT_VRING);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_INTERRUPT_STATUS), 0);
	/* A notification on the queue: handled there, answered, interrupt. */
	fake_desc(&m.v.f, 5, FAKE_DATA, 16, 0, 0);
	fake_publish(&m.v.f, 5);
	reg_wr(&m.v, m.base, REG_QUEUE_NOTIFY, TDEV_QUEUE);
	ck_assert(wait_chains(&m.t, 2));
	ck_assert_int_eq(m.t.last_queue, TDEV_QUEUE);
	ck_assert_uint_ge(fake_vm_wait_irq(&m.v), 1);
	ck_assert_int_eq(fake_used_idx(&m.v.f), 2);
	ck_assert_uint_eq(fake_used(&m.v.f, 1).id, 5);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_INTERRUPT_STATUS) & INT_VRING, INT_VRING);
	reg_wr(&m.v, m.base, REG_INTERRUPT_ACK, INT_VRING);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_INTERRUPT_STATUS), 0);
	mt_free(&m);
}
END_TEST

START_TEST(mmio_bad_chain_needs_reset_then_reset)
{
	struct mt m;
	mt_init(&m);
	mt_up(&m);
	ck_assert(wait_handled(&m.t, 1)); /* the look at DRIVER_OK */
	/* A descriptor pointing past guest RAM. */
	fake_desc(&m.v.f, 0, FAKE_RAM - 8, 64, 0, 0);
	fake_publish(&m.v.f, 0);
	reg_wr(&m.v, m.base, REG_QUEUE_NOTIFY, TDEV_QUEUE);
	ck_assert(wait_handled(&m.t, 2));
	ck_assert_uint_ge(fake_vm_wait_irq(&m.v), 1);
	ck_assert(reg_rd(&m.v, m.base, REG_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	ck_assert(reg_rd(&m.v, m.base, REG_INTERRUPT_STATUS) & INT_CONFIG);
	ck_assert_int_eq(m.t.chains, 0);
	/* Status 0: the device's reset runs, queues and status are cleared. */
	int resets = m.t.resets;
	reg_wr(&m.v, m.base, REG_STATUS, 0);
	ck_assert_int_eq(m.t.resets, resets + 1);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_STATUS), 0);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_INTERRUPT_STATUS), 0);
	reg_wr(&m.v, m.base, REG_QUEUE_SEL, TDEV_QUEUE);
	ck_assert_uint_eq(reg_rd(&m.v, m.base, REG_QUEUE_READY), 0);
	/* And it comes up again, serving a good chain. */
	m.v.f.avail_idx = 0;
	memset(fake_host(&m.v.f, FAKE_AVAIL), 0, 0x1000);
	memset(fake_host(&m.v.f, FAKE_USED), 0, 0x1000);
	mt_up(&m);
	fake_desc(&m.v.f, 1, FAKE_DATA, 16, 0, 0);
	fake_publish(&m.v.f, 1);
	reg_wr(&m.v, m.base, REG_QUEUE_NOTIFY, TDEV_QUEUE);
	ck_assert_uint_ge(fake_vm_wait_irq(&m.v), 1);
	ck_assert_int_eq(fake_used_idx(&m.v.f), 1);
	ck_assert_uint_eq(fake_used(&m.v.f, 0).id, 1);
	mt_free(&m);
}
END_TEST

static Suite *mmio_suite(void)
{
	Suite *s = suite_create("mmio");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, mmio_identity_and_wiring);
	tcase_add_test(tc, mmio_second_device_gets_its_own_name_and_window);
	tcase_add_test(tc, mmio_features);
	tcase_add_test(tc, mmio_queue_bounds);
	tcase_add_test(tc, mmio_notify_and_interrupts);
	tcase_add_test(tc, mmio_bad_chain_needs_reset_then_reset);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(mmio_suite)
