/*
 * QEMU's firmware configuration interface (fw_cfg), the I/O-port form that
 * QEMU-style test guests use to learn the CPU count and RAM size. Spec:
 * QEMU docs/specs/fw_cfg.rst; section names are quoted below.
 *
 * A 16-bit write to the selector port picks an item and rewinds its data
 * offset; each byte read from the data port returns the next byte of the
 * item. Items are fixed when the VM is created and read-only: writes to the
 * data port are ignored (the spec allows that since QEMU 2.4). A selector
 * with no item behind it, or a read past an item's end, gives 0 bytes.
 * There is no DMA interface, and the ID item says so.
 */
#include "devices/device.h"
#include "lib/log.h"
#include "vmm/boot_linux.h"
#include "vmm/vm.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

/* "Register Locations": x86 I/O ports. The DMA address register at 0x514
 * is not offered. */
#define FW_CFG_PORT_SELECTOR 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_NPORTS 2

/* "Firmware Configuration Items": the selector keys. */
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_MAX_CPUS 0x0f
#define FW_CFG_CMDLINE_SIZE 0x14
#define FW_CFG_CMDLINE_DATA 0x15
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_FILE_FIRST 0x20 /* the first key of a named file */
/* "Selector (Control) Register": bit 14 asks for write access, which no
 * item here grants; an item is read the same way with it set. Bit 15
 * selects architecture-specific items: there are none, so such a key finds
 * nothing (it is past the table). */
#define FW_CFG_WRITE_CHANNEL 0x4000

/* "Signature (Key 0x0000, FW_CFG_SIGNATURE)". */
#define FW_CFG_SIGNATURE_BYTES "QEMU"
/* "Revision / feature bitmap (Key 0x0001, FW_CFG_ID)": bit 0 is the
 * traditional (port) interface; bit 1, DMA, stays clear. */
#define FW_CFG_ID_TRADITIONAL 0x1

/* "File Directory (Key 0x0019, FW_CFG_FILE_DIR)": a big-endian 32-bit
 * count, then one 64-byte entry per file. */
#define FW_CFG_MAX_FILE_PATH 56
struct fw_cfg_file {
	uint32_t size;   /* big-endian */
	uint16_t select; /* big-endian */
	uint16_t reserved;
	char name[FW_CFG_MAX_FILE_PATH];
} __attribute__((packed));

enum { FILE_E820, N_FILES };
#define FW_CFG_N_KEYS (FW_CFG_FILE_FIRST + N_FILES)

struct fw_cfg_item {
	uint8_t *data; /* owned; NULL for a key with no item */
	uint32_t size;
};

struct fw_cfg {
	struct vm *vm;
	struct fw_cfg_item items[FW_CFG_N_KEYS];
	uint16_t selector;
	uint32_t offset; /* next byte of the selected item */
};

static int item_set(struct fw_cfg *f, uint16_t key, const void *data, size_t size)
{
	f->items[key].data = malloc(size ? size : 1);
	if (!f->items[key].data)
		return -1;
	memcpy(f->items[key].data, data, size);
	f->items[key].size = (uint32_t)size;
	return 0;
}

static int item_set_le(struct fw_cfg *f, uint16_t key, uint64_t v, size_t width)
{
	uint64_t le = htole64(v);
	return item_set(f, key, &le, width); /* the low bytes of a little-endian value */
}

static uint8_t data_read(struct fw_cfg *f)
{
	uint16_t key = f->selector & (uint16_t)~FW_CFG_WRITE_CHANNEL;
	if (key >= FW_CFG_N_KEYS)
		return 0;
	const struct fw_cfg_item *it = &f->items[key];
	if (f->offset >= it->size)
		return 0;
	return it->data[f->offset++];
}

static void fw_cfg_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct fw_cfg *f = opaque;
	uint16_t port = (uint16_t)(FW_CFG_PORT_SELECTOR + offset);
	if (port == FW_CFG_PORT_SELECTOR && is_write) {
		/* Little-endian on I/O ports; a byte write selects a key below 0x100. */
		uint16_t sel = data[0];
		if (len >= 2)
			sel |= (uint16_t)(data[1] << 8);
		f->selector = sel;
		f->offset = 0;
	} else if (port == FW_CFG_PORT_DATA && !is_write) {
		for (uint32_t i = 0; i < len; i++)
			data[i] = data_read(f);
	}
	/* Selector reads see 0s (the bus zeroed data); data writes are ignored. */
}

