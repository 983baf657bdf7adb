/*
 * Linux as an uncompressed ELF vmlinux (read with libelf).
 *
 * Preferred entry: PVH, the direct-boot ABI Xen defined and KVM VMMs
 * reuse (xen/include/public/arch-x86/hvm/start_info.h; Linux
 * arch/x86/platform/pvh/). The kernel announces it with the ELF note
 * XEN_ELFNOTE_PHYS32_ENTRY; the vCPU starts there in 32-bit protected mode,
 * paging off, EBX = the physical address of a struct hvm_start_info that
 * carries the command line, the initrd as module 0, the RSDP and the memory
 * map. A vmlinux without the note (CONFIG_PVH=n) is started at its 64-bit
 * entry (startup_64) with a zero page, as the bzImage's decompressor would.
 *
 * Skipping the decompressor also skips its work: no copy, no inflate, no
 * relocation. Such a kernel runs at the physical addresses it was linked
 * for (no KASLR).
 */
#include "vmm/acpi.h"
#include "vmm/boot_linux.h"
#include "vmm/layout.h"
#include "lib/elffile.h"
#include "vmm/loader.h"
#include "lib/log.h"
#include "vmm/vm.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* xen/include/public/elfnote.h */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define XEN_NOTE_NAME "Xen"

/* xen/include/public/arch-x86/hvm/start_info.h, version 1 (memmap). */
#define HVM_START_MAGIC 0x336ec578U
#define HVM_START_VERSION 1

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

/* The start info, its memory map and module list share the page the
 * bzImage path uses for the zero page (inside the claimed boot area). */
#define PVH_START_INFO LAYOUT_ZERO_PAGE
#define PVH_MEMMAP (PVH_START_INFO + 0x100)
#define PVH_MODLIST (PVH_START_INFO + 0x800)

/* A Linux vmlinux is an x86-64 ELF executable with segments linked at
 * kernel virtual addresses (the kernel text mapping starts here, Linux
 * Documentation/arch/x86/x86_64/mm.rst); the elf64 test-guest loader
 * (priority 40) takes the others. */
#define LINUX_KERNEL_VA_BASE 0xffffffff80000000ULL

static bool vmlinux_probe(const uint8_t *buf, size_t len)
{
	if (len < sizeof(Elf64_Ehdr) || memcmp(buf, ELFMAG, SELFMAG) != 0 ||
	    buf[EI_CLASS] != ELFCLASS64)
		return false;
	Elf64_Ehdr eh;
	memcpy(&eh, buf, sizeof(eh));
	if (eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof(Elf64_Phdr))
		return false;
	for (size_t i = 0; i < eh.e_phnum; i++) {
		uint64_t off = eh.e_phoff + i * sizeof(Elf64_Phdr);
		if (eh.e_phoff > len || off > len - sizeof(Elf64_Phdr))
			return false; /* truncated: let vmlinux_load say so */
		Elf64_Phdr ph;
		memcpy(&ph, buf + off, sizeof(ph));
		if (ph.p_type == PT_LOAD && ph.p_vaddr >= LINUX_KERNEL_VA_BASE)
			return true;
	}
	return false;
}

/* Find XEN_ELFNOTE_PHYS32_ENTRY in the PT_NOTE segments; 0 if absent. */
static uint64_t find_pvh_entry(Elf *e, size_t phnum)
{
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_NOTE)
			continue;
		Elf_Data *d = elf_getdata_rawchunk(e, (int64_t)ph.p_offset, ph.p_filesz, ELF_T_NHDR);
		if (!d)
			continue;
		size_t off = 0, name_off, desc_off;
		GElf_Nhdr nh;
		while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type != XEN_ELFNOTE_PHYS32_ENTRY ||
			    nh.n_namesz != sizeof(XEN_NOTE_NAME) ||
			    memcmp((char *)d->d_buf + name_off, XEN_NOTE_NAME, nh.n_namesz) != 0)
				continue;
			/* 4 bytes, or 8 where the kernel used _ASM_PTR. */
			if (nh.n_descsz == 4) {
				uint32_t v;
				memcpy(&v, (char *)d->d_buf + desc_off, 4);
				return v;
			}
			if (nh.n_descsz == 8) {
				uint64_t v;
				memcpy(&v, (char *)d->d_buf + desc_off, 8);
				return v;
			}
		}
	}
	return 0;
}

