/*
 * ACPI table builder. Section numbers are ACPI 6.4's: tables in chapter 5.2,
 * AML encoding in chapter 20, resource descriptors in 6.4.
 */
#include "vmm/acpi.h"
#include "vmm/layout.h"
#include "vmm/loader.h"
#include "lib/log.h"
#include "vmm/vm.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define ACPI_OEM_ID "MINVMM"
#define ACPI_OEM_TABLE_ID "MINIVMM "
#define ACPI_CREATOR_ID "MVMM"

/* ---- a byte buffer with bounds ---- */

struct abuf {
	uint8_t *p;
	size_t len, cap;
	bool overflow;
};

static void put(struct abuf *b, const void *data, size_t n)
{
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void put8(struct abuf *b, uint8_t v) { put(b, &v, 1); }
static void put16(struct abuf *b, uint16_t v) { put(b, &v, 2); }
static void put32(struct abuf *b, uint32_t v) { put(b, &v, 4); }
static void put64(struct abuf *b, uint64_t v) { put(b, &v, 8); }

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)(0 - sum);
}

/* ---- system description table header (5.2.6) ---- */

#define SDT_HEADER_SIZE 36
#define SDT_LENGTH_OFF 4
#define SDT_CHECKSUM_OFF 9

static size_t sdt_begin(struct abuf *b, const char *sig, uint8_t rev)
{
	size_t start = b->len;
	put(b, sig, 4);
	put32(b, 0); /* length, patched by sdt_end */
	put8(b, rev);
	put8(b, 0); /* checksum */
	put(b, ACPI_OEM_ID, 6);
	put(b, ACPI_OEM_TABLE_ID, 8);
	put32(b, 1); /* OEM revision */
	put(b, ACPI_CREATOR_ID, 4);
	put32(b, 1); /* creator revision */
	return start;
}

static void sdt_end(struct abuf *b, size_t start)
{
	if (b->overflow)
		return;
	uint32_t len = (uint32_t)(b->len - start);
	memcpy(b->p + start + SDT_LENGTH_OFF, &len, 4);
	b->p[start + SDT_CHECKSUM_OFF] = checksum(b->p + start, len);
}

/* Generic Address Structure (5.2.3.2) for an I/O port register. */
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1
#define GAS_ACCESS_DWORD 3

static void put_gas_io(struct abuf *b, uint16_t port, uint8_t bits, uint8_t access)
{
	put8(b, GAS_SYSTEM_IO);
	put8(b, bits);
	put8(b, 0); /* bit offset */
	put8(b, access);
	put64(b, port);
}

static void put_gas_io8(struct abuf *b, uint16_t port)
{
	put_gas_io(b, port, 8, GAS_ACCESS_BYTE);
}

static void put_gas_none(struct abuf *b)
{
	static const uint8_t zero[12];
	put(b, zero, sizeof(zero));
}

/* ---- AML (chapter 20) ---- */

#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP 0x82 /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR '\\'

/* PkgLength (20.2.4) counts itself; the body is built first at start + 4
 * and moved down once the length, and so its encoding size, is known. */
#define AML_PKGLEN_RESERVE 4

static size_t aml_pkg_begin(struct abuf *b)
{
	size_t at = b->len;
	put32(b, 0);
	return at;
}

