/*
 * ACPI tables built by minivmm, since there is no firmware to do it.
 *
 * acpi_build writes RSDT, XSDT, FADT, FACS, MADT and DSDT into the reserved
 * window [LAYOUT_ACPI, LAYOUT_RSDP) and the RSDP at LAYOUT_RSDP, where BIOS
 * scanners find it, for every kind of guest; it returns the RSDP's address
 * for the boot protocols that carry it (boot_params.acpi_rsdp_addr,
 * hvm_start_info.rsdp_paddr). The machine is "hardware-reduced" (ACPI 6.4,
 * 4.1): no PM1 blocks, no SCI; power-off and reset are the FADT's
 * sleep-control and reset registers, I/O ports served by devices/acpi_pm.c.
 * The DSDT holds _S5 and one Device per vm->platform[] entry, so it must run
 * after every device's create().
 *
 * The ACPI PM timer (devices/pm_timer.c) is named in the FADT only for test
 * guests. A hardware-reduced OSPM ignores the field (ACPI 6.4, 5.2.9), and
 * small guests that read it regardless measure time with it; but Linux
 * takes it whatever the flag says (arch/x86/kernel/acpi/boot.c) and then
 * spends a 30 ms PIT calibration verifying it at every boot
 * (drivers/clocksource/acpi_pm.c) for a clock it never selects over
 * kvm-clock. docs/boot.md section 5 has the reasoning.
 */
#ifndef MINIVMM_ACPI_H
#define MINIVMM_ACPI_H

#include <stdint.h>

struct vm;

/* FADT registers (ACPI 6.4, 4.8.3.7 sleep control/status, 4.8.3.6 reset). */
#define ACPI_PM_PORT_BASE 0x600
#define ACPI_PM_SLEEP_CONTROL 0x600
#define ACPI_PM_SLEEP_STATUS 0x601
#define ACPI_PM_RESET 0x602
#define ACPI_PM_NPORTS 3
#define ACPI_PM_RESET_VALUE 0x01
/* Sleep control register: SLP_TYPx in bits 4:2, SLP_EN is bit 5 (4.8.3.7). */
#define ACPI_SLEEP_TYP_SHIFT 2
#define ACPI_SLEEP_TYP_MASK 0x7
#define ACPI_SLEEP_EN 0x20
/* The SLP_TYP value our _S5 object announces for soft-off. */
#define ACPI_S5_SLP_TYP 5

/* The ACPI PM timer (ACPI 6.4, 4.8.3.3): a free-running counter at
 * 3.579545 MHz, 32 bits wide (the FADT's TMR_VAL_EXT flag), read as a
 * dword at this port. 0x608 is where QEMU's PIIX4 PM block puts it. */
#define ACPI_PM_TIMER_PORT 0x608
#define ACPI_PM_TIMER_LEN 4
#define ACPI_PM_TIMER_HZ 3579545U

enum acpi_guest {
	ACPI_GUEST_LINUX, /* bzImage, vmlinux: no PM timer in the FADT */
	ACPI_GUEST_TEST,  /* Multiboot and ELF64 test guests: with the PM timer */
};

/* Claims [LAYOUT_ACPI, LAYOUT_ACPI_END) and fills it. Returns the RSDP's
 * guest-physical address (LAYOUT_RSDP), or 0 after printing why. */
uint64_t acpi_build(struct vm *vm, enum acpi_guest guest);

#endif
