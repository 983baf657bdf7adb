/* The crash dump without KVM (vmm/crash.h, vmm/pagewalk.h): the formatter
 * given a fake snapshot labels the reset state, the state at the last exit
 * and the console; the page walk and the code bytes, over page tables
 * built here in fake RAM. Bit positions are restated from the SDM (vol.
 * 3A, chapter 4) on purpose. */
#include "tests/unit/unit.h"
#include "vmm/crash.h"
#include "vmm/pagewalk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RAM (4ULL << 20)
#define P 0x1ULL
#define RW 0x2ULL
#define PS 0x80ULL
#define CR0_PE 0x1ULL
#define CR0_PG 0x80000000ULL
#define CR4_PSE 0x10ULL
#define CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

static struct guest_mem mem;

static void ram_setup(void)
{
	ck_assert_int_eq(gmem_init(&mem, RAM), 0);
}

static void ram_teardown(void)
{
	gmem_free(&mem);
}

static void put64(uint64_t gpa, uint64_t v)
{
	ck_assert_int_eq(gmem_write(&mem, gpa, &v, 8), 0);
}

static void put32(uint64_t gpa, uint32_t v)
{
	ck_assert_int_eq(gmem_write(&mem, gpa, &v, 4), 0);
}

/* 4-level tables: high kernel half at 0xffffffff80000000 (a 4 KiB page at
 * +0x1000 -> 0x10000, a 2 MiB page at +0x200000 -> 0x200000), low 1 GiB
 * identity-mapped with one 1 GiB page, PML4[1] pointing outside RAM. */
#define KBASE 0xffffffff80000000ULL
static const struct pagewalk_regs long4 = {CR0_PE | CR0_PG, 0x1000, CR4_PAE, EFER_LME | EFER_LMA};

static void build_long(void)
{
	put64(0x1000 + 511 * 8, 0x2000 | P | RW);
	put64(0x2000 + 510 * 8, 0x3000 | P | RW);
	put64(0x3000 + 0 * 8, 0x4000 | P | RW);
	put64(0x3000 + 1 * 8, 0x200000 | P | RW | PS);
	put64(0x4000 + 1 * 8, 0x10000 | P | RW);
	put64(0x1000 + 0 * 8, 0x5000 | P | RW);
	put64(0x5000 + 0 * 8, 0x0 | P | RW | PS);
	put64(0x1000 + 1 * 8, 0x80000000ULL | P | RW);
}

static uint64_t walk(const struct pagewalk_regs *r, uint64_t la, uint64_t *left)
{
	uint64_t gpa = ~0ULL, l = 0;
	ck_assert_msg(pagewalk_translate(&mem, r, la, &gpa, &l) == 0, "la %llx not mapped",
		      (unsigned long long)la);
	if (left)
		*left = l;
	return gpa;
}

static bool unmapped(const struct pagewalk_regs *r, uint64_t la)
{
	uint64_t gpa, l;
	return pagewalk_translate(&mem, r, la, &gpa, &l) < 0;
}

START_TEST(test_walk_long)
{
	build_long();
	uint64_t left;
	ck_assert_uint_eq(walk(&long4, KBASE + 0x1234, &left), 0x10234);
	ck_assert_uint_eq(left, 0x1000 - 0x234);
	ck_assert_uint_eq(walk(&long4, KBASE + 0x212345, &left), 0x212345);
	ck_assert_uint_eq(left, 0x200000 - 0x12345);
	ck_assert_uint_eq(walk(&long4, 0x123456, NULL), 0x123456);
	ck_assert(unmapped(&long4, KBASE));              /* PT entry 0 absent */
	ck_assert(unmapped(&long4, KBASE + 0x400000));   /* PD entry 2 absent */
	ck_assert(unmapped(&long4, 1ULL << 39));         /* table outside RAM */
	ck_assert(unmapped(&long4, 0x00007f0000000000)); /* PML4 entry absent */
	/* Paging off: linear is physical. */
	struct pagewalk_regs off = {CR0_PE, 0, 0, 0};
	ck_assert_uint_eq(walk(&off, 0x1234, &left), 0x1234);
	ck_assert_uint_eq(left, 0x1000 - 0x234);
}
END_TEST