static void aml_pkg_end(struct abuf *b, size_t at)
{
	if (b->overflow)
		return;
	size_t body = b->len - at - AML_PKGLEN_RESERVE;
	size_t n = 1;
	while (n < 4 && body + n >= (n == 1 ? 1u << 6 : 1u << (4 + 8 * (n - 1))))
		n++;
	size_t total = body + n;
	if (total >= 1u << 28) {
		b->overflow = true;
		return;
	}
	memmove(b->p + at + n, b->p + at + AML_PKGLEN_RESERVE, body);
	if (n == 1) {
		b->p[at] = (uint8_t)total;
	} else {
		b->p[at] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
		for (size_t i = 1; i < n; i++)
			b->p[at + i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	b->len = at + n + body;
}

/* A NameSeg is four characters, padded with '_' (20.2.2). */
static void aml_nameseg(struct abuf *b, const char *name)
{
	char seg[4] = {'_', '_', '_', '_'};
	for (int i = 0; i < 4 && name[i]; i++)
		seg[i] = name[i];
	put(b, seg, 4);
}

static void aml_integer(struct abuf *b, uint64_t v)
{
	if (v == 0) {
		put8(b, AML_ZERO_OP);
	} else if (v == 1) {
		put8(b, AML_ONE_OP);
	} else if (v <= 0xff) {
		put8(b, AML_BYTE_PREFIX);
		put8(b, (uint8_t)v);
	} else if (v <= 0xffff) {
		put8(b, AML_WORD_PREFIX);
		put16(b, (uint16_t)v);
	} else if (v <= 0xffffffff) {
		put8(b, AML_DWORD_PREFIX);
		put32(b, (uint32_t)v);
	} else {
		put8(b, AML_QWORD_PREFIX);
		put64(b, v);
	}
}

static void aml_name_integer(struct abuf *b, const char *name, uint64_t v)
{
	put8(b, AML_NAME_OP);
	aml_nameseg(b, name);
	aml_integer(b, v);
}

static void aml_name_string(struct abuf *b, const char *name, const char *s)
{
	put8(b, AML_NAME_OP);
	aml_nameseg(b, name);
	put8(b, AML_STRING_PREFIX);
	put(b, s, strlen(s) + 1);
}

/* EISA id "PNP0501" compressed to 32 bits (6.1.5 _HID, "EISAID"). */
static uint32_t eisa_id(const char *id)
{
	uint32_t v = (uint32_t)((id[0] - 0x40) & 0x1f) << 26 |
		     (uint32_t)((id[1] - 0x40) & 0x1f) << 21 |
		     (uint32_t)((id[2] - 0x40) & 0x1f) << 16;
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		uint32_t h = (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
		v |= h << (4 * (6 - i));
	}
	/* Stored big-endian, as the spec's byte order of the id. */
	return __builtin_bswap32(v);
}

/* Resource descriptors (6.4.2 small, 6.4.3 large items). */
#define RES_IO_PORT 0x47         /* small item 0x08, length 7 */
#define RES_IO_DECODE16 0x01
#define RES_IRQ_NOFLAGS 0x22     /* small item 0x04, length 2 */
#define RES_END_TAG 0x79         /* small item 0x0f, length 1 */
#define RES_MEMORY32_FIXED 0x86  /* large item 0x06 */
#define RES_MEMORY32_FIXED_LEN 9
#define RES_MEM_READ_WRITE 0x01
#define RES_EXT_IRQ 0x89         /* large item 0x09 */
#define RES_EXT_IRQ_LEN 6
#define RES_EXT_IRQ_CONSUMER 0x01
#define RES_EXT_IRQ_EDGE 0x02
#define RES_EXT_IRQ_SHARED 0x08

struct crs {
	uint64_t mmio_base, mmio_size;
	uint64_t pio_base, pio_size;
	uint32_t irq;
	bool irq_edge, legacy_irq;
};

/* Name(_CRS, ResourceTemplate() {...}): a Buffer of descriptors. */
static void aml_crs(struct abuf *b, const struct crs *c)
{
	uint8_t tmp[64];
	struct abuf r = {.p = tmp, .cap = sizeof(tmp)};
	if (c->mmio_size) {
		put8(&r, RES_MEMORY32_FIXED);
		put16(&r, RES_MEMORY32_FIXED_LEN);
		put8(&r, RES_MEM_READ_WRITE);
		put32(&r, (uint32_t)c->mmio_base);
		put32(&r, (uint32_t)c->mmio_size);
	}
	if (c->pio_size) {
		put8(&r, RES_IO_PORT);
		put8(&r, RES_IO_DECODE16);
		put16(&r, (uint16_t)c->pio_base);
		put16(&r, (uint16_t)c->pio_base);
		put8(&r, 1); /* alignment */
		put8(&r, (uint8_t)c->pio_size);
	}
	if (c->irq && c->legacy_irq) {
		put8(&r, RES_IRQ_NOFLAGS);
		put16(&r, (uint16_t)(1u << c->irq));
	} else if (c->irq) {
		put8(&r, RES_EXT_IRQ);
		put16(&r, RES_EXT_IRQ_LEN);
		/* Active high; level lines may be shared, edge ones not. */
		put8(&r, RES_EXT_IRQ_CONSUMER |
			 (c->irq_edge ? RES_EXT_IRQ_EDGE : RES_EXT_IRQ_SHARED));
		put8(&r, 1); /* one interrupt in the table */
		put32(&r, c->irq);
	}
	put8(&r, RES_END_TAG);
	put8(&r, 0); /* checksum 0: "treated as if the checksum is valid" */
	if (r.overflow) {
		b->overflow = true;
		return;
	}
	put8(b, AML_NAME_OP);
	aml_nameseg(b, "_CRS");
	put8(b, AML_BUFFER_OP);
	size_t pkg = aml_pkg_begin(b);
	aml_integer(b, r.len);
	put(b, tmp, r.len);
	aml_pkg_end(b, pkg);
}

static void aml_device_begin(struct abuf *b, const char *name, size_t *pkg)
{
	put8(b, AML_EXT_OP_PREFIX);
	put8(b, AML_DEVICE_OP);
	*pkg = aml_pkg_begin(b);
	aml_nameseg(b, name);
}

/* NameSeg characters: a leading 'A'-'Z' or '_', then digits too (20.2.2). */
static bool nameseg_ok(const char *n)
{
	size_t len = strnlen(n, 8);
	if (len == 0 || len > 4)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];
		bool ok = (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

#define COM1_PORT 0x3f8
#define COM1_NPORTS 8
#define COM1_IRQ 4

static void build_dsdt_body(struct abuf *b, const struct vm *vm)
{
	/* \_S5: Package { SLP_TYPa, SLP_TYPb, reserved, reserved } (7.4.2). */
	put8(b, AML_NAME_OP);
	put8(b, AML_ROOT_CHAR);
	aml_nameseg(b, "_S5_");
	put8(b, AML_PACKAGE_OP);
	size_t pkg = aml_pkg_begin(b);
	put8(b, 4);
	aml_integer(b, ACPI_S5_SLP_TYP);
	aml_integer(b, ACPI_S5_SLP_TYP);
	aml_integer(b, 0);
	aml_integer(b, 0);
	aml_pkg_end(b, pkg);

	put8(b, AML_SCOPE_OP);
	size_t scope = aml_pkg_begin(b);
	put8(b, AML_ROOT_CHAR);
	aml_nameseg(b, "_SB_");

	size_t dev;
	aml_device_begin(b, "COM1", &dev);
	aml_name_integer(b, "_HID", eisa_id("PNP0501"));
	aml_name_integer(b, "_UID", 1);
	aml_crs(b, &(struct crs){.pio_base = COM1_PORT, .pio_size = COM1_NPORTS,
				 .irq = COM1_IRQ, .irq_edge = true, .legacy_irq = true});
	aml_pkg_end(b, dev);

	for (int i = 0; i < vm->n_platform; i++) {
		const struct platform_dev *p = &vm->platform[i];
		char name[5];
		bool unique = true;
		for (int j = 0; j < i; j++)
			if (strncmp(vm->platform[j].name, p->name, sizeof(p->name)) == 0)
				unique = false;
		if (unique && nameseg_ok(p->name))
			snprintf(name, sizeof(name), "%.4s", p->name);
		else
			/* i < VM_MAX_PLATFORM_DEVS: three hex digits suffice. */
			snprintf(name, sizeof(name), "D%03X", (unsigned)i & 0xfffU);
		aml_device_begin(b, name, &dev);
		aml_name_string(b, "_HID", p->hid);
		/* _UID: unique among devices of the same _HID (6.1.12). */
		aml_name_integer(b, "_UID", (uint64_t)i);
		aml_crs(b, &(struct crs){.mmio_base = p->mmio_base, .mmio_size = p->mmio_size,
					 .pio_base = p->pio_base, .pio_size = p->pio_size,
					 .irq = p->irq, .irq_edge = p->irq_edge});
		aml_pkg_end(b, dev);
	}
	aml_pkg_end(b, scope);
}

/* ---- MADT (5.2.12) ---- */

#define MADT_PCAT_COMPAT 0x1 /* an 8259 pair is present (KVM's in-kernel PIC) */
#define MADT_LAPIC 0
#define MADT_LAPIC_LEN 8
#define MADT_LAPIC_ENABLED 0x1
#define MADT_IOAPIC 1
#define MADT_IOAPIC_LEN 12
#define MADT_ISO 2
#define MADT_ISO_LEN 10
#define MADT_LAPIC_NMI 4
#define MADT_LAPIC_NMI_LEN 6
/* MPS INTI flags (5.2.12.5, table 5.50). */
#define MPS_POLARITY_HIGH 0x1
#define MPS_TRIGGER_EDGE (0x1 << 2)
#define MPS_TRIGGER_LEVEL (0x3 << 2)
#define ISA_IRQS 16

static void build_madt(struct abuf *b, const struct vm *vm)
{
	size_t t = sdt_begin(b, "APIC", 5);
	put32(b, (uint32_t)LAYOUT_LAPIC);
	put32(b, MADT_PCAT_COMPAT);
	for (int i = 0; i < vm->n_vcpus; i++) {
		put8(b, MADT_LAPIC);
		put8(b, MADT_LAPIC_LEN);
		put8(b, (uint8_t)i); /* ACPI processor UID */
		put8(b, (uint8_t)i); /* APIC id, as CPUID reports it (vmm/vcpu.c) */
		put32(b, MADT_LAPIC_ENABLED);
	}
	put8(b, MADT_IOAPIC);
	put8(b, MADT_IOAPIC_LEN);
	put8(b, 0); /* IOAPIC id: KVM's IOAPIC resets to 0 */
	put8(b, 0);
	put32(b, (uint32_t)LAYOUT_IOAPIC);
	put32(b, 0); /* GSI base */
	/* ISA lines are edge-triggered unless overridden: say so for the
	 * level-triggered devices that took one (KVM routes ISA GSI n to
	 * IOAPIC pin n, so no other override is needed). */
	for (int i = 0; i < vm->n_platform; i++) {
		const struct platform_dev *p = &vm->platform[i];
		if (!p->irq || p->irq >= ISA_IRQS || p->irq_edge)
			continue;
		put8(b, MADT_ISO);
		put8(b, MADT_ISO_LEN);
		put8(b, 0); /* bus: ISA */
		put8(b, (uint8_t)p->irq);
		put32(b, p->irq);
		put16(b, MPS_POLARITY_HIGH | MPS_TRIGGER_LEVEL);
	}
	/* LINT1 of every processor is the NMI pin, as vcpu.c programs it. */
	put8(b, MADT_LAPIC_NMI);
	put8(b, MADT_LAPIC_NMI_LEN);
	put8(b, 0xff); /* all processors */
	put16(b, 0);   /* conforms to the bus */
	put8(b, 1);    /* LINT1 */
	sdt_end(b, t);
}

/* ---- FADT (5.2.9) and FACS (5.2.10) ---- */

#define FADT_REVISION 6
#define FADT_MINOR_REVISION 4
#define FADT_WBINVD (1u << 0)
#define FADT_PWR_BUTTON (1u << 4)  /* no fixed-feature power button */
#define FADT_SLP_BUTTON (1u << 5)
#define FADT_TMR_VAL_EXT (1u << 8) /* the PM timer is 32 bits wide */
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_HW_REDUCED_ACPI (1u << 20)
/* IA-PC boot architecture flags (5.2.9.3): no 8042 bit, so the kernel does
 * not probe a keyboard controller; no VGA; no CMOS RTC (kvm-clock gives the
 * wall clock, and every RTC access would be an exit). */
#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)
/* Byte offsets of the fixed fields (table 5.9). */
#define FADT_ACPI_ENABLE_OFF 52
#define FADT_PM_TMR_BLK_OFF 76
#define FADT_PM_TMR_LEN_OFF 91
#define FADT_IAPC_BOOT_ARCH_OFF 109

static void put_zeros(struct abuf *b, size_t n)
{
	static const uint8_t zeros[64];
	while (n && !b->overflow) {
		size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
		put(b, zeros, k);
		n -= k;
	}
}

/* pm_timer: name the PM timer block (test guests only, see acpi.h). */
static void build_fadt(struct abuf *b, uint64_t dsdt, uint64_t facs, bool pm_timer)
{
	size_t t = sdt_begin(b, "FACP", FADT_REVISION);
	/* A FACS is optional when hardware-reduced (5.2.10) but harmless, and
	 * guests written for PC firmware follow FIRMWARE_CTRL to it. It lies
	 * below 4 GiB, so FIRMWARE_CTRL holds it and X_FIRMWARE_CTRL is 0: at
	 * most one of the two may be non-zero (5.2.9, table 5.9), and Linux
	 * warns about a FADT that sets both. */
	put32(b, (uint32_t)facs);  /* FIRMWARE_CTRL */
	put32(b, (uint32_t)dsdt);  /* DSDT */
	put8(b, 0);                /* reserved */
	put8(b, 0);                /* preferred PM profile: unspecified */
	put16(b, 0);               /* SCI_INT: none (hardware-reduced) */
	put32(b, 0);               /* SMI_CMD */
	/* ACPI_ENABLE .. CENTURY: no legacy blocks, but for the PM timer. */
	put_zeros(b, FADT_PM_TMR_BLK_OFF - FADT_ACPI_ENABLE_OFF);
	put32(b, pm_timer ? ACPI_PM_TIMER_PORT : 0);
	put_zeros(b, FADT_PM_TMR_LEN_OFF - (FADT_PM_TMR_BLK_OFF + 4));
	put8(b, pm_timer ? ACPI_PM_TIMER_LEN : 0);
	put_zeros(b, FADT_IAPC_BOOT_ARCH_OFF - (FADT_PM_TMR_LEN_OFF + 1));
	put16(b, IAPC_VGA_NOT_PRESENT | IAPC_CMOS_RTC_NOT_PRESENT);
	put8(b, 0);                /* reserved */
	put32(b, FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_RESET_REG_SUP |
		 FADT_HW_REDUCED_ACPI | (pm_timer ? FADT_TMR_VAL_EXT : 0));
	put_gas_io8(b, ACPI_PM_RESET);
	put8(b, ACPI_PM_RESET_VALUE);
	put16(b, 0);               /* ARM boot arch */
	put8(b, FADT_MINOR_REVISION);
	put64(b, 0);               /* X_FIRMWARE_CTRL: see FIRMWARE_CTRL */
	put64(b, dsdt);            /* X_DSDT */
	for (int i = 0; i < 5; i++) /* X_PM1a_EVT_BLK .. X_PM2_CNT_BLK */
		put_gas_none(b);
	if (pm_timer)
		put_gas_io(b, ACPI_PM_TIMER_PORT, 32, GAS_ACCESS_DWORD);
	else
		put_gas_none(b);
	put_gas_none(b);           /* X_GPE0_BLK */
	put_gas_none(b);           /* X_GPE1_BLK */
	put_gas_io8(b, ACPI_PM_SLEEP_CONTROL);
	put_gas_io8(b, ACPI_PM_SLEEP_STATUS);
	put(b, "MINIVMM\0", 8);    /* hypervisor vendor identity */
	sdt_end(b, t);
}

/* The FACS has no checksum; it must be 64-byte aligned (5.2.10). */
#define FACS_LEN 64
#define FACS_ALIGN 64
#define FACS_VERSION 2

static void build_facs(struct abuf *b)
{
	put(b, "FACS", 4);
	put32(b, FACS_LEN);
	put32(b, 0);  /* hardware signature: the machine never changes */
	put32(b, 0);  /* firmware waking vector: no S3 */
	put32(b, 0);  /* global lock */
	put32(b, 0);  /* flags: no S4BIOS, no 64-bit wake */
	put64(b, 0);  /* X firmware waking vector */
	put8(b, FACS_VERSION);
	put_zeros(b, 3);
	put32(b, 0);  /* OSPM flags */
	put_zeros(b, 24);
}

/* ---- RSDP (5.2.5.3), RSDT (5.2.7) and XSDT (5.2.8) ---- */

#define RSDP_REVISION 2
#define RSDP_V1_LEN 20
#define RSDP_LEN 36
#define RSDP_CHECKSUM_OFF 8
#define RSDP_EXT_CHECKSUM_OFF 32

static void align_to(struct abuf *b, size_t align)
{
	size_t to = (b->len + align - 1) & ~(align - 1);
	put_zeros(b, to - b->len);
}

uint64_t acpi_build(struct vm *vm, enum acpi_guest guest)
{
	uint64_t size = LAYOUT_ACPI_END - LAYOUT_ACPI;
	if (loader_claim(vm, LAYOUT_ACPI, size, "the ACPI table area") < 0)
		return 0;
	uint8_t *base = gmem_ptr(&vm->mem, LAYOUT_ACPI, size);
	memset(base, 0, size);
	/* The tables stop at the RSDP, far below the reset vector. */
	struct abuf b = {.p = base, .cap = LAYOUT_RSDP - LAYOUT_ACPI};

	size_t dsdt = b.len;
	size_t t = sdt_begin(&b, "DSDT", 2);
	build_dsdt_body(&b, vm);
	sdt_end(&b, t);
	align_to(&b, FACS_ALIGN);
	size_t facs = b.len;
	build_facs(&b);
	align_to(&b, 16);
	size_t fadt = b.len;
	build_fadt(&b, LAYOUT_ACPI + dsdt, LAYOUT_ACPI + facs, guest == ACPI_GUEST_TEST);
	align_to(&b, 16);
	size_t madt = b.len;
	build_madt(&b, vm);
	align_to(&b, 16);
	/* Both roots list the same tables: Linux takes the XSDT, and small
	 * guests (kvm-unit-tests) only follow the 32-bit RSDT. */
	size_t rsdt = b.len;
	t = sdt_begin(&b, "RSDT", 1);
	put32(&b, (uint32_t)(LAYOUT_ACPI + fadt));
	put32(&b, (uint32_t)(LAYOUT_ACPI + madt));
	sdt_end(&b, t);
	align_to(&b, 16);
	size_t xsdt = b.len;
	t = sdt_begin(&b, "XSDT", 1);
	put64(&b, LAYOUT_ACPI + fadt);
	put64(&b, LAYOUT_ACPI + madt);
	sdt_end(&b, t);
	if (b.overflow) {
		log_error("ACPI tables do not fit in 0x%llx-0x%llx (%d platform devices)",
			  LAYOUT_ACPI, LAYOUT_RSDP, vm->n_platform);
		return 0;
	}

	uint8_t *rp = base + (LAYOUT_RSDP - LAYOUT_ACPI);
	struct abuf r = {.p = rp, .cap = RSDP_LEN};
	put(&r, "RSD PTR ", 8);
	put8(&r, 0); /* checksum of the first 20 bytes */
	put(&r, ACPI_OEM_ID, 6);
	put8(&r, RSDP_REVISION);
	put32(&r, (uint32_t)(LAYOUT_ACPI + rsdt));
	put32(&r, RSDP_LEN);
	put64(&r, LAYOUT_ACPI + xsdt);
	put8(&r, 0); /* extended checksum */
	put_zeros(&r, 3);
	rp[RSDP_CHECKSUM_OFF] = checksum(rp, RSDP_V1_LEN);
	rp[RSDP_EXT_CHECKSUM_OFF] = checksum(rp, RSDP_LEN);
	log_debug("ACPI: RSDP at 0x%llx, %zu bytes of tables, %d platform devices%s",
		  LAYOUT_RSDP, b.len, vm->n_platform,
		  guest == ACPI_GUEST_TEST ? ", PM timer" : "");
	return LAYOUT_RSDP;
}
