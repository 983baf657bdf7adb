/*
 * Test-guest loaders: a plain x86-64 ELF64 executable, and a Multiboot v1
 * kernel (ELF32, or any binary with the a.out kludge).
 *
 * ELF64: PT_LOAD segments go to their physical addresses; the vCPU starts
 * at e_entry in 64-bit mode with the low 4 GiB identity-mapped, RSP at the
 * top of a boot stack, RDI = the command line (NUL-terminated), RSI = bytes
 * of RAM. The GDT and page tables are at fixed addresses (vmm/layout.h), an
 * image over them is refused; the stack and command line take their usual
 * places (LAYOUT_STACK_TOP, LAYOUT_CMDLINE) when the image leaves them free,
 * and free RAM elsewhere when not.
 *
 * Multiboot: as the Multiboot 0.6.96 specification says (section 3.2,
 * "Machine state"): 32-bit protected mode, flat segments, paging off,
 * EAX = 0x2BADB002, EBX = the multiboot information block. Such a guest
 * needs no page tables, and nothing of ours is fixed: the GDT (0x500 when
 * free), then the information block, memory map, loader name and command
 * line together go to the first free RAM after the image is placed (conventional memory first, then above
 * 1 MiB), so images linked low (0x8000, as real-mode test guests are) load.
 *
 * Both kinds get the ACPI tables (vmm/acpi.c, with the PM timer).
 */
#include "vmm/acpi.h"
#include "vmm/layout.h"
#include "lib/elffile.h"
#include "vmm/loader.h"
#include "lib/log.h"
#include "vmm/vm.h"

#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Multiboot 0.6.96, section 3.1.1: the header lies in the first 8192
 * bytes, 32-bit aligned. */
#define MB_HEADER_MAGIC 0x1BADB002U
#define MB_BOOTLOADER_MAGIC 0x2BADB002U
#define MB_SEARCH_LIMIT 8192
#define MB_FLAG_PAGE_ALIGN (1U << 0)
#define MB_FLAG_MEMORY_INFO (1U << 1)
#define MB_FLAG_VIDEO_MODE (1U << 2)
#define MB_FLAG_AOUT_KLUDGE (1U << 16)
#define MB_REQUIRED_MASK 0x0000ffffU
#define MB_SUPPORTED_REQUIRED (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMORY_INFO)

/* Multiboot information flags (section 3.3). */
#define MBI_MEM (1U << 0)
#define MBI_CMDLINE (1U << 2)
#define MBI_MODS (1U << 3)
#define MBI_MMAP (1U << 6)
#define MBI_LOADER_NAME (1U << 9)
#define MB_MMAP_RAM 1
#define MB_MMAP_RESERVED 2

struct mb_header {
	uint32_t magic, flags, checksum;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr, config_table, boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe[6];
} __attribute__((packed));

struct mb_mmap_entry {
	uint32_t size;
	uint64_t base, len;
	uint32_t type;
} __attribute__((packed));

struct mb_module {
	uint32_t start, end, string, reserved;
};

static const struct mb_header *mb_find(const uint8_t *buf, size_t len, size_t *offset)
{
	size_t limit = len < MB_SEARCH_LIMIT ? len : MB_SEARCH_LIMIT;
	for (size_t off = 0; off + 12 <= limit; off += 4) {
		uint32_t w[3];
		memcpy(w, buf + off, sizeof(w));
		if (w[0] == MB_HEADER_MAGIC && (uint32_t)(w[0] + w[1] + w[2]) == 0) {
			*offset = off;
			return (const struct mb_header *)(buf + off);
		}
	}
	return NULL;
}

/* Load every PT_LOAD segment of an ELF image at its physical address.
 * class is ELFCLASS32 or ELFCLASS64. */
