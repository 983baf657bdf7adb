/* Where the test-guest loaders (vmm/loader_elf.c) put the guest and what
 * is theirs: synthetic Multiboot (ELF32 and a.out-kludge) and ELF64 images
 * at low addresses, and the information a Multiboot guest finds through
 * EBX. Layouts are restated from Multiboot 0.6.96 (3.1.1 header, 3.3
 * information) on purpose. */
#include "tests/unit/unit.h"
#include "vmm/loader.h"
#include "vmm/vm.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

#define MB_MAGIC 0x1BADB002U
#define MB_BOOT_MAGIC 0x2BADB002U
#define MB_FLAGS_ELF 0x00000003U   /* page-align, memory info */
#define MB_FLAGS_AOUT 0x00010003U  /* ... and the a.out kludge */
#define MBI_MEM (1U << 0)
#define MBI_CMDLINE (1U << 2)
#define MBI_MMAP (1U << 6)
#define MBI_MEM_UPPER 8
#define MBI_CMDLINE_OFF 16
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR 48
#define MBI_SIZE 88 /* through boot_loader_name, which we also fill */
#define HDR_OFF 0x80
#define DATA_OFF 0x1000
#define DATA_LEN 0x100
#define FILE_LEN 0x2000
#define CMDLINE "console=ttyS0 low=1"
#define RSDP_ADDR 0xf0000

struct seg {
	uint64_t addr, memsz;
};

static struct vm *vm_new(uint64_t ram)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	ck_assert_ptr_nonnull(vm);
	ck_assert_int_eq(gmem_init(&vm->mem, ram), 0);
	vm->n_vcpus = 1;
	return vm;
}

static void vm_free(struct vm *vm)
{
	gmem_free(&vm->mem);
	free(vm);
}

/* An ELF executable (class 32 with a Multiboot header, or 64) whose
 * PT_LOAD segments are segs; each holds DATA_LEN bytes of file. */
static uint8_t *make_elf(int class, const struct seg *segs, int n)
{
	uint8_t *f = calloc(1, FILE_LEN);
	ck_assert_ptr_nonnull(f);
	memcpy(f, ELFMAG, SELFMAG);
	f[EI_CLASS] = (uint8_t)class;
	f[EI_DATA] = ELFDATA2LSB;
	f[EI_VERSION] = EV_CURRENT;
	if (class == ELFCLASS32) {
		Elf32_Ehdr *e = (Elf32_Ehdr *)f;
		e->e_type = ET_EXEC;
		e->e_machine = EM_386;
		e->e_version = EV_CURRENT;
		e->e_entry = (Elf32_Addr)segs[0].addr;
		e->e_phoff = sizeof(*e);
		e->e_ehsize = sizeof(*e);
		e->e_phentsize = sizeof(Elf32_Phdr);
		e->e_phnum = (Elf32_Half)n;
		Elf32_Phdr *ph = (Elf32_Phdr *)(f + sizeof(*e));
		for (int i = 0; i < n; i++)
			ph[i] = (Elf32_Phdr){.p_type = PT_LOAD, .p_offset = DATA_OFF,
					     .p_vaddr = (Elf32_Addr)segs[i].addr,
					     .p_paddr = (Elf32_Addr)segs[i].addr,
					     .p_filesz = DATA_LEN, .p_memsz = (Elf32_Word)segs[i].memsz,
					     .p_flags = PF_R | PF_X, .p_align = 4096};
		uint32_t mb[3] = {MB_MAGIC, MB_FLAGS_ELF, (uint32_t)-(MB_MAGIC + MB_FLAGS_ELF)};
		memcpy(f + HDR_OFF, mb, sizeof(mb));
	} else {
		Elf64_Ehdr *e = (Elf64_Ehdr *)f;
		e->e_type = ET_EXEC;
		e->e_machine = EM_X86_64;
		e->e_version = EV_CURRENT;
		e->e_entry = segs[0].addr;
		e->e_phoff = sizeof(*e);
		e->e_ehsize = sizeof(*e);
		e->e_phentsize = sizeof(Elf64_Phdr);
		e->e_phnum = (Elf64_Half)n;
		Elf64_Phdr *ph = (Elf64_Phdr *)(f + sizeof(*e));
		for (int i = 0; i < n; i++)
			ph[i] = (Elf64_Phdr){.p_type = PT_LOAD, .p_offset = DATA_OFF,
					     .p_vaddr = segs[i].addr, .p_paddr = segs[i].addr,
					     .p_filesz = DATA_LEN, .p_memsz = segs[i].memsz,
					     .p_flags = PF_R | PF_X, .p_align = 4096};
	}
	memset(f + DATA_OFF, 0x90, DATA_LEN);
	return f;
}

/* An a.out-kludge Multiboot image: the file from offset 0 loads at addr,
 * the bss runs to addr + memsz. */
