/*
 * virtio-mmio transport, version 2 (virtio 1.2 section 4.2), modern only.
 *
 * Each device gets a one-page register window in the MMIO hole, an
 * interrupt line declared edge-triggered in the DSDT (HID LNRO0005), and:
 *  - an ioeventfd per queue on QueueNotify (datamatch = queue index), so
 *    a notification wakes the I/O thread straight from KVM;
 *  - an irqfd on its line, so an interrupt is one write(2) from the I/O
 *    thread; edge-triggered needs no resample;
 *  - a register page: every value a read returns is kept in one host page,
 *    mapped into the guest as a read-only memory slot where KVM allows it
 *    (KVM_MEM_READONLY). Reads then never leave the guest (InterruptStatus
 *    is read on every interrupt); writes still exit, as MMIO, to
 *    mmio_write below. Without the slot the bus handler serves reads from
 *    the same page.
 *  - the InterruptACK word is a coalesced-MMIO zone where KVM has one:
 *    the guest's ACK write (one per interrupt) is queued in a ring instead
 *    of exiting; the I/O thread applies queued ACKs (vm_coalesced_flush,
 *    which calls mmio_access without its lock) before it raises the next
 *    interrupt, so a bit is never cleared after being raised again.
 * Every request to the hypervisor goes through vm->ops (vmm/vm.h), so the
 * register protocol runs in unit tests without /dev/kvm. See docs/virtio.md.
 */
#include "devices/virtio/virtio.h"
#include "lib/log.h"
#include "lib/stats.h"
#include "vmm/vm.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

/* Register offsets (4.2.2, table "MMIO Device Register Layout"). */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_SHM_SEL 0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW 0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH 0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW 0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH 0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" (4.2.2) */
#define VIRTIO_MMIO_VERSION_2 2      /* modern; 1 is legacy (4.2.4) */
#define VIRTIO_MMIO_VENDOR 0x4d564d4d /* "MMVM": any value is allowed */
/* InterruptStatus bits (4.2.2). */
#define VIRTIO_MMIO_INT_VRING 1
#define VIRTIO_MMIO_INT_CONFIG 2

#define VIRTIO_MMIO_WINDOW 0x1000 /* one page: the register page */
/* What the DSDT declares: registers plus config space (4.2.2). */
#define VIRTIO_MMIO_DECLARED (VIRTIO_MMIO_CONFIG + VIRTIO_CONFIG_MAX)
#define VIRTIO_MMIO_HID "LNRO0005" /* the kernel's virtio_mmio ACPI id */
/* Registers are 32-bit words (4.2.2). */
#define VIRTIO_MMIO_REG_SIZE 4

/* Features the transport and the queue code implement (6). */
#define VIRTIO_TRANSPORT_FEATURES                                                \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_INDIRECT_DESC) |     \
	 (1ULL << VIRTIO_F_EVENT_IDX))

struct virtio_dev {
	struct vm *vm;
	const struct virtio_dev_ops *ops;
	void *opaque;
	uint8_t *config; /* the device's struct */
	char name[24];   /* "virtio-blk0": stats key */
	int instance;    /* among the VM's virtio-mmio devices: ACPI name */

	uint64_t base;
	uint32_t gsi;
	uint8_t *page;   /* register page: what reads return */
	int slot;        /* the page's read-only memory slot, -1 if none */
	bool ro_slot;    /* page mapped into the guest */
	bool coalesced_ack;
	bool on_bus;

	/* Device lock: register writes and handle_queue. */
	pthread_mutex_t lock;
	uint64_t device_features, driver_features;
	uint32_t dev_features_sel, drv_features_sel, queue_sel, shm_sel;

	int irqfd, stopfd, epfd;
	bool irqfd_assigned;
	int kickfd[VIRTIO_MAX_QUEUES];
	bool ioeventfd[VIRTIO_MAX_QUEUES];
	pthread_t thread;
	bool thread_started;
	struct virtq vqs[VIRTIO_MAX_QUEUES];

	_Atomic uint64_t n_kicks, n_irqs, n_config_irqs;
};

