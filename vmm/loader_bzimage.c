/*
 * Linux bzImage through the 64-bit boot protocol (Documentation/arch/x86/
 * boot.rst, "The Real-Mode Kernel Header" and "64-bit Boot Protocol").
 *
 * The 16-bit setup code is never run: minivmm does what it would do. The
 * protected-mode part of the file goes to pref_address with init_size bytes
 * of room; the zero page (struct boot_params) gets the file's setup header,
 * the memory map, the command line and initrd pointers and the RSDP; the
 * boot vCPU starts in 64-bit mode at the load address + 0x200 with RSI
 * pointing at the zero page.
 */
#include "vmm/acpi.h"
#include "vmm/boot_linux.h"
#include "vmm/layout.h"
#include "vmm/loader.h"
#include "lib/log.h"
#include "vmm/vm.h"

#include <inttypes.h>
#include <string.h>

static uint8_t rd8(const uint8_t *p, size_t off) { return p[off]; }
static uint16_t rd16(const uint8_t *p, size_t off) { uint16_t v; memcpy(&v, p + off, 2); return v; }
static uint32_t rd32(const uint8_t *p, size_t off) { uint32_t v; memcpy(&v, p + off, 4); return v; }
static uint64_t rd64(const uint8_t *p, size_t off) { uint64_t v; memcpy(&v, p + off, 8); return v; }

static bool bzimage_probe(const uint8_t *buf, size_t len)
{
	return len >= HDR_MAGIC + 4 && memcmp(buf + HDR_MAGIC, HDRS_MAGIC, 4) == 0;
}

static int bzimage_load(struct vm *vm, const struct load_args *a)
{
	const uint8_t *k = a->kernel;
	const char *path = a->kernel_path;
	if (a->kernel_size < HDR_VERSION + 2) {
		log_error("%s: truncated: %zu bytes, too short for a Linux setup header", path,
			  a->kernel_size);
		return -1;
	}
	uint16_t version = rd16(k, HDR_VERSION);
	if (version < PROTOCOL_MIN) {
		log_error("%s: Linux boot protocol %u.%02u is too old: minivmm needs 2.12 or "
			  "newer (the 64-bit entry point; Linux 3.8 and later)", path,
			  version >> 8, version & 0xff);
		return -1;
	}
	/* The header runs to 0x202 + the jump's offset byte (boot.rst). */
	size_t hdr_end = HDR_MAGIC + rd8(k, HDR_JUMP + 1);
	if (a->kernel_size < HDR_END_MIN || hdr_end < HDR_END_MIN || hdr_end > BOOT_LINUX_HDR_END_MAX ||
	    hdr_end > a->kernel_size) {
		log_error("%s: truncated or malformed: the setup header is incomplete", path);
		return -1;
	}
	if (rd16(k, HDR_BOOT_FLAG) != BOOT_FLAG_MAGIC) {
		log_error("%s: not a Linux kernel: boot flag 0x%04x, expected 0xaa55", path,
			  rd16(k, HDR_BOOT_FLAG));
		return -1;
	}
	if (!(rd16(k, HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
		log_error("%s: this kernel has no 64-bit entry point (XLF_KERNEL_64 is clear): "
			  "a 32-bit kernel cannot be booted", path);
		return -1;
	}
	if (!(rd8(k, HDR_LOADFLAGS) & LOADFLAG_LOADED_HIGH)) {
		log_error("%s: a zImage (loaded at 0x10000) is not supported, only bzImage", path);
		return -1;
	}
	uint32_t setup_sects = rd8(k, HDR_SETUP_SECTS);
	if (setup_sects == 0)
		setup_sects = SETUP_SECTS_DEFAULT;
	uint64_t setup_size = (uint64_t)(setup_sects + 1) * SECTOR_SIZE;
	uint64_t payload = (uint64_t)rd32(k, HDR_SYSSIZE) * 16;
	if (setup_size > a->kernel_size || payload > a->kernel_size - setup_size) {
		log_error("%s: truncated: the header announces %" PRIu64 " bytes, the file has %zu",
			  path, setup_size + payload, a->kernel_size);
		return -1;
	}
	uint64_t file_payload = a->kernel_size - setup_size;
	uint64_t init_size = rd32(k, HDR_INIT_SIZE);
	uint64_t align = rd32(k, HDR_KERNEL_ALIGNMENT);
	uint64_t load = rd64(k, HDR_PREF_ADDRESS);
	bool relocatable = rd8(k, HDR_RELOCATABLE) != 0;
	if (load == 0 || load >= LAYOUT_4G)
		load = LAYOUT_HIGH_MEMORY;
	if (relocatable && align && (align & (align - 1)) == 0)
		load = (load + align - 1) & ~(align - 1);
	if (init_size < file_payload)
		init_size = file_payload;
	uint64_t kernel_end = load + init_size;
	log_debug("%s: protocol %u.%02u, %srelocatable, load at 0x%" PRIx64 ", init_size %" PRIu64
		  " MiB", path, version >> 8, version & 0xff, relocatable ? "" : "not ", load,
		  init_size >> 20);
	if (kernel_end > gmem_low_end(&vm->mem)) {
		log_error("%s: the kernel needs RAM up to 0x%" PRIx64 " (load address 0x%" PRIx64
			  " + init_size %" PRIu64 " MiB) but the guest has %" PRIu64 " MiB; give a "
			  "larger --memory", path, kernel_end, load, init_size >> 20,
			  vm->mem.ram_size >> 20);
		return -1;
	}
	if (loader_claim_linux_boot(vm) < 0 ||
	    loader_claim(vm, load, init_size, "the kernel (with init_size)") < 0)
		return -1;
	gmem_write(&vm->mem, load, k + setup_size, file_payload);

	uint32_t cmdline_size = rd32(k, HDR_CMDLINE_SIZE);
	if (boot_linux_cmdline(vm, a->cmdline, cmdline_size) < 0)
		return -1;
	uint64_t initrd, initrd_size;
	if (boot_linux_initrd(vm, a->initrd_path, kernel_end, rd32(k, HDR_INITRD_ADDR_MAX),
			      &initrd, &initrd_size) < 0)
		return -1;
	uint64_t rsdp = acpi_build(vm, ACPI_GUEST_LINUX);
	if (!rsdp || boot_linux_reset_vector(vm) < 0)
		return -1;

	if (boot_linux_zero_page(vm, k + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS, initrd,
				 initrd_size, version >= PROTOCOL_RSDP ? rsdp : 0) < 0)
		return -1;

	vm->boot = (struct boot_state){
		.mode = BOOT_MODE_LONG64,
		.rip = load + ENTRY_64_OFFSET,
		.rsp = LAYOUT_STACK_TOP,
		.rsi = LAYOUT_ZERO_PAGE,
		.loaded = true,
		.format = "bzimage",
	};
	return 0;
}

static const struct loader_ops bzimage_loader = {
	.name = "bzimage",
	.priority = 10,
	.probe = bzimage_probe,
	.load = bzimage_load,
};
LOADER_REGISTER(bzimage_loader)