static int elf_load_segments(struct vm *vm, const struct load_args *a, int class,
			     uint64_t *entry, uint64_t *end)
{
	struct elffile f;
	char err[256];
	if (elffile_open(&f, a->kernel, a->kernel_size, class,
			 class == ELFCLASS64 ? EM_X86_64 : EM_386, err, sizeof(err)) < 0) {
		log_error("%s: %s", a->kernel_path, err);
		return -1;
	}
	int rc = -1;
	uint64_t hi = 0;
	int loaded = 0;
	for (size_t i = 0; i < f.phnum; i++) {
		GElf_Phdr ph;
		int seg = elffile_segment(&f, i, &ph, err, sizeof(err));
		if (seg < 0) {
			log_error("%s: %s", a->kernel_path, err);
			goto out;
		}
		if (seg == 0)
			continue;
		/* loader_claim keeps the name pointer: give it a stable string. */
		static char names[64][40];
		snprintf(names[i % 64], sizeof(names[0]), "ELF segment %zu", i);
		if (loader_claim(vm, ph.p_paddr, ph.p_memsz, names[i % 64]) < 0)
			goto out;
		uint8_t *dst = gmem_ptr(&vm->mem, ph.p_paddr, ph.p_memsz);
		memcpy(dst, a->kernel + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr + ph.p_memsz > hi)
			hi = ph.p_paddr + ph.p_memsz;
		loaded++;
	}
	if (!loaded) {
		log_error("%s: ELF file has no loadable segment", a->kernel_path);
		goto out;
	}
	if (!gmem_is_ram(&vm->mem, f.eh.e_entry, 1)) {
		log_error("%s: entry point 0x%" PRIx64 " is outside guest RAM", a->kernel_path,
			  (uint64_t)f.eh.e_entry);
		goto out;
	}
	*entry = f.eh.e_entry;
	*end = hi;
	rc = 0;
out:
	elffile_close(&f);
	return rc;
}

/* The GDT vcpu.c writes for an ELF64 guest (vm->boot.gdt 0: LAYOUT_GDT). */
static int claim_gdt(struct vm *vm)
{
	return loader_claim(vm, LAYOUT_GDT, LAYOUT_GDT_END - LAYOUT_GDT, "the GDT");
}

static int check_cmdline(const char *cmdline, size_t *len)
{
	*len = strlen(cmdline) + 1;
	if (*len > LAYOUT_CMDLINE_MAX) {
		log_error("command line too long (%zu bytes, at most %llu)", *len - 1,
			  LAYOUT_CMDLINE_MAX - 1);
		return -1;
	}
	return 0;
}

/* ---- ELF64 ---- */

static bool elf64_probe(const uint8_t *buf, size_t len)
{
	return len >= EI_NIDENT && memcmp(buf, ELFMAG, SELFMAG) == 0 &&
	       buf[EI_CLASS] == ELFCLASS64;
}

#define ELF64_STACK_SIZE (LAYOUT_STACK_TOP - LAYOUT_STACK_BOTTOM)
#define PAGE_SIZE 4096ULL

static int elf64_load(struct vm *vm, const struct load_args *a)
{
	uint64_t entry, end, cmdline, stack;
	size_t cmd_len;
	if (check_cmdline(a->cmdline, &cmd_len) < 0)
		return -1;
	/* The fixed pieces first, so an image over them is refused by name. */
	if (claim_gdt(vm) < 0 ||
	    loader_claim(vm, LAYOUT_PML4, LAYOUT_PAGE_TABLES_END - LAYOUT_PML4,
			 "the boot page tables") < 0)
		return -1;
	if (elf_load_segments(vm, a, ELFCLASS64, &entry, &end) < 0)
		return -1;
	if (acpi_build(vm, ACPI_GUEST_TEST) == 0)
		return -1;
	if (loader_place(vm, LAYOUT_CMDLINE, cmd_len, 16, "the command line", &cmdline) < 0 ||
	    loader_place(vm, LAYOUT_STACK_BOTTOM, ELF64_STACK_SIZE, PAGE_SIZE, "the boot stack",
			 &stack) < 0)
		return -1;
	gmem_write(&vm->mem, cmdline, a->cmdline, cmd_len);
	if (a->initrd_path)
		log_warn("--initrd is ignored for a plain ELF64 guest");
	vm->boot = (struct boot_state){
		.mode = BOOT_MODE_LONG64,
		.rip = entry,
		.rsp = stack + ELF64_STACK_SIZE,
		.rdi = cmdline,
		.rsi = vm->mem.ram_size,
		.loaded = true,
		.format = "elf64",
	};
	return 0;
}

static const struct loader_ops elf64_loader = {
	.name = "elf64",
	.priority = 40,
	.probe = elf64_probe,
	.load = elf64_load,
};
LOADER_REGISTER(elf64_loader)

/* ---- Multiboot v1 ---- */

static bool multiboot_probe(const uint8_t *buf, size_t len)
{
	size_t off;
	return mb_find(buf, len, &off) != NULL;
}

