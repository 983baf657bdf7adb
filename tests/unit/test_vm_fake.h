/* A VM without KVM for device tests: a struct vm with fake vm_ops (which
 * record what the device asks of the hypervisor), fake RAM from
 * test_virtq_fake.h, and a driver's side of the virtio-mmio registers,
 * reached through the VM's MMIO bus as a vCPU's exits would be. Register
 * offsets are restated from the spec (virtio 1.2, 4.2.2) on purpose: the
 * tests check the device against the spec, not against its own table. */
#ifndef TEST_VM_FAKE_H
#define TEST_VM_FAKE_H

#include "tests/unit/test_virtq_fake.h"
#include "devices/device.h"
#include "devices/virtio/virtio.h"
#include "lib/stats.h"
#include "vmm/vm.h"

#include <poll.h>
#include <unistd.h>

#define REG_MAGIC 0x000
#define REG_VERSION 0x004
#define REG_DEVICE_ID 0x008
#define REG_VENDOR_ID 0x00c
#define REG_DEVICE_FEATURES 0x010
#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES 0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_QUEUE_SEL 0x030
#define REG_QUEUE_NUM_MAX 0x034
#define REG_QUEUE_NUM 0x038
#define REG_QUEUE_READY 0x044
#define REG_QUEUE_NOTIFY 0x050
#define REG_INTERRUPT_STATUS 0x060
#define REG_INTERRUPT_ACK 0x064
#define REG_STATUS 0x070
#define REG_QUEUE_DESC_LOW 0x080
#define REG_QUEUE_DESC_HIGH 0x084
#define REG_QUEUE_DRIVER_LOW 0x090
#define REG_QUEUE_DRIVER_HIGH 0x094
#define REG_QUEUE_DEVICE_LOW 0x0a0
#define REG_QUEUE_DEVICE_HIGH 0x0a4
#define REG_CONFIG 0x100
#define INT_VRING 1
#define INT_CONFIG 2
#define FAKE_RAM (1ULL << 20)
#define FAKE_WAIT_MS 5000
#define FAKE_MAX_IOEVENTFDS 16

struct fake_vm {
	struct vm vm; /* first: the ops get &fake_vm.vm */
	struct fake f;
	int irqfd;    /* the assigned irqfd, -1 if none */
	uint32_t irq_gsi;
	int n_ioeventfds;
	uint64_t ioeventfd_addr[FAKE_MAX_IOEVENTFDS], ioeventfd_match[FAKE_MAX_IOEVENTFDS];
};

static int fake_op_irqfd(struct vm *vm, int fd, uint32_t gsi, bool assign)
{
	struct fake_vm *v = (struct fake_vm *)vm;
	v->irqfd = assign ? fd : -1;
	v->irq_gsi = gsi;
	return 0;
}

static int fake_op_ioeventfd(struct vm *vm, int fd, uint64_t addr, uint32_t len,
			     uint64_t datamatch, bool assign)
{
	struct fake_vm *v = (struct fake_vm *)vm;
	(void)fd, (void)len;
	if (assign && v->n_ioeventfds < FAKE_MAX_IOEVENTFDS) {
		v->ioeventfd_addr[v->n_ioeventfds] = addr;
		v->ioeventfd_match[v->n_ioeventfds++] = datamatch;
	}
	return 0;
}

static int fake_op_irq_line(struct vm *vm, uint32_t gsi, int level)
{
	(void)vm, (void)gsi, (void)level;
	return 0;
}

/* No read-only slots, no coalescing: every register access goes through
 * the bus, where the test makes it. */
static int fake_op_map_readonly(struct vm *vm, uint64_t gpa, void *host, uint64_t size)
{
	(void)vm, (void)gpa, (void)host, (void)size;
	return -1;
}

static void fake_op_unmap_readonly(struct vm *vm, int slot, uint64_t gpa)
{
	(void)vm, (void)slot, (void)gpa;
}

static int fake_op_coalesce(struct vm *vm, uint64_t addr, uint32_t len, bool assign)
{
	(void)vm, (void)addr, (void)len, (void)assign;
	return -1;
}

static const struct vm_ops fake_vm_ops = {
	.irqfd = fake_op_irqfd,
	.ioeventfd = fake_op_ioeventfd,
	.irq_line = fake_op_irq_line,
	.map_readonly = fake_op_map_readonly,
	.unmap_readonly = fake_op_unmap_readonly,
	.coalesce_mmio = fake_op_coalesce,
};

