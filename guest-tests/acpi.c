/* ACPI as a BIOS-era test guest finds it (rt/acpi_scan.h), as an ELF64
 * guest: the RSDP in 0xf0000-0xfffff, RSDT/XSDT, FADT, FACS and the PM
 * timer, which it then waits "wait_ms=N" milliseconds by (default 200).
 * Exits 0 when all is right, else the number of the failed check. */
#include "guest.h"
#include "acpi_scan.h"

int guest_main(const char *cmdline)
{
	int rc = acpi_guest_check("acpi", guest_cmdline_ulong(cmdline, "wait_ms", 200));
	if (rc == 0)
		guest_printf("acpi: ok\n");
	else
		guest_printf("acpi: check %d failed\n", rc);
	return rc;
}