static int mb_load_aout(struct vm *vm, const struct load_args *a, const struct mb_header *h,
			size_t hoff, uint64_t *entry, uint64_t *end)
{
	if (h->load_addr > h->header_addr || h->header_addr - h->load_addr > hoff) {
		log_error("%s: multiboot header addresses are inconsistent", a->kernel_path);
		return -1;
	}
	uint64_t file_off = hoff - (h->header_addr - h->load_addr);
	uint64_t load_end = h->load_end_addr ? h->load_end_addr
					     : h->load_addr + (a->kernel_size - file_off);
	if (load_end < h->load_addr || load_end - h->load_addr > a->kernel_size - file_off) {
		log_error("%s: multiboot load range exceeds the file (truncated?)", a->kernel_path);
		return -1;
	}
	uint64_t bss_end = h->bss_end_addr ? h->bss_end_addr : load_end;
	if (bss_end < load_end) {
		log_error("%s: multiboot bss ends before the image", a->kernel_path);
		return -1;
	}
	/* An empty range claims nothing, so nothing says it is in RAM. */
	if (bss_end == h->load_addr) {
		log_error("%s: the multiboot image is empty (load_addr = bss_end)", a->kernel_path);
		return -1;
	}
	if (loader_claim(vm, h->load_addr, bss_end - h->load_addr, "the multiboot image") < 0)
		return -1;
	uint8_t *dst = gmem_ptr(&vm->mem, h->load_addr, bss_end - h->load_addr);
	memcpy(dst, a->kernel + file_off, load_end - h->load_addr);
	memset(dst + (load_end - h->load_addr), 0, bss_end - load_end);
	*entry = h->entry_addr;
	*end = bss_end;
	return 0;
}

/* Place the initrd as module 0: page-aligned, the first free place from
 * the image's end (or 1 MiB, for an image below it) up, under 4 GiB. */
static int mb_place_module(struct vm *vm, const char *path, uint64_t image_end,
			   struct mb_module *m)
{
	uint8_t *mod;
	size_t mod_len;
	if (loader_read_file(path, vm->mem.ram_size, &mod, &mod_len) < 0)
		return -1;
	uint64_t lo = image_end > LAYOUT_HIGH_MEMORY ? image_end : LAYOUT_HIGH_MEMORY;
	uint64_t hi = gmem_low_end(&vm->mem);
	uint64_t start;
	if (loader_find_free(vm, lo, hi, mod_len ? mod_len : 1, 4096, &start) < 0) {
		log_error("the initrd module %s (%zu bytes) does not fit in guest RAM after the "
			  "image (up to 0x%" PRIx64 "); try a larger --memory", path, mod_len, hi);
		free(mod);
		return -1;
	}
	if (loader_claim(vm, start, mod_len, "the initrd module") < 0) {
		free(mod);
		return -1;
	}
	gmem_write(&vm->mem, start, mod, mod_len);
	free(mod);
	m->start = (uint32_t)start;
	m->end = (uint32_t)(start + mod_len);
	return 0;
}

/* A courtesy stack: the spec leaves ESP undefined (3.2), but a guest that
 * pushes before loading its own should not write over its image. */
#define MB_STACK_SIZE 4096ULL