static int load_segments(struct vm *vm, const struct load_args *a, const struct elffile *f,
			 uint64_t *kernel_end, uint64_t *entry64)
{
	const GElf_Ehdr eh = f->eh;
	uint64_t hi = 0;
	int loaded = 0;
	*entry64 = 0;
	for (size_t i = 0; i < f->phnum; i++) {
		GElf_Phdr ph;
		char err[256];
		int seg = elffile_segment(f, i, &ph, err, sizeof(err));
		if (seg < 0) {
			log_error("%s: %s", a->kernel_path, err);
			return -1;
		}
		if (seg == 0)
			continue;
		if (ph.p_paddr >= LAYOUT_4G || ph.p_memsz > LAYOUT_4G - ph.p_paddr) {
			log_error("%s: segment %zu at 0x%" PRIx64 " is not below 4 GiB", a->kernel_path,
				  i, (uint64_t)ph.p_paddr);
			return -1;
		}
		static char names[16][40];
		snprintf(names[i % 16], sizeof(names[0]), "vmlinux segment %zu", i);
		if (loader_claim(vm, ph.p_paddr, ph.p_memsz, names[i % 16]) < 0)
			return -1;
		uint8_t *dst = gmem_ptr(&vm->mem, ph.p_paddr, ph.p_memsz);
		memcpy(dst, a->kernel + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr + ph.p_memsz > hi)
			hi = ph.p_paddr + ph.p_memsz;
		/* e_entry is virtual in a kernel build, physical once objcopy'd
		 * or extracted from a bzImage: accept either. */
		if (eh.e_entry >= ph.p_vaddr && eh.e_entry - ph.p_vaddr < ph.p_memsz)
			*entry64 = ph.p_paddr + (eh.e_entry - ph.p_vaddr);
		else if (eh.e_entry >= ph.p_paddr && eh.e_entry - ph.p_paddr < ph.p_memsz)
			*entry64 = eh.e_entry;
		loaded++;
	}
	if (!loaded) {
		log_error("%s: ELF file has no loadable segment", a->kernel_path);
		return -1;
	}
	*kernel_end = hi;
	return 0;
}

static int pvh_start_info(struct vm *vm, uint64_t initrd, uint64_t initrd_size, uint64_t rsdp)
{
	struct e820_entry map[BOOT_LINUX_MAX_E820];
	int n = boot_linux_e820(vm, map);
	struct hvm_memmap_entry mm[BOOT_LINUX_MAX_E820];
	for (int i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_entry){map[i].addr, map[i].size, map[i].type, 0};
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = HVM_START_VERSION,
		.cmdline_paddr = LAYOUT_CMDLINE,
		.rsdp_paddr = rsdp,
		.memmap_paddr = PVH_MEMMAP,
		.memmap_entries = (uint32_t)n,
	};
	if (initrd_size) {
		struct hvm_modlist_entry mod = {.paddr = initrd, .size = initrd_size};
		if (gmem_write(&vm->mem, PVH_MODLIST, &mod, sizeof(mod)) < 0)
			return -1;
		si.nr_modules = 1;
		si.modlist_paddr = PVH_MODLIST;
	}
	if (gmem_write(&vm->mem, PVH_MEMMAP, mm, (size_t)n * sizeof(mm[0])) < 0)
		return -1;
	return gmem_write(&vm->mem, PVH_START_INFO, &si, sizeof(si));
}