static uint8_t *make_aout(uint64_t addr, uint64_t memsz)
{
	uint8_t *f = calloc(1, FILE_LEN);
	ck_assert_ptr_nonnull(f);
	uint32_t mb[8] = {MB_MAGIC, MB_FLAGS_AOUT, (uint32_t)-(MB_MAGIC + MB_FLAGS_AOUT),
			  (uint32_t)(addr + HDR_OFF), (uint32_t)addr, (uint32_t)(addr + FILE_LEN),
			  (uint32_t)(addr + memsz), (uint32_t)(addr + DATA_OFF)};
	memcpy(f + HDR_OFF, mb, sizeof(mb));
	return f;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static uint32_t rd32(struct vm *vm, uint64_t gpa)
{
	uint32_t v = 0;
	ck_assert_int_eq(gmem_read(&vm->mem, gpa, &v, 4), 0);
	return v;
}

/* Check what a Multiboot guest finds at EBX against the image's place. */
static void check_mbi(struct vm *vm, const struct seg *segs, int n)
{
	ck_assert_int_eq(vm->boot.mode, BOOT_MODE_PROT32);
	ck_assert_uint_eq(vm->boot.rax, MB_BOOT_MAGIC);
	uint64_t mbi = vm->boot.rbx;
	ck_assert_uint_ne(mbi, 0);
	uint32_t cmd = rd32(vm, mbi + MBI_CMDLINE_OFF);
	uint32_t mmap = rd32(vm, mbi + MBI_MMAP_ADDR), mmap_len = rd32(vm, mbi + MBI_MMAP_LENGTH);
	uint64_t ours[][2] = {{mbi, MBI_SIZE}, {cmd, sizeof(CMDLINE)}, {mmap, mmap_len}};
	for (size_t k = 0; k < sizeof(ours) / sizeof(ours[0]); k++) {
		ck_assert(gmem_is_ram(&vm->mem, ours[k][0], ours[k][1]));
		/* Below 4 GiB, outside the image, the GDT and the BIOS area. */
		ck_assert_uint_lt(ours[k][0] + ours[k][1], 1ULL << 32);
		ck_assert(!overlaps(ours[k][0], ours[k][1], 0, 0x600));
		ck_assert(!overlaps(ours[k][0], ours[k][1], 0x9fc00, 0x100000 - 0x9fc00));
		for (int i = 0; i < n; i++)
			ck_assert_msg(!overlaps(ours[k][0], ours[k][1], segs[i].addr, segs[i].memsz),
				      "0x%llx+%llu overlaps the image at 0x%llx",
				      (unsigned long long)ours[k][0], (unsigned long long)ours[k][1],
				      (unsigned long long)segs[i].addr);
	}
	uint32_t flags = rd32(vm, mbi);
	ck_assert_uint_eq(flags & (MBI_MEM | MBI_CMDLINE | MBI_MMAP),
			  MBI_MEM | MBI_CMDLINE | MBI_MMAP);
	ck_assert_uint_eq(rd32(vm, mbi + MBI_MEM_UPPER),
			  (gmem_low_end(&vm->mem) - 0x100000) / 1024);
	char buf[sizeof(CMDLINE)];
	ck_assert_int_eq(gmem_read(&vm->mem, cmd, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, CMDLINE);
	/* And the ACPI tables, with the RSDP where scanners look. */
	char sig[8];
	ck_assert_int_eq(gmem_read(&vm->mem, RSDP_ADDR, sig, 8), 0);
	ck_assert(memcmp(sig, "RSD PTR ", 8) == 0);
}

static int load(struct vm *vm, const uint8_t *f)
{
	memset(&vm->boot, 0, sizeof(vm->boot));
	return loader_load_buffer(vm, "synthetic", f, FILE_LEN, CMDLINE, NULL);
}

START_TEST(test_multiboot_at_0x8000)
{
	struct vm *vm = vm_new(16ULL << 20);
	struct seg s[] = {{0x8000, 0x6000}};
	uint8_t *f = make_elf(ELFCLASS32, s, 1);
	ck_assert_int_eq(load(vm, f), 0);
	ck_assert_uint_eq(vm->boot.rip, 0x8000);
	check_mbi(vm, s, 1);
	/* The image is there, byte for byte. */
	uint8_t b;
	ck_assert_int_eq(gmem_read(&vm->mem, 0x8000 + DATA_LEN - 1, &b, 1), 0);
	ck_assert_uint_eq(b, 0x90);
	free(f);
	vm_free(vm);
}
END_TEST

/* Images at the places low guests are linked, each alone. */
START_TEST(test_multiboot_low_addresses)
{
	static const struct seg cases[] = {
		{0x600, 0x1000},    {0x1000, 0x1000}, {0x7c00, 0x400},   {0x1000, 0x80000},
		{0x10000, 0x20000}, {0x20000, 0x100}, {0x80000, 0x1f000}, {0x100000, 0x10000},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vm *vm = vm_new(8ULL << 20);
		uint8_t *f = make_elf(ELFCLASS32, &cases[i], 1);
		ck_assert_msg(load(vm, f) == 0, "image at 0x%llx", (unsigned long long)cases[i].addr);
		check_mbi(vm, &cases[i], 1);
		free(f);
		vm_free(vm);
	}
}
END_TEST

/* The a.out kludge and an image over all free conventional memory: the
 * information goes above 1 MiB. */
START_TEST(test_multiboot_aout_fills_low_memory)
{
	struct vm *vm = vm_new(8ULL << 20);
	struct seg s[] = {{0x600, 0x9fc00 - 0x600}};
	uint8_t *f = make_aout(s[0].addr, s[0].memsz);
	ck_assert_int_eq(load(vm, f), 0);
	ck_assert_uint_eq(vm->boot.rip, 0x600 + DATA_OFF);
	check_mbi(vm, s, 1);
	ck_assert_uint_ge(vm->boot.rbx, 0x100000);
	free(f);
	vm_free(vm);
}
END_TEST

/* Nothing left for the information block: a clear refusal. */
START_TEST(test_multiboot_no_room)
{
	struct vm *vm = vm_new(4ULL << 20);
	struct seg s[] = {{0x600, 0x9fc00 - 0x600}, {0x100000, (4ULL << 20) - 0x100000}};
	uint8_t *f = make_elf(ELFCLASS32, s, 2);
	ck_assert_int_eq(load(vm, f), -1);
	free(f);
	/* Over the ACPI tables' BIOS area: refused too. */
	struct seg bios[] = {{0xf0000, 0x1000}};
	f = make_elf(ELFCLASS32, bios, 1);
	ck_assert_int_eq(load(vm, f), -1);
	free(f);
	vm_free(vm);
}
END_TEST

/* A Multiboot image over 0x500 loads: the GDT KVM's segments come from
 * goes to free RAM outside it (the guest may not rely on the GDTR). */
START_TEST(test_multiboot_over_gdt)
{
	struct vm *vm = vm_new(4ULL << 20);
	struct seg s[] = {{0x0, 0x1000}};
	uint8_t *f = make_elf(ELFCLASS32, s, 1);
	ck_assert_int_eq(load(vm, f), 0);
	ck_assert_uint_ge(vm->boot.gdt, 0x1000);
	ck_assert_uint_eq(vm->boot.gdt % 16, 0);
	free(f);
	vm_free(vm);
}
END_TEST

/* ELF64 at 1 MiB: stack and command line at their usual places. */
START_TEST(test_elf64_usual)
{
	struct vm *vm = vm_new(16ULL << 20);
	struct seg s[] = {{0x100000, 0x4000}};
	uint8_t *f = make_elf(ELFCLASS64, s, 1);
	ck_assert_int_eq(load(vm, f), 0);
	ck_assert_int_eq(vm->boot.mode, BOOT_MODE_LONG64);
	ck_assert_uint_eq(vm->boot.rdi, 0x20000);
	ck_assert_uint_eq(vm->boot.rsp, 0x8f000);
	ck_assert_uint_eq(vm->boot.rsi, 16ULL << 20);
	free(f);
	vm_free(vm);
}
END_TEST

/* ELF64 over the usual stack and command line: they move out of its way;
 * over the page tables: refused. */
START_TEST(test_elf64_low)
{
	struct vm *vm = vm_new(16ULL << 20);
	struct seg s[] = {{0x10000, 0x80000}};
	uint8_t *f = make_elf(ELFCLASS64, s, 1);
	ck_assert_int_eq(load(vm, f), 0);
	ck_assert(!overlaps(vm->boot.rdi, sizeof(CMDLINE), s[0].addr, s[0].memsz));
	ck_assert(!overlaps(vm->boot.rsp - 1, 1, s[0].addr, s[0].memsz));
	char buf[sizeof(CMDLINE)];
	ck_assert_int_eq(gmem_read(&vm->mem, vm->boot.rdi, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, CMDLINE);
	free(f);
	struct seg pt[] = {{0x8000, 0x2000}};
	f = make_elf(ELFCLASS64, pt, 1);
	ck_assert_int_eq(load(vm, f), -1);
	free(f);
	vm_free(vm);
}
END_TEST

static Suite *loader_suite(void)
{
	Suite *s = suite_create("loader");
	TCase *tc = tcase_create("placement");
	tcase_add_test(tc, test_multiboot_at_0x8000);
	tcase_add_test(tc, test_multiboot_low_addresses);
	tcase_add_test(tc, test_multiboot_aout_fills_low_memory);
	tcase_add_test(tc, test_multiboot_no_room);
	tcase_add_test(tc, test_multiboot_over_gdt);
	tcase_add_test(tc, test_elf64_usual);
	tcase_add_test(tc, test_elf64_low);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(loader_suite)