static inline _Atomic uint32_t *reg(struct virtio_dev *d, uint32_t off)
{
	return (_Atomic uint32_t *)(d->page + off);
}

static inline void reg_set(struct virtio_dev *d, uint32_t off, uint32_t v)
{
	atomic_store(reg(d, off), v);
}

static inline uint32_t reg_get(struct virtio_dev *d, uint32_t off)
{
	return atomic_load(reg(d, off));
}

/* Refresh the selector-dependent words of the page. Device lock held. */
static void page_refresh(struct virtio_dev *d)
{
	uint32_t sel = d->dev_features_sel;
	reg_set(d, VIRTIO_MMIO_DEVICE_FEATURES,
		sel < 2 ? (uint32_t)(d->device_features >> (32 * sel)) : 0);
	uint32_t max = 0, ready = 0;
	if (d->queue_sel < d->ops->num_queues) {
		struct virtq *vq = &d->vqs[d->queue_sel];
		max = vq->max_size;
		ready = vq->ready;
	}
	reg_set(d, VIRTIO_MMIO_QUEUE_NUM_MAX, max);
	reg_set(d, VIRTIO_MMIO_QUEUE_READY, ready);
	/* No shared memory regions: SHMLen reads as all ones (4.2.2). */
	reg_set(d, VIRTIO_MMIO_SHM_LEN_LOW, 0xffffffffu);
	reg_set(d, VIRTIO_MMIO_SHM_LEN_HIGH, 0xffffffffu);
	reg_set(d, VIRTIO_MMIO_SHM_BASE_LOW, 0xffffffffu);
	reg_set(d, VIRTIO_MMIO_SHM_BASE_HIGH, 0xffffffffu);
}

/* Device lock held (or the device not yet visible). */
static void config_refresh(struct virtio_dev *d)
{
	memcpy(d->page + VIRTIO_MMIO_CONFIG, d->config, d->ops->config_size);
}