/* A VM with FAKE_RAM of RAM; cfg may be NULL. Ring of num entries. */
static inline void fake_vm_init(struct fake_vm *v, const struct config *cfg, uint16_t num)
{
	memset(v, 0, sizeof(*v));
	vm_init_common(&v->vm, cfg);
	v->vm.ops = &fake_vm_ops;
	v->irqfd = -1;
	fake_mem_init(&v->f, FAKE_RAM, num);
	v->vm.mem = v->f.mem;
}

static inline void fake_vm_free(struct fake_vm *v)
{
	device_stop_all(&v->vm);
	stats_unregister_all();
	device_destroy_all(&v->vm);
	fake_mem_free(&v->f);
}

/* Base of the n-th virtio-mmio window, from the VM's firmware table. */
static inline uint64_t fake_vm_window(struct fake_vm *v, int n)
{
	ck_assert_int_gt(v->vm.n_platform, n);
	ck_assert_str_eq(v->vm.platform[n].hid, "LNRO0005");
	return v->vm.platform[n].mmio_base;
}

static inline uint32_t reg_rd(struct fake_vm *v, uint64_t base, uint32_t off)
{
	uint32_t x = 0;
	ck_assert(bus_dispatch(&v->vm.mmio, base + off, (uint8_t *)&x, 4, false));
	return x;
}

static inline void reg_wr(struct fake_vm *v, uint64_t base, uint32_t off, uint32_t x)
{
	ck_assert(bus_dispatch(&v->vm.mmio, base + off, (uint8_t *)&x, 4, true));
}

/* 3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK.
 * Returns the status read back (FEATURES_OK kept or refused). */
static inline uint32_t driver_negotiate(struct fake_vm *v, uint64_t base, uint64_t features)
{
	reg_wr(v, base, REG_STATUS, 0);
	reg_wr(v, base, REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	reg_wr(v, base, REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	reg_wr(v, base, REG_DRIVER_FEATURES_SEL, 0);
	reg_wr(v, base, REG_DRIVER_FEATURES, (uint32_t)features);
	reg_wr(v, base, REG_DRIVER_FEATURES_SEL, 1);
	reg_wr(v, base, REG_DRIVER_FEATURES, (uint32_t)(features >> 32));
	reg_wr(v, base, REG_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					    VIRTIO_STATUS_FEATURES_OK);
	return reg_rd(v, base, REG_STATUS);
}

/* Queue q over the fake ring at FAKE_DESC/AVAIL/USED with num entries. */
static inline void driver_queue(struct fake_vm *v, uint64_t base, uint32_t q, uint32_t num)
{
	reg_wr(v, base, REG_QUEUE_SEL, q);
	reg_wr(v, base, REG_QUEUE_NUM, num);
	reg_wr(v, base, REG_QUEUE_DESC_LOW, (uint32_t)FAKE_DESC);
	reg_wr(v, base, REG_QUEUE_DESC_HIGH, 0);
	reg_wr(v, base, REG_QUEUE_DRIVER_LOW, (uint32_t)FAKE_AVAIL);
	reg_wr(v, base, REG_QUEUE_DRIVER_HIGH, 0);
	reg_wr(v, base, REG_QUEUE_DEVICE_LOW, (uint32_t)FAKE_USED);
	reg_wr(v, base, REG_QUEUE_DEVICE_HIGH, 0);
	reg_wr(v, base, REG_QUEUE_READY, 1);
}

static inline void driver_ok(struct fake_vm *v, uint64_t base)
{
	reg_wr(v, base, REG_STATUS, reg_rd(v, base, REG_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* Wait for the device's irqfd; returns the number of edges (0: timeout). */
static inline uint64_t fake_vm_wait_irq(struct fake_vm *v)
{
	ck_assert_int_ge(v->irqfd, 0);
	struct pollfd p = {.fd = v->irqfd, .events = POLLIN};
	if (poll(&p, 1, FAKE_WAIT_MS) != 1)
		return 0;
	uint64_t n = 0;
	ck_assert_int_eq(read(v->irqfd, &n, sizeof(n)), sizeof(n));
	return n;
}

/* The used index reaching want, within FAKE_WAIT_MS: a device may raise
 * one interrupt (a config change, say) before a worker returns the chain
 * that caused it, so an interrupt alone does not say the ring is final. */
static inline uint16_t fake_vm_wait_used(struct fake_vm *v, uint16_t want)
{
	for (int ms = 0; ms < FAKE_WAIT_MS; ms++) {
		uint16_t idx = __atomic_load_n((uint16_t *)fake_host(&v->f, FAKE_USED + 2), __ATOMIC_ACQUIRE);
		if (idx == want)
			return idx;
		usleep(1000);
	}
	return fake_used_idx(&v->f);
}

#endif
