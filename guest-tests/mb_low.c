/* A Multiboot guest linked at 0x8000 (rt/guest_low.ld): checks that it was
 * loaded and that the information block, its command line and memory map
 * lie outside its image, then the flags, mem_upper ("expect_upper_kib=N")
 * and the command line, and finds ACPI (rt/acpi_scan.h, "wait_ms=N",
 * default 0). Exits 0 when all is right, else the number of the failed
 * check. */
#include "guest.h"
#include "acpi_scan.h"

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
} __attribute__((packed));

#define MBI_MEM (1U << 0)
#define MBI_CMDLINE (1U << 2)
#define MBI_MMAP (1U << 6)

extern char _image_start[], _image_end[];

int guest_main(const char *cmdline) { (void)cmdline; return 0; }

static int inside_image(uint32_t addr, uint32_t len)
{
	uint32_t lo = (uint32_t)(uintptr_t)_image_start, hi = (uint32_t)(uintptr_t)_image_end;
	return addr < hi && lo < addr + len;
}

int mb_main(uint32_t magic, const struct mb_info *mbi);
int mb_main(uint32_t magic, const struct mb_info *mbi)
{
	uint32_t at = (uint32_t)(uintptr_t)mbi;
	if (magic != 0x2BADB002U)
		return 20;
	if ((uintptr_t)_image_start != 0x8000)
		return 21;
	if (inside_image(at, sizeof(*mbi)))
		return 22;
	if ((mbi->flags & (MBI_MEM | MBI_CMDLINE | MBI_MMAP)) != (MBI_MEM | MBI_CMDLINE | MBI_MMAP))
		return 23;
	const char *cmdline = (const char *)(uintptr_t)mbi->cmdline;
	if (inside_image(mbi->cmdline, (uint32_t)strlen(cmdline) + 1) ||
	    inside_image(mbi->mmap_addr, mbi->mmap_length))
		return 24;
	guest_printf("mb_low: image at %x-%x, information at %x, mem_lower %u KiB, "
		     "mem_upper %u KiB, cmdline \"%s\"\n", (unsigned)(uintptr_t)_image_start,
		     (unsigned)(uintptr_t)_image_end, at, mbi->mem_lower, mbi->mem_upper, cmdline);
	unsigned long want = guest_cmdline_ulong(cmdline, "expect_upper_kib", 0);
	if (want && want != mbi->mem_upper)
		return 25;
	int rc = acpi_guest_check("mb_low", guest_cmdline_ulong(cmdline, "wait_ms", 0));
	if (rc)
		return rc;
	guest_printf("mb_low: ok\n");
	return 0;
}