static void raise_irq(struct virtio_dev *d, uint32_t bit)
{
	vm_coalesced_flush(d->vm);
	atomic_fetch_or(reg(d, VIRTIO_MMIO_INTERRUPT_STATUS), bit);
	uint64_t one = 1;
	/* The bit is in the page before the edge reaches the guest. */
	if (write(d->irqfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("%s: irqfd: %s", d->name, strerror(errno));
	atomic_fetch_add(&d->n_irqs, 1);
}

static void vq_irq(void *opaque, struct virtq *vq)
{
	(void)vq;
	raise_irq(opaque, VIRTIO_MMIO_INT_VRING);
}

void virtio_dev_needs_reset(struct virtio_dev *d, const char *why)
{
	log_warn("%s: %s; device needs reset", d->name, why);
	uint32_t old = atomic_fetch_or(reg(d, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* 2.1.2: with DRIVER_OK set, tell the driver by a config interrupt. */
	if ((old & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DEVICE_NEEDS_RESET)) {
		atomic_fetch_add(&d->n_config_irqs, 1);
		raise_irq(d, VIRTIO_MMIO_INT_CONFIG);
	}
}

static void vq_error(void *opaque, struct virtq *vq, const char *why)
{
	struct virtio_dev *d = opaque;
	char msg[160];
	snprintf(msg, sizeof(msg), "queue %u: %s", vq->index, why);
	virtio_dev_needs_reset(d, msg);
}

/* Status = 0 (4.2.3.1 / 2.4): back to the state after creation. */
static void dev_reset(struct virtio_dev *d)
{
	if (d->ops->reset)
		d->ops->reset(d);
	for (unsigned i = 0; i < d->ops->num_queues; i++)
		virtq_reset(&d->vqs[i]);
	d->driver_features = 0;
	d->dev_features_sel = d->drv_features_sel = d->queue_sel = d->shm_sel = 0;
	reg_set(d, VIRTIO_MMIO_INTERRUPT_STATUS, 0);
	reg_set(d, VIRTIO_MMIO_STATUS, 0);
	page_refresh(d);
}

static void status_write(struct virtio_dev *d, uint32_t v)
{
	if (v == 0) {
		dev_reset(d);
		return;
	}
	uint32_t old = reg_get(d, VIRTIO_MMIO_STATUS);
	v &= 0xff;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		/* 3.1.1 step 5-6: refuse features we did not offer, and a
		 * legacy driver (no VERSION_1): FEATURES_OK then reads back 0. */
		if ((d->driver_features & ~d->device_features) ||
		    !(d->driver_features & (1ULL << VIRTIO_F_VERSION_1)))
			v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
	}
	/* NEEDS_RESET is the device's to set; keep it until reset. */
	v = (v & ~(uint32_t)VIRTIO_STATUS_DEVICE_NEEDS_RESET) |
	    (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	reg_set(d, VIRTIO_MMIO_STATUS, v);
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (d->ops->activate)
			d->ops->activate(d);
		/* Look at every queue once: a notification sent before
		 * DRIVER_OK was dropped by the I/O thread. */
		uint64_t one = 1;
		for (unsigned i = 0; i < d->ops->num_queues; i++)
			if (write(d->kickfd[i], &one, sizeof(one)) < 0)
				log_debug("%s: kick: %s", d->name, strerror(errno));
	}
}

static void queue_ready_write(struct virtio_dev *d, struct virtq *vq, uint32_t v)
{
	if (!v) {
		virtq_reset(vq);
		return;
	}
	if (vq->ready)
		return;
	if (virtq_enable(vq, d->driver_features) < 0) {
		char msg[96];
		snprintf(msg, sizeof(msg), "queue %u: bad size or ring addresses", vq->index);
		virtio_dev_needs_reset(d, msg);
	}
}

static void set_lo(uint64_t *x, uint32_t v) { *x = (*x & ~0xffffffffULL) | v; }
static void set_hi(uint64_t *x, uint32_t v) { *x = (*x & 0xffffffffULL) | ((uint64_t)v << 32); }

static void mmio_write(struct virtio_dev *d, uint64_t off, const uint8_t *data, uint32_t len)
{
	if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t c = off - VIRTIO_MMIO_CONFIG;
		if (c >= d->ops->config_size || len > d->ops->config_size - c || !d->ops->config_write)
			return;
		memcpy(d->config + c, data, len);
		d->ops->config_write(d, (uint32_t)c, len);
		config_refresh(d);
		return;
	}
	/* 4.2.2: registers are accessed as 32-bit words. */
	if (len != VIRTIO_MMIO_REG_SIZE || (off & 3))
		return;
	uint32_t v;
	memcpy(&v, data, 4);
	struct virtq *vq = d->queue_sel < d->ops->num_queues ? &d->vqs[d->queue_sel] : NULL;
	/* Queue layout may change only while the queue is off (4.2.3.2). */
	bool vq_off = vq && !vq->ready;
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: d->dev_features_sel = v; break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: d->drv_features_sel = v; break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (d->drv_features_sel < 2 &&
		    !(reg_get(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
			if (d->drv_features_sel == 0)
				set_lo(&d->driver_features, v);
			else
				set_hi(&d->driver_features, v);
		}
		break;
	case VIRTIO_MMIO_QUEUE_SEL: d->queue_sel = v; break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (vq_off)
			vq->num = v <= vq->max_size ? (uint16_t)v : 0;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (vq)
			queue_ready_write(d, vq, v);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* Only when the ioeventfd could not be set up. */
		if (v < d->ops->num_queues) {
			uint64_t one = 1;
			if (write(d->kickfd[v], &one, sizeof(one)) < 0)
				log_debug("%s: kick: %s", d->name, strerror(errno));
		}
		break;
	case VIRTIO_MMIO_STATUS: status_write(d, v); break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: if (vq_off) set_lo(&vq->desc_gpa, v); break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: if (vq_off) set_hi(&vq->desc_gpa, v); break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW: if (vq_off) set_lo(&vq->avail_gpa, v); break;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: if (vq_off) set_hi(&vq->avail_gpa, v); break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW: if (vq_off) set_lo(&vq->used_gpa, v); break;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: if (vq_off) set_hi(&vq->used_gpa, v); break;
	case VIRTIO_MMIO_SHM_SEL: d->shm_sel = v; break;
	default: break; /* read-only or unknown: ignored */
	}
	page_refresh(d);
}

static void mmio_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_dev *d = opaque;
	if (off >= VIRTIO_MMIO_WINDOW || len > VIRTIO_MMIO_WINDOW - off)
		return;
	if (!is_write) {
		/* The page holds every readable value (see the top comment). */
		memcpy(data, d->page + off, len);
		return;
	}
	if (off == VIRTIO_MMIO_INTERRUPT_ACK && len == VIRTIO_MMIO_REG_SIZE) {
		/* No lock: replayed from a coalesced zone by whichever thread
		 * raises an interrupt, possibly under this device's lock. */
		uint32_t v;
		memcpy(&v, data, sizeof(v));
		atomic_fetch_and(reg(d, VIRTIO_MMIO_INTERRUPT_STATUS), ~v);
		return;
	}
	pthread_mutex_lock(&d->lock);
	mmio_write(d, off, data, len);
	pthread_mutex_unlock(&d->lock);
}

static void *io_thread(void *arg)
{
	struct virtio_dev *d = arg;
	struct epoll_event ev[VIRTIO_MAX_QUEUES + 1];
	for (;;) {
		int n = epoll_wait(d->epfd, ev, VIRTIO_MAX_QUEUES + 1, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("%s: epoll_wait: %s", d->name, strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			uint32_t q = ev[i].data.u32;
			if (q == UINT32_MAX)
				return NULL; /* virtio_dev_destroy */
			uint64_t cnt;
			if (read(d->kickfd[q], &cnt, sizeof(cnt)) != sizeof(cnt))
				continue;
			atomic_fetch_add(&d->n_kicks, 1);
			pthread_mutex_lock(&d->lock);
			struct virtq *vq = &d->vqs[q];
			if ((reg_get(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK) &&
			    virtq_is_ready(vq))
				d->ops->handle_queue(d, vq);
			pthread_mutex_unlock(&d->lock);
		}
	}
}

static void stats_fill(void *opaque, json_t *obj)
{
	struct virtio_dev *d = opaque;
	uint64_t popped = 0, pushed = 0, irqs = 0, supp = 0, bad = 0;
	for (unsigned i = 0; i < d->ops->num_queues; i++) {
		struct virtq *vq = &d->vqs[i];
		pthread_mutex_lock(&vq->lock);
		popped += vq->n_popped;
		pushed += vq->n_pushed;
		irqs += vq->n_irqs;
		supp += vq->n_irqs_suppressed;
		bad += vq->n_bad;
		pthread_mutex_unlock(&vq->lock);
	}
	json_object_set_new(obj, "requests", json_integer((json_int_t)popped));
	json_object_set_new(obj, "completed", json_integer((json_int_t)pushed));
	json_object_set_new(obj, "notifications", json_integer((json_int_t)atomic_load(&d->n_kicks)));
	json_object_set_new(obj, "interrupts", json_integer((json_int_t)atomic_load(&d->n_irqs)));
	json_object_set_new(obj, "interrupts_suppressed", json_integer((json_int_t)supp));
	json_object_set_new(obj, "bad_chains", json_integer((json_int_t)bad));
	json_object_set_new(obj, "register_page_mapped", json_boolean(d->ro_slot));
	json_object_set_new(obj, "coalesced_ack", json_boolean(d->coalesced_ack));
	(void)irqs;
}

/* Map the register page read-only into the guest (see the top comment). */
static void map_register_page(struct virtio_dev *d)
{
	if (getenv("MINIVMM_VIRTIO_NO_PAGE")) /* to measure the difference */
		return;
	d->slot = d->vm->ops->map_readonly(d->vm, d->base, d->page, VIRTIO_MMIO_WINDOW);
	if (d->slot < 0) {
		log_debug("%s: no read-only register page: %s", d->name, strerror(errno));
		return;
	}
	d->ro_slot = true;
	/* The ACK word: queue its writes instead of exiting. */
	if (d->vm->ops->coalesce_mmio(d->vm, d->base + VIRTIO_MMIO_INTERRUPT_ACK,
				      VIRTIO_MMIO_REG_SIZE, true) == 0)
		d->coalesced_ack = true;
}

static int dev_wire(struct virtio_dev *d)
{
	struct vm *vm = d->vm;
	d->irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->stopfd = eventfd(0, EFD_CLOEXEC);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->irqfd < 0 || d->stopfd < 0 || d->epfd < 0) {
		log_error("%s: eventfd/epoll: %s", d->name, strerror(errno));
		return -1;
	}
	if (vm->ops->irqfd(vm, d->irqfd, d->gsi, true) < 0) {
		log_error("%s: KVM_IRQFD: %s", d->name, strerror(errno));
		return -1;
	}
	d->irqfd_assigned = true;
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->stopfd, &ev) < 0)
		return -1;
	for (unsigned i = 0; i < d->ops->num_queues; i++) {
		d->kickfd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->kickfd[i] < 0)
			return -1;
		if (vm->ops->ioeventfd(vm, d->kickfd[i], d->base + VIRTIO_MMIO_QUEUE_NOTIFY,
				       VIRTIO_MMIO_REG_SIZE, i, true) == 0)
			d->ioeventfd[i] = true;
		else
			log_warn("%s: KVM_IOEVENTFD: %s (notifications will exit)", d->name,
				 strerror(errno));
		ev.data.u32 = i;
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->kickfd[i], &ev) < 0)
			return -1;
	}
	return 0;
}

