/* The ACPI tables (vmm/acpi.c) as a BIOS-era guest finds them: a scan of
 * 0xf0000-0xfffff in 16-byte steps for the RSDP (as kvm-unit-tests'
 * lib/x86/acpi.c does), then RSDT and XSDT to the FADT, the FADT to the
 * FACS, DSDT and PM timer; and the PM timer port (devices/pm_timer.c).
 * Offsets are restated from ACPI 6.4 (5.2.5.3, 5.2.7-5.2.10, 4.8.3.3) on
 * purpose: the test checks the tables against the spec, not against the
 * builder's own constants. */
#include "tests/unit/unit.h"
#include "tests/unit/test_vm_fake.h"
#include "devices/pm_timer.h"
#include "vmm/acpi.h"
#include "vmm/boot_linux.h"
#include "vmm/loader.h"
#include "lib/clock.h"

#include <time.h>

#define SCAN_START 0xf0000
#define SCAN_END 0x100000
#define RAM (16ULL << 20)
#define FADT_FIRMWARE_CTRL 36
#define FADT_DSDT 40
#define FADT_PM_TMR_BLK 76
#define FADT_PM_TMR_LEN 91
#define FADT_FLAGS 112
#define FADT_X_FIRMWARE_CTRL 132
#define FADT_X_PM_TMR_BLK 208
#define FLAG_TMR_VAL_EXT (1u << 8)
#define FLAG_HW_REDUCED (1u << 20)
#define PM_TIMER_HZ 3579545ULL


static struct vm *vm_new(void)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	ck_assert_ptr_nonnull(vm);
	ck_assert_int_eq(gmem_init(&vm->mem, RAM), 0);
	vm->n_vcpus = 2;
	loader_reset_claims();
	return vm;
}

static void vm_free(struct vm *vm)
{
	gmem_free(&vm->mem);
	free(vm);
}

static const uint8_t *at(struct vm *vm, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = gmem_ptr(&vm->mem, gpa, len);
	ck_assert_msg(p != NULL, "0x%llx+%llu is not RAM", (unsigned long long)gpa,
		      (unsigned long long)len);
	return p;
}

static uint32_t u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* The RSDP as a scanner finds it: the first 16-byte boundary in the F
 * segment holding the signature with a valid 20-byte checksum. */
static uint64_t scan_rsdp(struct vm *vm)
{
	for (uint64_t a = SCAN_START; a < SCAN_END; a += 16) {
		const uint8_t *p = at(vm, a, 20);
		if (memcmp(p, "RSD PTR ", 8) == 0 && sum(p, 20) == 0)
			return a;
	}
	return 0;
}

/* A table's header, checked: signature, length, checksum. */
static const uint8_t *table(struct vm *vm, uint64_t gpa, const char *sig)
{
	ck_assert_uint_ne(gpa, 0);
	const uint8_t *h = at(vm, gpa, 36);
	ck_assert_msg(memcmp(h, sig, 4) == 0, "at 0x%llx: not %s", (unsigned long long)gpa, sig);
	uint32_t len = u32(h + 4);
	ck_assert_uint_ge(len, 36);
	const uint8_t *t = at(vm, gpa, len);
	ck_assert_msg(sum(t, len) == 0, "%s checksum", sig);
	return t;
}

/* Find sig among a root table's entries (4 or 8 bytes wide). */
static uint64_t root_find(struct vm *vm, const uint8_t *root, unsigned width, const char *sig)
{
	uint32_t len = u32(root + 4);
	for (uint32_t off = 36; off + width <= len; off += width) {
		uint64_t e = width == 4 ? u32(root + off) : u64(root + off);
		if (memcmp(at(vm, e, 4), sig, 4) == 0)
			return e;
	}
	return 0;
}

static const uint8_t *check_rsdp_and_fadt(struct vm *vm)
{
	uint64_t rsdp = scan_rsdp(vm);
	ck_assert_uint_ne(rsdp, 0);
	ck_assert_uint_eq(rsdp % 16, 0);
	const uint8_t *r = at(vm, rsdp, 36);
	ck_assert_uint_ge(r[15], 2);        /* revision: the extended fields exist */
	ck_assert_uint_eq(u32(r + 20), 36); /* length */
	ck_assert_uint_eq(sum(r, 36), 0);   /* extended checksum */

	const uint8_t *rsdt = table(vm, u32(r + 16), "RSDT");
	const uint8_t *xsdt = table(vm, u64(r + 24), "XSDT");
	uint64_t fadt_r = root_find(vm, rsdt, 4, "FACP");
	uint64_t fadt_x = root_find(vm, xsdt, 8, "FACP");
	ck_assert_uint_ne(fadt_r, 0);
	ck_assert_uint_eq(fadt_r, fadt_x);
	ck_assert_uint_eq(root_find(vm, rsdt, 4, "APIC"), root_find(vm, xsdt, 8, "APIC"));
	table(vm, root_find(vm, rsdt, 4, "APIC"), "APIC");

	const uint8_t *fadt = table(vm, fadt_r, "FACP");
	ck_assert_uint_ge(u32(fadt + 4), 244);
	table(vm, u32(fadt + FADT_DSDT), "DSDT");
	uint32_t facs = u32(fadt + FADT_FIRMWARE_CTRL);
	ck_assert_uint_ne(facs, 0);
	ck_assert_uint_eq(facs % 64, 0);    /* 5.2.10: 64-byte aligned */
	/* At most one of FIRMWARE_CTRL and X_FIRMWARE_CTRL is non-zero (5.2.9). */
	ck_assert_uint_eq(u64(fadt + FADT_X_FIRMWARE_CTRL), 0);
	const uint8_t *f = at(vm, facs, 64);
	ck_assert(memcmp(f, "FACS", 4) == 0);
	ck_assert_uint_eq(u32(f + 4), 64);
	ck_assert(u32(fadt + FADT_FLAGS) & FLAG_HW_REDUCED);
	return fadt;
}