START_TEST(test_walk_pae_and_32)
{
	/* PAE: PDPT at 0x6000, PD at 0x7000 (entry 1: 2 MiB page at
	 * 0x200000; entry 2: PT at 0x8000 whose entry 3 maps 0x9000). */
	struct pagewalk_regs pae = {CR0_PE | CR0_PG, 0x6000, CR4_PAE, 0};
	put64(0x6000, 0x7000 | P);
	put64(0x7000 + 1 * 8, 0x200000 | P | RW | PS);
	put64(0x7000 + 2 * 8, 0x8000 | P | RW);
	put64(0x8000 + 3 * 8, 0x9000 | P | RW);
	ck_assert_uint_eq(walk(&pae, 0x212345, NULL), 0x212345);
	ck_assert_uint_eq(walk(&pae, 0x403abc, NULL), 0x9abc);
	ck_assert(unmapped(&pae, 0x40000000)); /* PDPT entry 1 absent */
	/* 32-bit: PD at 0xa000 (entry 1: 4 MiB page at 0 with PSE; entry 2:
	 * PT at 0xb000 whose entry 5 maps 0xc000). */
	struct pagewalk_regs p32 = {CR0_PE | CR0_PG, 0xa000, CR4_PSE, 0};
	put32(0xa000 + 1 * 4, 0x0 | P | RW | PS);
	put32(0xa000 + 2 * 4, 0xb000 | P | RW);
	put32(0xb000 + 5 * 4, 0xc000 | P | RW);
	ck_assert_uint_eq(walk(&p32, 0x412345, NULL), 0x12345);
	ck_assert_uint_eq(walk(&p32, 0x805123, NULL), 0xc123);
	ck_assert(unmapped(&p32, 0xc00000));
}
END_TEST

static struct crash_snapshot long_snapshot(uint64_t rip)
{
	struct crash_snapshot s = {.valid = true, .reason = KVM_EXIT_IO, .have_sregs = true};
	s.regs.rip = rip;
	s.sregs.cr0 = long4.cr0;
	s.sregs.cr3 = long4.cr3;
	s.sregs.cr4 = long4.cr4;
	s.sregs.efer = long4.efer;
	s.sregs.cs.l = 1;
	s.sregs.cs.selector = 0x10;
	return s;
}

START_TEST(test_read_code)
{
	build_long();
	uint8_t page[4096];
	for (int i = 0; i < 4096; i++)
		page[i] = (uint8_t)i;
	ck_assert_int_eq(gmem_write(&mem, 0x10000, page, sizeof(page)), 0);
	struct crash_code c;
	/* Mid-page: 8 bytes before, 16 at rip. */
	struct crash_snapshot s = long_snapshot(KBASE + 0x1100);
	crash_read_code(&mem, &s, &c);
	ck_assert_ptr_null(c.why_not);
	ck_assert_uint_eq(c.gpa, 0x10100);
	ck_assert_uint_eq(c.before, 8);
	ck_assert_uint_eq(c.len, 24);
	ck_assert_int_eq(c.bytes[0], 0xf8);
	ck_assert_int_eq(c.bytes[8], 0x00);
	/* Page start, previous page unmapped: none before. */
	s = long_snapshot(KBASE + 0x1004);
	crash_read_code(&mem, &s, &c);
	ck_assert_uint_eq(c.before, 0);
	ck_assert_uint_eq(c.len, 16);
	ck_assert_int_eq(c.bytes[0], 0x04);
	/* Page end, next page unmapped: stops there. */
	s = long_snapshot(KBASE + 0x1ffa);
	crash_read_code(&mem, &s, &c);
	ck_assert_uint_eq(c.before, 8);
	ck_assert_uint_eq(c.len, 8 + 6);
	ck_assert_int_eq(c.bytes[8], 0xfa);
	/* Unmapped rip, no control registers. */
	s = long_snapshot(KBASE + 0x400000);
	crash_read_code(&mem, &s, &c);
	ck_assert_uint_eq(c.len, 0);
	ck_assert_ptr_nonnull(strstr(c.why_not, "not mapped"));
	s.have_sregs = false;
	crash_read_code(&mem, &s, &c);
	ck_assert_uint_eq(c.len, 0);
	ck_assert_ptr_nonnull(c.why_not);
	/* Real mode: CS base + IP. */
	struct crash_snapshot rm = {.valid = true, .have_sregs = true};
	rm.regs.rip = 0x0123;
	rm.sregs.cs.base = 0x9000 << 4;
	rm.sregs.cs.selector = 0x9000;
	ck_assert_int_eq(gmem_write(&mem, 0x90123, "\xf4\xeb\xfd", 3), 0);
	crash_read_code(&mem, &rm, &c);
	ck_assert_uint_eq(c.gpa, 0x90123);
	ck_assert_int_eq(c.bytes[c.before], 0xf4);
}
END_TEST

