/*
 * PCI configuration mechanism #1 with a bus that holds only a host bridge
 * (an Intel 440FX, as on QEMU's default PC machine), so that a kernel that
 * probes PCI finds a configuration mechanism and nothing behind it. Every
 * other device and function reads as absent (all ones); the bridge's
 * configuration space is read-only and has no BARs.
 *
 * Ports 0xCF8-0xCFF are told apart by access size, as chipsets decode them
 * (PCI Local Bus Specification 3.0, 3.2.2.3.2): only a 32-bit access to
 * 0xCF8 is CONFIG_ADDRESS; a byte at 0xCF9 is the chipset's Reset Control
 * Register (devices/reset.h); other accesses to 0xCF8-0xCFB reach nothing.
 * 0xCFC-0xCFF is CONFIG_DATA, any width, at the byte of the selected
 * 32-bit register the port names.
 */
#include "devices/device.h"
#include "devices/reset.h"
#include "lib/log.h"
#include "vmm/vm.h"

#include <stdlib.h>
#include <string.h>

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_CONFIG_NPORTS 8
/* CONFIG_ADDRESS (3.2.2.3.2): bit 31 enables the data port; bits 23:16
 * bus, 15:11 device, 10:8 function, 7:2 dword register; bits 1:0 read as
 * 0. Bits 27:24 extend the register number on some chipsets (AMD), for
 * offsets past 256 that a conventional device does not have. */
#define CONF1_ENABLE 0x80000000U
#define CONF1_EXT_REG_MASK 0x0f000000U
#define CONF1_BUS_DEVFN_MASK 0x00ffff00U
#define CONF1_REG_MASK 0x000000fcU
#define CONF1_WRITABLE_MASK 0xfffffffcU

/* The host bridge's configuration header (PCI 3.0, 6.1, "type 00h"). */
#define PCI_CFG_SIZE 256
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_DEVICE 0x0a /* sub-class, then base class */
#define PCI_HEADER_TYPE 0x0e
#define HOST_VENDOR_INTEL 0x8086
#define HOST_DEVICE_82441 0x1237 /* 440FX PMC */
#define HOST_REVISION 0x02
#define PCI_CLASS_BRIDGE_HOST 0x0600
#define PCI_HEADER_TYPE_NORMAL 0x00

struct pci_host {
	struct vm *vm;
	uint32_t address; /* CONFIG_ADDRESS */
	uint8_t rcr;      /* the Reset Control Register's value */
	uint8_t cfg[PCI_CFG_SIZE];
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* Byte off of the selected register, or -1 if nothing answers. */
static int selected_byte(const struct pci_host *h, uint32_t off)
{
	uint32_t a = h->address;
	if (!(a & CONF1_ENABLE) || (a & CONF1_EXT_REG_MASK))
		return -1;
	if (a & CONF1_BUS_DEVFN_MASK)
		return -1; /* bus 0, device 0, function 0 only */
	return (int)((a & CONF1_REG_MASK) + off);
}

static void config_data(struct pci_host *h, uint32_t off, uint8_t *data, uint32_t len,
			bool is_write)
{
	if (is_write)
		return; /* the bridge has nothing to configure */
	for (uint32_t i = 0; i < len; i++) {
		int b = selected_byte(h, off + i);
		data[i] = b < 0 ? 0xff : h->cfg[b];
	}
}

static void pci_host_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			bool is_write)
{
	struct pci_host *h = opaque;
	uint16_t port = (uint16_t)(PCI_CONFIG_ADDRESS + offset);
	if (port >= PCI_CONFIG_DATA) {
		/* The bus keeps port + len within 0xCFF. */
		config_data(h, port - PCI_CONFIG_DATA, data, len, is_write);
	} else if (port == PCI_CONFIG_ADDRESS && len == 4) {
		if (is_write) {
			uint32_t v;
			memcpy(&v, data, 4);
			h->address = v & CONF1_WRITABLE_MASK;
		} else {
			memcpy(data, &h->address, 4);
		}
	} else if (port == RESET_RCR_PORT && len == 1) {
		if (is_write)
			reset_rcr_write(h->vm, &h->rcr, data[0]);
		else
			data[0] = reset_rcr_read(&h->rcr);
	} else if (!is_write) {
		memset(data, 0xff, len); /* ordinary I/O, and nobody is there */
	}
}

static void pci_host_destroy(void *instance)
{
	struct pci_host *h = instance;
	bus_unregister(&h->vm->pio, PCI_CONFIG_ADDRESS);
	free(h);
}

static const struct device_ops pci_host_ops;

static int pci_host_create(struct vm *vm)
{
	struct pci_host *h = calloc(1, sizeof(*h));
	if (!h) {
		log_error("pci-host: out of memory");
		return -1;
	}
	h->vm = vm;
	put16(h->cfg + PCI_VENDOR_ID, HOST_VENDOR_INTEL);
	put16(h->cfg + PCI_DEVICE_ID, HOST_DEVICE_82441);
	h->cfg[PCI_REVISION_ID] = HOST_REVISION;
	put16(h->cfg + PCI_CLASS_DEVICE, PCI_CLASS_BRIDGE_HOST);
	h->cfg[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
	if (bus_register(&vm->pio, PCI_CONFIG_ADDRESS, PCI_CONFIG_NPORTS, pci_host_io, h,
			 "pci-host") < 0) {
		free(h);
		return -1;
	}
	if (device_add(vm, &pci_host_ops, h) < 0) {
		pci_host_destroy(h);
		return -1;
	}
	return 0;
}

static const struct device_ops pci_host_ops = {
	.name = "pci-host",
	.order = DEVICE_ORDER_PLATFORM,
	.create = pci_host_create,
	.destroy = pci_host_destroy,
};
DEVICE_REGISTER(pci_host_ops)
