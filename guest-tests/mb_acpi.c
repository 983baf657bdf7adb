/* The ACPI checks of acpi.c (rt/acpi_scan.h) from a Multiboot guest:
 * 32-bit protected mode, paging off. "wait_ms=N" as there. */
#include "guest.h"
#include "acpi_scan.h"

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
} __attribute__((packed));

int guest_main(const char *cmdline) { (void)cmdline; return 0; }

int mb_main(uint32_t magic, const struct mb_info *mbi);
int mb_main(uint32_t magic, const struct mb_info *mbi)
{
	if (magic != 0x2BADB002U || !(mbi->flags & 4))
		return 20;
	const char *cmdline = (const char *)(uintptr_t)mbi->cmdline;
	int rc = acpi_guest_check("mb_acpi", guest_cmdline_ulong(cmdline, "wait_ms", 200));
	if (rc == 0)
		guest_printf("mb_acpi: ok\n");
	else
		guest_printf("mb_acpi: check %d failed\n", rc);
	return rc;
}