START_TEST(test_cpu_mode)
{
	char buf[96];
	struct kvm_sregs s = {0};
	ck_assert_str_eq(crash_cpu_mode(&s, 0, buf, sizeof(buf)), "real mode, paging off");
	s.cr0 = CR0_PE;
	s.cs.db = 1;
	ck_assert_str_eq(crash_cpu_mode(&s, 0, buf, sizeof(buf)), "32-bit protected mode, paging off");
	ck_assert_str_eq(crash_cpu_mode(&s, 1 << 17, buf, sizeof(buf)), "virtual-8086 mode, paging off");
	s.cr0 |= CR0_PG;
	s.cr4 = CR4_PAE;
	ck_assert_str_eq(crash_cpu_mode(&s, 0, buf, sizeof(buf)), "32-bit protected mode, PAE paging");
	s.efer = EFER_LME | EFER_LMA;
	ck_assert_str_eq(crash_cpu_mode(&s, 0, buf, sizeof(buf)),
			 "compatibility mode (32-bit code), 4-level paging");
	s.cs.l = 1;
	s.cs.db = 0;
	ck_assert_str_eq(crash_cpu_mode(&s, 0, buf, sizeof(buf)), "64-bit mode, 4-level paging");
	char name[16];
	ck_assert_str_eq(crash_exit_name(KVM_EXIT_IO, name, sizeof(name)), "io");
	ck_assert_str_eq(crash_exit_name(KVM_EXIT_SHUTDOWN, name, sizeof(name)), "shutdown");
	ck_assert_str_eq(crash_exit_name(999, name, sizeof(name)), "exit 999");
}
END_TEST

/* crash_format into a string. */
static char *format(const struct crash_report *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	crash_format(f, r);
	fclose(f);
	return text;
}

static void has(const char *text, const char *want)
{
	ck_assert_msg(strstr(text, want) != NULL, "no \"%s\" in:\n%s", want, text);
}

