#include "vmm/boot_linux.h"
#include "vmm/acpi.h"
#include "vmm/layout.h"
#include "vmm/loader.h"
#include "lib/log.h"
#include "vmm/vm.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_SIZE 4096ULL

int boot_linux_e820(const struct vm *vm, struct e820_entry *out)
{
	uint64_t low_end = gmem_low_end(&vm->mem);
	int n = 0;
	out[n++] = (struct e820_entry){0, LAYOUT_EBDA, E820_RAM};
	out[n++] = (struct e820_entry){LAYOUT_EBDA, LAYOUT_HIGH_MEMORY - LAYOUT_EBDA, E820_RESERVED};
	out[n++] = (struct e820_entry){LAYOUT_HIGH_MEMORY, low_end - LAYOUT_HIGH_MEMORY, E820_RAM};
	/* Only the part of the hole minivmm uses is reserved: the kernel looks
	 * for a gap below 4 GiB to put PCI windows in, and complains on a
	 * machine where there is none. */
	out[n++] = (struct e820_entry){LAYOUT_MMIO_DEVICES, LAYOUT_4G - LAYOUT_MMIO_DEVICES,
				       E820_RESERVED};
	if (vm->mem.n_regions > 1)
		out[n++] = (struct e820_entry){vm->mem.regions[1].gpa, vm->mem.regions[1].size,
					       E820_RAM};
	return n;
}

/* Does the command line set parameter name (as "name=..." or "name")? */
static bool cmdline_has_param(const char *cmdline, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = cmdline; (p = strstr(p, name)); p += n) {
		bool starts = p == cmdline || p[-1] == ' ';
		if (starts && (p[n] == '=' || p[n] == ' ' || p[n] == '\0'))
			return true;
	}
	return false;
}

/* Unless the command line says otherwise, the kernel is told not to scan
 * PCI early: early_quirks() (arch/x86/kernel/early-quirks.c) reads every
 * slot of all 256 buses through 0xCF8/0xCFC, over 30,000 port-I/O exits
 * for a bus that holds only the host bridge (docs/boot.md, 4). pci=off
 * would save the same but leaves the kernel without configuration
 * mechanism #1 (devices/pci_host.c), and it says so as "PCI: Fatal". */
#define CMDLINE_PCI " pci=noearly"

int boot_linux_cmdline(struct vm *vm, const char *cmdline, uint64_t max)
{
	size_t len = strlen(cmdline);
	if (max > LAYOUT_CMDLINE_MAX - 1)
		max = LAYOUT_CMDLINE_MAX - 1;
	if (len > max) {
		log_error("command line too long: %zu bytes, this kernel takes at most %" PRIu64,
			  len, max);
		return -1;
	}
	size_t extra = sizeof(CMDLINE_PCI) - 1;
	bool add_pci = !cmdline_has_param(cmdline, "pci") && len + extra <= max;
	size_t total = len + (add_pci ? extra : 0);
	if (loader_claim(vm, LAYOUT_CMDLINE, total + 1, "the command line") < 0)
		return -1;
	if (gmem_write(&vm->mem, LAYOUT_CMDLINE, cmdline, len) < 0)
		return -1;
	if (add_pci && gmem_write(&vm->mem, LAYOUT_CMDLINE + len, CMDLINE_PCI, extra) < 0)
		return -1;
	return gmem_write(&vm->mem, LAYOUT_CMDLINE + total, "", 1);
}

int boot_linux_initrd(struct vm *vm, const char *path, uint64_t kernel_end,
		      uint64_t addr_max, uint64_t *addr, uint64_t *size)
{
	*addr = *size = 0;
	if (!path)
		return 0;
	uint8_t *buf;
	size_t len;
	if (loader_read_file(path, vm->mem.ram_size, &buf, &len) < 0)
		return -1;
	uint64_t top = gmem_low_end(&vm->mem);
	if (addr_max < UINT64_MAX && addr_max + 1 < top)
		top = addr_max + 1;
	uint64_t need = (len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	if (need > top || ((top - need) & ~(PAGE_SIZE - 1)) < kernel_end) {
		log_error("the kernel (up to 0x%" PRIx64 ", %" PRIu64 " MiB with its init_size) and "
			  "the initrd %s (%zu MiB) do not fit together in %" PRIu64 " MiB of guest "
			  "RAM below 0x%" PRIx64 "; give a larger --memory",
			  kernel_end, kernel_end >> 20, path, len >> 20, vm->mem.ram_size >> 20, top);
		free(buf);
		return -1;
	}
	uint64_t start = (top - need) & ~(PAGE_SIZE - 1);
	if (loader_claim(vm, start, len, "the initrd") < 0) {
		free(buf);
		return -1;
	}
	gmem_write(&vm->mem, start, buf, len);
	free(buf);
	*addr = start;
	*size = len;
	return 0;
}

static void wr8(uint8_t *p, size_t off, uint8_t v) { p[off] = v; }
static void wr32(uint8_t *p, size_t off, uint32_t v) { memcpy(p + off, &v, 4); }
static void wr64(uint8_t *p, size_t off, uint64_t v) { memcpy(p + off, &v, 8); }

int boot_linux_zero_page(struct vm *vm, const uint8_t *hdr, size_t hdr_len,
			 uint64_t initrd, uint64_t initrd_size, uint64_t rsdp)
{
	uint8_t *bp = gmem_ptr(&vm->mem, LAYOUT_ZERO_PAGE, BP_SIZE);
	if (!bp || hdr_len > BOOT_LINUX_HDR_END_MAX - HDR_SETUP_SECTS)
		return -1;
	memset(bp, 0, BP_SIZE);
	memcpy(bp + HDR_SETUP_SECTS, hdr, hdr_len);
	wr8(bp, HDR_TYPE_OF_LOADER, LOADER_TYPE_UNDEFINED);
	wr32(bp, HDR_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);
	wr32(bp, BP_EXT_CMD_LINE_PTR, (uint32_t)(LAYOUT_CMDLINE >> 32));
	wr32(bp, HDR_RAMDISK_IMAGE, (uint32_t)initrd);
	wr32(bp, HDR_RAMDISK_SIZE, (uint32_t)initrd_size);
	wr32(bp, BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd >> 32));
	wr32(bp, BP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_size >> 32));
	if (rsdp)
		wr64(bp, BP_ACPI_RSDP_ADDR, rsdp);
	struct e820_entry map[BOOT_LINUX_MAX_E820];
	int n = boot_linux_e820(vm, map);
	memcpy(bp + BP_E820_TABLE, map, (size_t)n * sizeof(map[0]));
	wr8(bp, BP_E820_ENTRIES, (uint8_t)n);
	return 0;
}

int boot_linux_reset_vector(struct vm *vm)
{
	/* Real mode, CS:IP = F000:FFF0. */
	const uint8_t stub[] = {
		0xb0, ACPI_PM_RESET_VALUE,                        /* mov al, value */
		0xba, ACPI_PM_RESET & 0xff, ACPI_PM_RESET >> 8,   /* mov dx, port */
		0xee,                                             /* out dx, al */
		0xfa,                                             /* 1: cli */
		0xf4,                                             /* hlt */
		0xeb, 0xfc,                                       /* jmp 1b */
	};
	return gmem_write(&vm->mem, LAYOUT_RESET_VECTOR, stub, sizeof(stub));
}
