/*
 * Finding ACPI the way BIOS-era test guests do (kvm-unit-tests'
 * lib/x86/acpi.c): scan 0xf0000-0xfffff in 16-byte steps for "RSD PTR ",
 * follow the RSDT (and the XSDT, when the RSDP's revision has one) to the
 * FADT, the FADT to the FACS and the PM timer, then read the timer.
 * Offsets are ACPI 6.4's (5.2.5.3, 5.2.7-5.2.10). Physical addresses are
 * used as pointers: Multiboot guests run with paging off and ELF64 guests
 * with the low 4 GiB identity-mapped. Shared by acpi.c and mb_acpi.c.
 */
#ifndef GUEST_ACPI_SCAN_H
#define GUEST_ACPI_SCAN_H

#include "guest.h"

#define ACPI_SCAN_START 0xf0000u
#define ACPI_SCAN_END 0x100000u
#define ACPI_PM_HZ 3579545u
#define FADT_FIRMWARE_CTRL 36
#define FADT_PM_TMR_BLK 76
#define FADT_PM_TMR_LEN 91
#define FADT_FLAGS 112
#define FADT_X_FIRMWARE_CTRL 132
#define FADT_TMR_VAL_EXT (1u << 8)

static inline const uint8_t *acpi_ptr(uint64_t pa) { return (const uint8_t *)(uintptr_t)pa; }
static inline uint32_t acpi_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t acpi_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static inline uint8_t acpi_sum(const uint8_t *p, uint32_t n)
{
	uint8_t s = 0;
	for (uint32_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static inline int acpi_table_ok(uint64_t pa, const char *sig)
{
	if (!pa || pa >= 0x100000000ull)
		return 0;
	const uint8_t *t = acpi_ptr(pa);
	uint32_t len = acpi_u32(t + 4);
	return memcmp(t, sig, 4) == 0 && len >= 36 && len < 0x10000 && acpi_sum(t, len) == 0;
}

/* The FADT among a root table's entries (width 4: RSDT, 8: XSDT), or 0. */
static inline uint64_t acpi_root_fadt(uint64_t root, unsigned width)
{
	const uint8_t *t = acpi_ptr(root);
	uint32_t len = acpi_u32(t + 4);
	for (uint32_t off = 36; off + width <= len; off += width) {
		uint64_t e = width == 4 ? acpi_u32(t + off) : acpi_u64(t + off);
		if (acpi_table_ok(e, "FACP"))
			return e;
	}
	return 0;
}

/* Read the PM timer: 32 bits with TMR_VAL_EXT, else 24. */
static inline uint32_t acpi_pm_read(uint16_t port, uint32_t mask) { return inl(port) & mask; }

/* Everything above; then the PM timer twice across a busy-wait, and a
 * wait of wait_ms by it (the caller's host measures that the run took at
 * least that long). 0, or the number of the failed check. name prefixes
 * every line printed. */
static inline int acpi_guest_check(const char *name, unsigned long wait_ms)
{
	uint64_t rsdp = 0;
	for (uint32_t a = ACPI_SCAN_START; a < ACPI_SCAN_END; a += 16) {
		const uint8_t *p = acpi_ptr(a);
		if (memcmp(p, "RSD PTR ", 8) == 0 && acpi_sum(p, 20) == 0) {
			rsdp = a;
			break;
		}
	}
	if (!rsdp)
		return 1;
	const uint8_t *r = acpi_ptr(rsdp);
	unsigned rev = r[15];
	if (rev >= 2 && acpi_sum(r, acpi_u32(r + 20)) != 0)
		return 2;
	uint64_t rsdt = acpi_u32(r + 16);
	if (!acpi_table_ok(rsdt, "RSDT"))
		return 3;
	uint64_t fadt = acpi_root_fadt(rsdt, 4);
	if (!fadt)
		return 4;
	if (rev >= 2) {
		uint64_t xsdt = acpi_u64(r + 24);
		if (!acpi_table_ok(xsdt, "XSDT"))
			return 5;
		if (acpi_root_fadt(xsdt, 8) != fadt)
			return 6;
	}
	const uint8_t *f = acpi_ptr(fadt);
	uint64_t facs = acpi_u32(f + FADT_FIRMWARE_CTRL);
	if (!facs)
		facs = acpi_u64(f + FADT_X_FIRMWARE_CTRL);
	if (!facs || facs % 64 || memcmp(acpi_ptr(facs), "FACS", 4) != 0 ||
	    acpi_u32(acpi_ptr(facs) + 4) < 64)
		return 7;
	guest_printf("%s: RSDP at %x (revision %u), RSDT at %x, FADT at %x, FACS at %x\n", name,
		     (unsigned)rsdp, rev, (unsigned)rsdt, (unsigned)fadt, (unsigned)facs);

	uint32_t port = acpi_u32(f + FADT_PM_TMR_BLK);
	if (!port || port > 0xffff || f[FADT_PM_TMR_LEN] != 4)
		return 8;
	uint32_t mask = acpi_u32(f + FADT_FLAGS) & FADT_TMR_VAL_EXT ? 0xffffffffu : 0xffffffu;
	/* Across a busy-wait of no exits: it moved, by less than 5 seconds. */
	uint32_t t0 = acpi_pm_read((uint16_t)port, mask);
	for (volatile unsigned i = 0; i < 1000000; i++)
		__asm__ volatile("pause");
	uint32_t t1 = acpi_pm_read((uint16_t)port, mask);
	uint32_t d = (t1 - t0) & mask;
	if (d == 0)
		return 9;
	if (d > 5 * ACPI_PM_HZ)
		return 10;
	/* Wait wait_ms by the timer; each read only ever moves it forward. */
	/* 32-bit arithmetic only: a 32-bit guest has no 64-bit division. */
	uint32_t ms = wait_ms > 600000 ? 600000 : (uint32_t)wait_ms;
	uint32_t want = ms * (ACPI_PM_HZ / 1000) + ms * (ACPI_PM_HZ % 1000) / 1000;
	uint32_t start = acpi_pm_read((uint16_t)port, mask), prev = start, done = 0;
	for (unsigned long n = 0; done < want; n++) {
		if (n > 500000000ul)
			return 11; /* stopped */
		uint32_t now = acpi_pm_read((uint16_t)port, mask);
		uint32_t step = (now - prev) & mask;
		if (step > mask / 2)
			return 12; /* went back */
		done += step;
		prev = now;
	}
	guest_printf("%s: PM timer at port %x (%u bits): %u ticks across a busy-wait, "
		     "waited %u ms by it\n", name, port, mask == 0xffffffffu ? 32 : 24, d,
		     done / (ACPI_PM_HZ / 1000));
	return 0;
}

#endif
