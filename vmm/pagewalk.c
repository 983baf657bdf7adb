#include "vmm/pagewalk.h"

/* Control bits and entry formats: Intel SDM vol. 3A, 4.1.1 (paging modes),
 * 4.3 (32-bit paging), 4.4 (PAE paging), 4.5 (4-level and 5-level). */
#define CR0_PG (1ULL << 31)
#define CR4_PSE (1ULL << 4)
#define CR4_PAE (1ULL << 5)
#define CR4_LA57 (1ULL << 12)
#define EFER_LMA (1ULL << 10)
#define PTE_P (1ULL << 0)
#define PTE_PS (1ULL << 7)
#define PTE_ADDR_MASK 0x000ffffffffff000ULL /* bits 51:12 (MAXPHYADDR 52) */
#define PAE_PDPT_MASK 0xffffffe0ULL         /* CR3 bits 31:5 with PAE */
#define PSE_4M_ADDR 0xffc00000ULL           /* 32-bit PDE with PS: bits 31:22 */
#define PSE36_HIGH(pde) ((((pde) >> 13) & 0xffULL) << 32) /* bits 20:13 -> 39:32 */
#define PAGE_SHIFT 12
#define PAGE_SIZE 4096ULL

static int entry64(const struct guest_mem *m, uint64_t table, uint64_t idx, uint64_t *e)
{
	return gmem_read(m, table + idx * 8, e, 8);
}

static int done(uint64_t base, uint64_t size, uint64_t la, uint64_t *gpa, uint64_t *left)
{
	uint64_t off = la & (size - 1);
	*gpa = (base & ~(size - 1)) + off;
	*left = size - off;
	return 0;
}

/* IA-32e paging, 4 or 5 levels, 9 bits of the address per level. */
static int walk_long(const struct guest_mem *m, const struct pagewalk_regs *r, uint64_t la,
		     uint64_t *gpa, uint64_t *left)
{
	int levels = (r->cr4 & CR4_LA57) ? 5 : 4;
	uint64_t table = r->cr3 & PTE_ADDR_MASK;
	for (int level = levels; level >= 1; level--) {
		unsigned shift = PAGE_SHIFT + 9 * (unsigned)(level - 1);
		uint64_t e;
		if (entry64(m, table, (la >> shift) & 511, &e) < 0 || !(e & PTE_P))
			return -1;
		/* PS in a PDPTE (1 GiB) or PDE (2 MiB) ends the walk. */
		if (level == 1 || ((level == 2 || level == 3) && (e & PTE_PS)))
			return done(e & PTE_ADDR_MASK, 1ULL << shift, la, gpa, left);
		table = e & PTE_ADDR_MASK;
	}
	return -1;
}

static int walk_pae(const struct guest_mem *m, const struct pagewalk_regs *r, uint64_t la,
		    uint64_t *gpa, uint64_t *left)
{
	uint64_t e;
	if (entry64(m, r->cr3 & PAE_PDPT_MASK, (la >> 30) & 3, &e) < 0 || !(e & PTE_P))
		return -1;
	if (entry64(m, e & PTE_ADDR_MASK, (la >> 21) & 511, &e) < 0 || !(e & PTE_P))
		return -1;
	if (e & PTE_PS)
		return done(e & PTE_ADDR_MASK, 1ULL << 21, la, gpa, left);
	if (entry64(m, e & PTE_ADDR_MASK, (la >> 12) & 511, &e) < 0 || !(e & PTE_P))
		return -1;
	return done(e & PTE_ADDR_MASK, PAGE_SIZE, la, gpa, left);
}

static int walk_32(const struct guest_mem *m, const struct pagewalk_regs *r, uint64_t la,
		   uint64_t *gpa, uint64_t *left)
{
	uint32_t e;
	if (gmem_read(m, (r->cr3 & 0xfffff000ULL) + ((la >> 22) & 0x3ff) * 4, &e, 4) < 0 ||
	    !(e & PTE_P))
		return -1;
	if ((e & PTE_PS) && (r->cr4 & CR4_PSE))
		return done((e & PSE_4M_ADDR) | PSE36_HIGH((uint64_t)e), 1ULL << 22, la, gpa, left);
	if (gmem_read(m, (e & 0xfffff000ULL) + ((la >> 12) & 0x3ff) * 4, &e, 4) < 0 ||
	    !(e & PTE_P))
		return -1;
	return done(e & 0xfffff000ULL, PAGE_SIZE, la, gpa, left);
}

int pagewalk_translate(const struct guest_mem *m, const struct pagewalk_regs *r, uint64_t la,
		       uint64_t *gpa, uint64_t *page_left)
{
	if (!(r->cr0 & CR0_PG)) /* linear is physical; 4 KiB steps for the caller */
		return done(la, PAGE_SIZE, la, gpa, page_left);
	if (r->efer & EFER_LMA)
		return walk_long(m, r, la, gpa, page_left);
	la &= 0xffffffffULL;
	if (r->cr4 & CR4_PAE)
		return walk_pae(m, r, la, gpa, page_left);
	return walk_32(m, r, la, gpa, page_left);
}