static int multiboot_load(struct vm *vm, const struct load_args *a)
{
	size_t hoff;
	struct mb_header h = {0};
	const struct mb_header *hp = mb_find(a->kernel, a->kernel_size, &hoff);
	memcpy(&h, hp, a->kernel_size - hoff < sizeof(h) ? a->kernel_size - hoff : sizeof(h));
	uint32_t required = h.flags & MB_REQUIRED_MASK;
	if (required & ~MB_SUPPORTED_REQUIRED) {
		log_error("%s: the multiboot header requires features minivmm lacks "
			  "(flags 0x%x%s)", a->kernel_path, required & ~MB_SUPPORTED_REQUIRED,
			  required & MB_FLAG_VIDEO_MODE ? ": a video mode" : "");
		return -1;
	}
	size_t cmd_len;
	if (check_cmdline(a->cmdline, &cmd_len) < 0)
		return -1;
	uint64_t entry, end;
	if (h.flags & MB_FLAG_AOUT_KLUDGE) {
		if (a->kernel_size - hoff < sizeof(h)) {
			log_error("%s: multiboot header is truncated", a->kernel_path);
			return -1;
		}
		if (mb_load_aout(vm, a, &h, hoff, &entry, &end) < 0)
			return -1;
	} else if (elf_load_segments(vm, a, ELFCLASS32, &entry, &end) < 0) {
		return -1;
	}
	if (entry >= LAYOUT_4G || !gmem_is_ram(&vm->mem, entry, 1)) {
		log_error("%s: multiboot entry 0x%" PRIx64 " is outside guest RAM", a->kernel_path, entry);
		return -1;
	}
	/* The GDTR "may be invalid" to a Multiboot kernel (section 3.2), but
	 * KVM's segment state comes from one: it goes to free RAM after the
	 * image, at 0x500 when that is free. */
	uint64_t gdt;
	if (loader_place(vm, LAYOUT_GDT, LAYOUT_GDT_END - LAYOUT_GDT, 16, "the GDT", &gdt) < 0)
		return -1;
	if (acpi_build(vm, ACPI_GUEST_TEST) == 0)
		return -1;
	struct mb_module mod = {0};
	if (a->initrd_path && mb_place_module(vm, a->initrd_path, end, &mod) < 0)
		return -1;

	/* One block holds the information structure, the memory map, the
	 * loader name, the module list and the command line, in that order. */
	struct mb_info info = {0};
	uint64_t low_end = gmem_low_end(&vm->mem);
	struct mb_mmap_entry map[4];
	int n = 0;
	map[n++] = (struct mb_mmap_entry){20, 0, LAYOUT_EBDA, MB_MMAP_RAM};
	map[n++] = (struct mb_mmap_entry){20, LAYOUT_EBDA, LAYOUT_HIGH_MEMORY - LAYOUT_EBDA,
					  MB_MMAP_RESERVED};
	map[n++] = (struct mb_mmap_entry){20, LAYOUT_HIGH_MEMORY, low_end - LAYOUT_HIGH_MEMORY,
					  MB_MMAP_RAM};
	if (vm->mem.n_regions > 1)
		map[n++] = (struct mb_mmap_entry){20, vm->mem.regions[1].gpa,
						  vm->mem.regions[1].size, MB_MMAP_RAM};
	static const char loader_name[] = "minivmm " MINIVMM_VERSION;
	size_t map_off = sizeof(info);
	size_t map_size = (size_t)n * sizeof(map[0]);
	size_t name_off = map_off + map_size;
	size_t mods_off = (name_off + sizeof(loader_name) + 15) & ~(size_t)15;
	size_t cmd_off = mods_off + sizeof(mod);
	uint64_t mbi;
	if (loader_place(vm, 0, cmd_off + cmd_len, 16, "the multiboot information", &mbi) < 0)
		return -1;
	uint8_t *blk = gmem_ptr(&vm->mem, mbi, cmd_off + cmd_len);
	memset(blk, 0, cmd_off + cmd_len);

	info.flags = MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME;
	info.mem_lower = (uint32_t)(LAYOUT_EBDA / 1024);
	/* mem_upper: KiB from 1 MiB to the first hole (section 3.3). */
	info.mem_upper = (uint32_t)((low_end - LAYOUT_HIGH_MEMORY) / 1024);
	info.cmdline = (uint32_t)(mbi + cmd_off);
	info.mmap_addr = (uint32_t)(mbi + map_off);
	info.mmap_length = (uint32_t)map_size;
	info.boot_loader_name = (uint32_t)(mbi + name_off);
	if (a->initrd_path) {
		mod.string = info.cmdline;
		info.flags |= MBI_MODS;
		info.mods_count = 1;
		info.mods_addr = (uint32_t)(mbi + mods_off);
		memcpy(blk + mods_off, &mod, sizeof(mod));
	}
	memcpy(blk, &info, sizeof(info));
	memcpy(blk + map_off, map, map_size);
	memcpy(blk + name_off, loader_name, sizeof(loader_name));
	memcpy(blk + cmd_off, a->cmdline, cmd_len);

	uint64_t stack, rsp = 0;
	if (loader_find_free(vm, LAYOUT_STACK_TOP - MB_STACK_SIZE, LAYOUT_STACK_TOP, MB_STACK_SIZE,
			     MB_STACK_SIZE, &stack) == 0 &&
	    loader_claim(vm, stack, MB_STACK_SIZE, "the boot stack") == 0)
		rsp = stack + MB_STACK_SIZE;

	vm->boot = (struct boot_state){
		.mode = BOOT_MODE_PROT32,
		.rip = entry,
		.rsp = rsp,
		.rax = MB_BOOTLOADER_MAGIC,
		.rbx = mbi,
		.gdt = gdt,
		.loaded = true,
		.format = "multiboot",
	};
	return 0;
}

static const struct loader_ops multiboot_loader = {
	.name = "multiboot",
	.priority = 30,
	.probe = multiboot_probe,
	.load = multiboot_load,
};
LOADER_REGISTER(multiboot_loader)