/* For the 64-bit entry: the setup header a bzImage would have had. */
static void synth_header(uint8_t *hdr, size_t len)
{
	memset(hdr, 0, len);
	uint16_t flag = BOOT_FLAG_MAGIC, version = 0x020f;
	memcpy(hdr + HDR_BOOT_FLAG - HDR_SETUP_SECTS, &flag, 2);
	memcpy(hdr + HDR_MAGIC - HDR_SETUP_SECTS, HDRS_MAGIC, 4);
	memcpy(hdr + HDR_VERSION - HDR_SETUP_SECTS, &version, 2);
	hdr[HDR_LOADFLAGS - HDR_SETUP_SECTS] = LOADFLAG_LOADED_HIGH;
	uint32_t cmdline_size = (uint32_t)LAYOUT_CMDLINE_MAX - 1;
	memcpy(hdr + HDR_CMDLINE_SIZE - HDR_SETUP_SECTS, &cmdline_size, 4);
}

static int vmlinux_load(struct vm *vm, const struct load_args *a)
{
	struct elffile f;
	char err[256];
	if (elffile_open(&f, a->kernel, a->kernel_size, ELFCLASS64, EM_X86_64, err,
			 sizeof(err)) < 0) {
		log_error("%s: %s", a->kernel_path, err);
		return -1;
	}
	int rc = -1;
	uint64_t kernel_end, entry64;
	if (loader_claim_linux_boot(vm) < 0 ||
	    load_segments(vm, a, &f, &kernel_end, &entry64) < 0)
		goto out;
	uint64_t pvh = find_pvh_entry(f.elf, f.phnum);
	if (pvh && (pvh >= LAYOUT_4G || !gmem_is_ram(&vm->mem, pvh, 1))) {
		log_error("%s: PVH entry 0x%" PRIx64 " is outside guest RAM", a->kernel_path, pvh);
		goto out;
	}
	if (!pvh && (!entry64 || !gmem_is_ram(&vm->mem, entry64, 1))) {
		log_error("%s: neither a PVH note nor an entry point inside a loaded segment",
			  a->kernel_path);
		goto out;
	}
	if (boot_linux_cmdline(vm, a->cmdline, LAYOUT_CMDLINE_MAX - 1) < 0)
		goto out;
	uint64_t initrd, initrd_size;
	/* The same ceiling a bzImage gives (initrd_addr_max of 2 GiB - 1). */
	if (boot_linux_initrd(vm, a->initrd_path, kernel_end, 0x7fffffff, &initrd,
			      &initrd_size) < 0)
		goto out;
	uint64_t rsdp = acpi_build(vm, ACPI_GUEST_LINUX);
	if (!rsdp || boot_linux_reset_vector(vm) < 0)
		goto out;
	if (pvh) {
		if (pvh_start_info(vm, initrd, initrd_size, rsdp) < 0)
			goto out;
		vm->boot = (struct boot_state){
			.mode = BOOT_MODE_PROT32,
			.rip = pvh,
			.rbx = PVH_START_INFO,
			.rsp = LAYOUT_STACK_TOP,
			.loaded = true,
			.format = "vmlinux-pvh",
		};
	} else {
		uint8_t hdr[BOOT_LINUX_HDR_END_MAX - HDR_SETUP_SECTS];
		synth_header(hdr, sizeof(hdr));
		if (boot_linux_zero_page(vm, hdr, sizeof(hdr), initrd, initrd_size, rsdp) < 0)
			goto out;
		vm->boot = (struct boot_state){
			.mode = BOOT_MODE_LONG64,
			.rip = entry64,
			.rsi = LAYOUT_ZERO_PAGE,
			.rsp = LAYOUT_STACK_TOP,
			.loaded = true,
			.format = "vmlinux-64",
		};
	}
	rc = 0;
out:
	elffile_close(&f);
	return rc;
}

static const struct loader_ops vmlinux_loader = {
	.name = "vmlinux",
	.priority = 20,
	.probe = vmlinux_probe,
	.load = vmlinux_load,
};
LOADER_REGISTER(vmlinux_loader)