/* How many of vm's virtio devices are called name followed by a number:
 * the next one's number ("virtio-blk1"). Read from the MMIO bus, where
 * each device's window is registered under its name. */
static int same_name_count(const struct vm *vm, const char *name)
{
	size_t len = strlen(name);
	int n = 0;
	for (int i = 0; i < vm->mmio.n; i++) {
		const char *o = vm->mmio.ranges[i].owner;
		if (o && strncmp(o, name, len) == 0 && o[len] >= '0' && o[len] <= '9' &&
		    !o[len + strspn(o + len, "0123456789")])
			n++;
	}
	return n;
}

/* This device's index among vm's virtio-mmio devices (its ACPI name). */
static int mmio_instance_count(const struct vm *vm)
{
	int n = 0;
	for (int i = 0; i < vm->n_platform; i++)
		n += strcmp(vm->platform[i].hid, VIRTIO_MMIO_HID) == 0;
	return n;
}

struct virtio_dev *virtio_dev_create(struct vm *vm, const struct virtio_dev_ops *ops,
				     void *opaque, void *config)
{
	if (!ops->handle_queue || ops->num_queues == 0 || ops->num_queues > VIRTIO_MAX_QUEUES ||
	    ops->config_size > VIRTIO_CONFIG_MAX || ops->queue_max_size == 0 ||
	    ops->queue_max_size > VIRTQ_MAX_SIZE ||
	    (ops->queue_max_size & (ops->queue_max_size - 1))) {
		log_error("%s: invalid virtio device description", ops->name);
		return NULL;
	}
	struct virtio_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->vm = vm;
	d->ops = ops;
	d->opaque = opaque;
	d->config = config;
	d->instance = mmio_instance_count(vm);
	d->slot = -1;
	d->irqfd = d->stopfd = d->epfd = -1;
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		d->kickfd[i] = -1;
	snprintf(d->name, sizeof(d->name), "%s%d", ops->name, same_name_count(vm, ops->name));
	pthread_mutex_init(&d->lock, NULL);
	d->device_features = ops->features | VIRTIO_TRANSPORT_FEATURES;
	/* For measuring what EVENT_IDX buys (docs/virtio.md). */
	if (getenv("MINIVMM_VIRTIO_NO_EVENT_IDX"))
		d->device_features &= ~(1ULL << VIRTIO_F_EVENT_IDX);
	for (unsigned i = 0; i < ops->num_queues; i++)
		virtq_init(&d->vqs[i], &vm->mem, (uint16_t)i, ops->queue_max_size, vq_irq, vq_error, d);

	d->page = mmap(NULL, VIRTIO_MMIO_WINDOW, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (d->page == MAP_FAILED) {
		d->page = NULL;
		goto fail;
	}
	reg_set(d, VIRTIO_MMIO_MAGIC_VALUE, VIRTIO_MMIO_MAGIC);
	reg_set(d, VIRTIO_MMIO_VERSION, VIRTIO_MMIO_VERSION_2);
	reg_set(d, VIRTIO_MMIO_DEVICE_ID, ops->device_id);
	reg_set(d, VIRTIO_MMIO_VENDOR_ID, VIRTIO_MMIO_VENDOR);
	page_refresh(d);
	config_refresh(d);

	d->base = vm_alloc_mmio(vm, VIRTIO_MMIO_WINDOW);
	d->gsi = vm_alloc_irq(vm);
	if (!d->base || !d->gsi) {
		log_error("%s: no MMIO window or interrupt line left", d->name);
		goto fail;
	}
	if (bus_register(&vm->mmio, d->base, VIRTIO_MMIO_WINDOW, mmio_access, d, d->name) < 0)
		goto fail;
	d->on_bus = true;
	if (dev_wire(d) < 0)
		goto fail;
	if (pthread_create(&d->thread, NULL, io_thread, d) != 0) {
		log_error("%s: cannot start its I/O thread", d->name);
		goto fail;
	}
	d->thread_started = true;
	/* Last: a DSDT entry cannot be taken back. */
	struct platform_dev pd = {
		.hid = VIRTIO_MMIO_HID, .mmio_base = d->base, .mmio_size = VIRTIO_MMIO_DECLARED,
		.irq = d->gsi, .irq_edge = true,
	};
	snprintf(pd.name, sizeof(pd.name), "VR%02d", d->instance);
	if (vm_add_platform_dev(vm, &pd) < 0) {
		log_error("%s: too many platform devices", d->name);
		goto fail;
	}
	map_register_page(d);
	char tname[16];
	snprintf(tname, sizeof(tname), "%.15s", d->name);
	pthread_setname_np(d->thread, tname);
	stats_register(d->name, stats_fill, d);
	log_debug("%s at 0x%" PRIx64 ", GSI %u", d->name, d->base, d->gsi);
	return d;
fail:
	virtio_dev_destroy(d);
	return NULL;
}

void virtio_dev_stop(struct virtio_dev *d)
{
	if (!d || !d->thread_started)
		return;
	uint64_t one = 1;
	if (write(d->stopfd, &one, sizeof(one)) < 0)
		log_warn("%s: stop: %s", d->name, strerror(errno));
	pthread_join(d->thread, NULL);
	d->thread_started = false;
}

void virtio_dev_destroy(struct virtio_dev *d)
{
	if (!d)
		return;
	virtio_dev_stop(d);
	stats_unregister(d);
	struct vm *vm = d->vm;
	for (unsigned i = 0; i < d->ops->num_queues; i++) {
		if (d->ioeventfd[i])
			vm->ops->ioeventfd(vm, d->kickfd[i], d->base + VIRTIO_MMIO_QUEUE_NOTIFY,
					   VIRTIO_MMIO_REG_SIZE, i, false);
		if (d->kickfd[i] >= 0)
			close(d->kickfd[i]);
		d->kickfd[i] = -1;
		virtq_destroy(&d->vqs[i]);
	}
	if (d->irqfd_assigned)
		vm->ops->irqfd(vm, d->irqfd, d->gsi, false);
	if (d->irqfd >= 0)
		close(d->irqfd);
	if (d->stopfd >= 0)
		close(d->stopfd);
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->coalesced_ack)
		vm->ops->coalesce_mmio(vm, d->base + VIRTIO_MMIO_INTERRUPT_ACK,
				       VIRTIO_MMIO_REG_SIZE, false);
	if (d->slot >= 0)
		vm->ops->unmap_readonly(vm, d->slot, d->base);
	if (d->on_bus)
		bus_unregister(&vm->mmio, d->base);
	if (d->page)
		munmap(d->page, VIRTIO_MMIO_WINDOW);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

void *virtio_dev_opaque(const struct virtio_dev *d) { return d->opaque; }

struct virtq *virtio_dev_queue(struct virtio_dev *d, uint16_t index)
{
	return index < d->ops->num_queues ? &d->vqs[index] : NULL;
}

uint64_t virtio_dev_features(const struct virtio_dev *d) { return d->driver_features; }
