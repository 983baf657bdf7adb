#include "vmm/memory.h"
#include "vmm/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GMEM_GUARD 4096ULL
#define GMEM_ALIGN (2ULL << 20)

int gmem_init(struct guest_mem *m, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	if (size < (2ULL << 20) || (size & 0xfff))
		return -EINVAL;
	/* RAM starts on a 2 MiB boundary so that the host can back it with
	 * huge pages and KVM can map them as such (the guest-physical and
	 * host-virtual offsets within a huge page must agree): every 4 KiB
	 * page fault of a booting guest costs an exit, a 2 MiB one covers 512.
	 * Around it, inaccessible guard pages turn an off-by-one in a bounds
	 * check into a crash at the faulting line instead of a silent write
	 * into a neighbouring mapping. */
	uint64_t span = size + GMEM_ALIGN + 2 * GMEM_GUARD;
	uint8_t *r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return -errno;
	uint8_t *p = (uint8_t *)(((uintptr_t)r + GMEM_GUARD + GMEM_ALIGN - 1) & ~(uintptr_t)(GMEM_ALIGN - 1));
	if (mprotect(p, size, PROT_READ | PROT_WRITE) < 0) {
		int err = errno;
		munmap(r, span);
		return -err;
	}
	m->reservation = r;
	m->reservation_size = span;
	madvise(p, size, MADV_HUGEPAGE);
	madvise(p, size, MADV_DONTDUMP);
	m->base = p;
	m->ram_size = size;
	uint64_t low = size < LAYOUT_MMIO_HOLE_START ? size : LAYOUT_MMIO_HOLE_START;
	m->regions[0] = (struct gmem_region){0, low, m->base};
	m->n_regions = 1;
	if (size > low) {
		m->regions[1] = (struct gmem_region){LAYOUT_4G, size - low, m->base + low};
		m->n_regions = 2;
	}
	return 0;
}

uint64_t gmem_resident_bytes(const struct guest_mem *m)
{
	long page = sysconf(_SC_PAGESIZE);
	if (!m->base || page <= 0)
		return 0;
	uint64_t pages = (m->ram_size + (uint64_t)page - 1) / (uint64_t)page;
	unsigned char *vec = malloc(pages);
	if (!vec)
		return 0;
	uint64_t n = 0;
	if (mincore(m->base, m->ram_size, vec) == 0) {
		for (uint64_t i = 0; i < pages; i++)
			n += vec[i] & 1;
	}
	free(vec);
	return n * (uint64_t)page;
}

void gmem_free(struct guest_mem *m)
{
	if (m->reservation)
		munmap(m->reservation, m->reservation_size);
	memset(m, 0, sizeof(*m));
}

void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < m->n_regions; i++) {
		const struct gmem_region *r = &m->regions[i];
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		/* Written so that no sum can overflow: off <= size, then len <= rest. */
		if (off > r->size || len > r->size - off)
			continue;
		return r->host + off;
	}
	return NULL;
}

bool gmem_is_ram(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	return gmem_ptr(m, gpa, len) != NULL;
}

int gmem_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len)
{
	void *p = gmem_ptr(m, gpa, len);
	if (!p)
		return -1;
	memcpy(dst, p, len);
	return 0;
}

int gmem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gmem_ptr(m, gpa, len);
	if (!p)
		return -1;
	memcpy(p, src, len);
	return 0;
}

uint64_t gmem_low_end(const struct guest_mem *m)
{
	return m->regions[0].size;
}