/* The file directory for the files items[FW_CFG_FILE_FIRST...] hold. */
static int fill_file_dir(struct fw_cfg *f, const char *const names[N_FILES])
{
	struct {
		uint32_t count;
		struct fw_cfg_file files[N_FILES];
	} __attribute__((packed)) dir;
	memset(&dir, 0, sizeof(dir));
	dir.count = htobe32(N_FILES);
	for (int i = 0; i < N_FILES; i++) {
		uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + i);
		dir.files[i].size = htobe32(f->items[key].size);
		dir.files[i].select = htobe16(key);
		strncpy(dir.files[i].name, names[i], FW_CFG_MAX_FILE_PATH - 1);
	}
	return item_set(f, FW_CFG_FILE_DIR, &dir, sizeof(dir));
}

static void fw_cfg_free(struct fw_cfg *f)
{
	for (int i = 0; i < FW_CFG_N_KEYS; i++)
		free(f->items[i].data);
	free(f);
}

static void fw_cfg_destroy(void *instance)
{
	struct fw_cfg *f = instance;
	bus_unregister(&f->vm->pio, FW_CFG_PORT_SELECTOR);
	fw_cfg_free(f);
}

static int fill_items(struct fw_cfg *f, struct vm *vm)
{
	const char *cmdline = vm->cfg ? config_get(vm->cfg, "cmdline") : NULL;
	if (!cmdline)
		cmdline = "";
	/* The same map the Linux loaders hand over (vmm/boot_linux.h). */
	struct e820_entry map[BOOT_LINUX_MAX_E820];
	int n_map = boot_linux_e820(vm, map);
	static const char *const names[N_FILES] = {[FILE_E820] = "etc/e820"};

	if (item_set(f, FW_CFG_SIGNATURE, FW_CFG_SIGNATURE_BYTES, 4) < 0 ||
	    item_set_le(f, FW_CFG_ID, FW_CFG_ID_TRADITIONAL, 4) < 0 ||
	    item_set_le(f, FW_CFG_RAM_SIZE, vm->mem.ram_size, 8) < 0 ||
	    item_set_le(f, FW_CFG_NB_CPUS, (uint64_t)vm->n_vcpus, 2) < 0 ||
	    item_set_le(f, FW_CFG_MAX_CPUS, (uint64_t)vm->n_vcpus, 2) < 0 ||
	    /* The size counts the terminating NUL, and the data holds it. */
	    item_set_le(f, FW_CFG_CMDLINE_SIZE, strlen(cmdline) + 1, 4) < 0 ||
	    item_set(f, FW_CFG_CMDLINE_DATA, cmdline, strlen(cmdline) + 1) < 0 ||
	    item_set(f, FW_CFG_FILE_FIRST + FILE_E820, map, (size_t)n_map * sizeof(map[0])) < 0 ||
	    fill_file_dir(f, names) < 0)
		return -1;
	return 0;
}

static const struct device_ops fw_cfg_ops;

static int fw_cfg_create(struct vm *vm)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	if (!f || fill_items(f, vm) < 0) {
		log_error("fw-cfg: out of memory");
		if (f)
			fw_cfg_free(f);
		return -1;
	}
	f->vm = vm;
	if (bus_register(&vm->pio, FW_CFG_PORT_SELECTOR, FW_CFG_NPORTS, fw_cfg_io, f,
			 "fw-cfg") < 0) {
		fw_cfg_free(f);
		return -1;
	}
	if (device_add(vm, &fw_cfg_ops, f) < 0) {
		fw_cfg_destroy(f);
		return -1;
	}
	return 0;
}

static const struct device_ops fw_cfg_ops = {
	.name = "fw-cfg",
	.order = DEVICE_ORDER_PLATFORM,
	.create = fw_cfg_create,
	.destroy = fw_cfg_destroy,
};
DEVICE_REGISTER(fw_cfg_ops)