START_TEST(test_format_triple_fault)
{
	/* After a shutdown on AMD: the reset state now, an OUT to COM1 at
	 * the last exit, two exits earlier. */
	struct crash_snapshot last = long_snapshot(0x100724);
	last.port = 0x3f8;
	last.io_out = true;
	last.exit_no = 40;
	last.t_ns = 12345678;
	last.regs.rsp = 0x7fff0;
	struct crash_code code = {.bytes = {1, 2, 3, 4, 5, 6, 7, 8, 0xee, 0x0f, 0x01}, .before = 8,
				  .len = 11, .gpa = 0x100724};
	struct crash_report r = {
		.vcpu = 0, .event = "triple fault", .shutdown = true, .have_now = true,
		.exit_no = 42, .t_ns = 13000000, .source = CRASH_SOURCE_SYNC_REGS,
		.last = &last, .code = &code,
		.console = "  | booting\n  | triplefault: about to fault\n",
	};
	r.now.rip = 0xfff0;
	r.now_s.cs.selector = 0xf000;
	r.now_s.cs.base = 0xffff0000;
	char *t = format(&r);
	has(t, "minivmm: vCPU 0 registers at the crash (triple fault):\n  rip 000000000000fff0");
	has(t, "these registers are the CPU reset state (rip 0xfff0, cs 0xf000), not where the guest died");
	has(t, "minivmm: vCPU 0 state at the last exit before the crash (exit reason io, port 0x3f8 out; "
	       "2 exits before the crash, at 12.345 ms; the crash at 13.000 ms):\n"
	       "  rip 0000000000100724 rsp 000000000007fff0");
	has(t, "  mode: 64-bit mode, 4-level paging\n");
	has(t, "  code at rip (guest-physical 100724): 01 02 03 04 05 06 07 08 <ee> 0f 01\n");
	has(t, "minivmm: last console output");
	has(t, "  | booting\n  | triplefault: about to fault\n");
	/* The order a reader needs: now, then where it died, then the console. */
	ck_assert(strstr(t, "registers at the crash") < strstr(t, "state at the last exit"));
	ck_assert(strstr(t, "state at the last exit") < strstr(t, "last console output"));
	ck_assert_ptr_null(strstr(t, "KVM_CAP_SYNC_REGS"));
	free(t);
}
END_TEST

START_TEST(test_format_other_cases)
{
	/* Not the reset state (Intel keeps the faulting state): no such note. */
	struct crash_snapshot last = long_snapshot(0x100724);
	last.exit_no = 41;
	last.reason = KVM_EXIT_MMIO;
	last.mmio_addr = 0xd0000000;
	struct crash_code none = {.why_not = "rip is not mapped to guest RAM"};
	struct crash_report r = {
		.vcpu = 1, .event = "KVM internal error", .have_now = true, .exit_no = 42,
		.source = CRASH_SOURCE_IOCTL, .last = &last, .code = &none,
	};
	r.now.rip = 0x10072a;
	r.now_s.cs.selector = 0x10;
	char *t = format(&r);
	has(t, "vCPU 1 registers at the crash (KVM internal error):\n  rip 000000000010072a");
	ck_assert_ptr_null(strstr(t, "reset state"));
	has(t, "(exit reason mmio, address 0xd0000000; 1 exit before the crash");
	has(t, "KVM_CAP_SYNC_REGS not in use: the state was read with KVM_GET_REGS at most every 1 ms");
	has(t, "  code at rip: none (rip is not mapped to guest RAM)\n");
	has(t, "minivmm: last console output: none\n");
	free(t);
	/* No snapshot, no registers now, no sregs in the snapshot. */
	struct crash_report r2 = {.vcpu = 0, .event = "triple fault", .now_errno = EBADF,
				  .source = CRASH_SOURCE_SYNC_REGS};
	t = format(&r2);
	has(t, "registers at the crash (triple fault): unavailable: Bad file descriptor");
	has(t, "no state from an earlier exit (the crash was its first exit)");
	free(t);
	last.have_sregs = false;
	r.code = NULL;
	t = format(&r);
	has(t, "  (no control or segment registers)\n");
	free(t);
}
END_TEST

static Suite *crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, ram_setup, ram_teardown);
	tcase_add_test(tc, test_walk_long);
	tcase_add_test(tc, test_walk_pae_and_32);
	tcase_add_test(tc, test_read_code);
	tcase_add_test(tc, test_cpu_mode);
	tcase_add_test(tc, test_format_triple_fault);
	tcase_add_test(tc, test_format_other_cases);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(crash_suite)
