/* A fake guest for virtqueue tests: RAM is an anonymous mapping described
 * by a struct guest_mem, and small helpers lay out a split ring in it the
 * way a driver would (virtio 1.2 section 2.7). Shared by test_virtq.c,
 * test_virtio_blk.c, and through test_vm_fake.h test_mmio.c and
 * test_virtio_fs.c. */
#ifndef TEST_VIRTQ_FAKE_H
#define TEST_VIRTQ_FAKE_H

#include "devices/virtio/virtqueue.h"

#include <check.h>
#include <string.h>
#include <sys/mman.h>

#define FAKE_DESC 0x1000ULL
#define FAKE_AVAIL 0x2000ULL
#define FAKE_USED 0x3000ULL
#define FAKE_DATA 0x10000ULL

struct fake {
	struct guest_mem mem;
	struct virtq vq;
	uint16_t num, avail_idx;
	int irqs, errors;
	const char *last_error;
};

static void fake_irq(void *opaque, struct virtq *vq)
{
	(void)vq;
	((struct fake *)opaque)->irqs++;
}

static void fake_error(void *opaque, struct virtq *vq, const char *why)
{
	(void)vq;
	struct fake *f = opaque;
	f->errors++;
	f->last_error = why;
}

/* ram bytes of fake RAM at guest-physical 0 (NORESERVE: may be huge), and
 * a driver's view of one ring of num entries at FAKE_DESC/AVAIL/USED, with
 * no queue of our own: for a device whose queue the test drives through
 * its registers (test_mmio.c, test_virtio_fs.c). */
static inline void fake_mem_init(struct fake *f, uint64_t ram, uint16_t num)
{
	memset(f, 0, sizeof(*f));
	void *p = mmap(NULL, ram, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	f->mem.base = p;
	f->mem.ram_size = ram;
	f->mem.regions[0] = (struct gmem_region){0, ram, p};
	f->mem.n_regions = 1;
	f->num = num;
}

static inline void fake_mem_free(struct fake *f)
{
	munmap(f->mem.base, f->mem.ram_size);
}

/* fake_mem_init plus a queue of our own over that ring, enabled. */
static inline void fake_init(struct fake *f, uint64_t ram, uint16_t num, uint64_t features)
{
	fake_mem_init(f, ram, num);
	virtq_init(&f->vq, &f->mem, 0, 256, fake_irq, fake_error, f);
	f->vq.num = num;
	f->vq.desc_gpa = FAKE_DESC;
	f->vq.avail_gpa = FAKE_AVAIL;
	f->vq.used_gpa = FAKE_USED;
	ck_assert_int_eq(virtq_enable(&f->vq, features), 0);
}

static inline void fake_free(struct fake *f)
{
	virtq_destroy(&f->vq);
	fake_mem_free(f);
}

static inline void *fake_host(struct fake *f, uint64_t gpa) { return f->mem.base + gpa; }

/* Write descriptor i of the table at table_gpa. */
static inline void fake_desc_at(struct fake *f, uint64_t table_gpa, uint16_t i, uint64_t addr,
				uint32_t len, uint16_t flags, uint16_t next)
{
	struct virtq_desc d = {addr, len, flags, next};
	memcpy(fake_host(f, table_gpa + 16ULL * i), &d, sizeof(d));
}

static inline void fake_desc(struct fake *f, uint16_t i, uint64_t addr, uint32_t len,
			     uint16_t flags, uint16_t next)
{
	fake_desc_at(f, FAKE_DESC, i, addr, len, flags, next);
}

/* Make head available and bump avail->idx. */
static inline void fake_publish(struct fake *f, uint16_t head)
{
	uint16_t *avail = fake_host(f, FAKE_AVAIL);
	avail[2 + f->avail_idx % f->num] = head;
	f->avail_idx++;
	avail[1] = f->avail_idx;
}

static inline uint16_t fake_used_idx(struct fake *f)
{
	return *(uint16_t *)fake_host(f, FAKE_USED + 2);
}

static inline struct virtq_used_elem fake_used(struct fake *f, uint16_t slot)
{
	struct virtq_used_elem e;
	memcpy(&e, fake_host(f, FAKE_USED + 4 + 8ULL * (slot % f->num)), sizeof(e));
	return e;
}

#endif