START_TEST(test_test_guest_tables)
{
	struct vm *vm = vm_new();
	uint64_t rsdp = acpi_build(vm, ACPI_GUEST_TEST);
	ck_assert_uint_eq(rsdp, scan_rsdp(vm));
	ck_assert_uint_ge(rsdp, SCAN_START);
	const uint8_t *fadt = check_rsdp_and_fadt(vm);
	ck_assert_uint_eq(u32(fadt + FADT_PM_TMR_BLK), ACPI_PM_TIMER_PORT);
	ck_assert_uint_eq(fadt[FADT_PM_TMR_LEN], 4);
	ck_assert(u32(fadt + FADT_FLAGS) & FLAG_TMR_VAL_EXT);
	const uint8_t *g = fadt + FADT_X_PM_TMR_BLK;
	ck_assert_uint_eq(g[0], 1);  /* system I/O */
	ck_assert_uint_eq(g[1], 32); /* bit width */
	ck_assert_uint_eq(u64(g + 4), ACPI_PM_TIMER_PORT);
	vm_free(vm);
}
END_TEST

/* Linux takes the PM timer whatever HW_REDUCED_ACPI says: its tables
 * leave it out (vmm/acpi.h), and the reset stub survives the RSDP. */
START_TEST(test_linux_tables)
{
	struct vm *vm = vm_new();
	ck_assert_uint_ne(acpi_build(vm, ACPI_GUEST_LINUX), 0);
	ck_assert_int_eq(boot_linux_reset_vector(vm), 0);
	const uint8_t *fadt = check_rsdp_and_fadt(vm);
	ck_assert_uint_eq(u32(fadt + FADT_PM_TMR_BLK), 0);
	ck_assert_uint_eq(fadt[FADT_PM_TMR_LEN], 0);
	ck_assert_uint_eq(u64(fadt + FADT_X_PM_TMR_BLK + 4), 0);
	ck_assert(!(u32(fadt + FADT_FLAGS) & FLAG_TMR_VAL_EXT));
	/* The stub at F000:FFF0 starts "mov al, 1". */
	ck_assert_uint_eq(at(vm, 0xffff0, 1)[0], 0xb0);
	vm_free(vm);
}
END_TEST

/* Something already where the tables go: refused, not overwritten. */
START_TEST(test_area_taken)
{
	struct vm *vm = vm_new();
	ck_assert_int_eq(loader_claim(vm, 0xe8000, 0x100, "an image"), 0);
	ck_assert_uint_eq(acpi_build(vm, ACPI_GUEST_TEST), 0);
	vm_free(vm);
}
END_TEST

START_TEST(test_pm_timer_rate)
{
	ck_assert_uint_eq(pm_timer_ticks(0), 0);
	ck_assert_uint_eq(pm_timer_ticks(1000000000ULL), PM_TIMER_HZ);
	ck_assert_uint_eq(pm_timer_ticks(500000000ULL), PM_TIMER_HZ / 2);
	ck_assert_uint_eq(pm_timer_ticks(1000ULL), 3); /* 3.58 ticks a microsecond */
	/* 32 bits wrap after 2^32 / 3579545 = 1199.86 s. */
	uint64_t ns = 1300ULL * 1000000000ULL;
	ck_assert_uint_eq(pm_timer_ticks(ns), (uint32_t)(1300ULL * PM_TIMER_HZ));
}
END_TEST

static uint32_t pm_read(struct fake_vm *v)
{
	uint32_t x = 0;
	ck_assert(bus_dispatch(&v->vm.pio, ACPI_PM_TIMER_PORT, (uint8_t *)&x, 4, false));
	return x;
}

/* Two reads across a sleep advance by the host time between them, at
 * 3.579545 MHz: bounded by the clock read just inside and just outside
 * the pair, so a loaded machine cannot make it fail. */
START_TEST(test_pm_timer_port)
{
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	struct fake_vm v;
	fake_vm_init(&v, &cfg, 8);
	ck_assert_int_eq(device_create(&v.vm, "pm-timer"), 0);
	uint64_t t0 = clock_now_ns();
	uint32_t a = pm_read(&v);
	uint64_t t1 = clock_now_ns();
	nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
	uint64_t t2 = clock_now_ns();
	uint32_t b = pm_read(&v);
	uint64_t t3 = clock_now_ns();
	uint32_t d = b - a;
	ck_assert_uint_ge(d + 1, pm_timer_ticks(t2 - t1));
	ck_assert_uint_le(d, pm_timer_ticks(t3 - t0) + 1);
	ck_assert_uint_ge(d, pm_timer_ticks(20 * 1000 * 1000) - 1);
	/* A byte read sees the low byte; writes change nothing. */
	uint8_t lo = 0xaa;
	ck_assert(bus_dispatch(&v.vm.pio, ACPI_PM_TIMER_PORT, &lo, 1, false));
	uint32_t w = 0;
	ck_assert(bus_dispatch(&v.vm.pio, ACPI_PM_TIMER_PORT, (uint8_t *)&w, 4, true));
	ck_assert_uint_lt(pm_read(&v) - b, 1u << 31);
	fake_vm_free(&v);
}
END_TEST

static Suite *acpi_suite(void)
{
	Suite *s = suite_create("acpi");
	TCase *tc = tcase_create("tables");
	tcase_add_test(tc, test_test_guest_tables);
	tcase_add_test(tc, test_linux_tables);
	tcase_add_test(tc, test_area_taken);
	tcase_add_test(tc, test_pm_timer_rate);
	tcase_add_test(tc, test_pm_timer_port);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(acpi_suite)
