/*
 * System Control Port A (0x92) and the Reset Control Register (0xCF9):
 * devices/reset.h. Bits from Intel's chipset datasheets (82371AB PIIX4,
 * "Port 92h"; I/O Controller Hub 9, "RST_CNT - Reset Control Register"),
 * the registers QEMU's PC models answer too.
 */
#include "devices/reset.h"
#include "devices/device.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "vmm/vm.h"

#include <stdlib.h>

#define PORT_A 0x92
/* Port 92h bit 0, ALT_RST / FAST_INIT: a 0-to-1 transition resets the
 * CPU. It never reads back as 1, so every write with it set is one. */
#define PORT_A_FAST_RESET 0x01
/* Port 92h bit 1, ALT_A20_GATE. KVM has no A20 mask: the gate is always
 * open, so reads say so whatever was written. */
#define PORT_A_A20 0x02

/* RST_CNT bit 1, SYS_RST: the kind of reset bit 2 makes (hard, not just
 * the CPU); bit 2, RST_CPU: a 0-to-1 transition resets; bit 3, FULL_RST:
 * power-cycle as well. 0x06 and 0x0E are the writes of Linux's reboot=pci
 * and of firmware. Every kind ends the run the same way. */
#define RCR_SYS_RST 0x02
#define RCR_RST_CPU 0x04
#define RCR_FULL_RST 0x08

void reset_rcr_write(struct vm *vm, uint8_t *rcr, uint8_t v)
{
	if (v & RCR_RST_CPU)
		vm_stop(vm, EXIT_OK, "guest rebooted (reset control register 0xcf9)");
	/* RST_CPU is self-clearing; the reset kind is kept. */
	*rcr = v & (RCR_SYS_RST | RCR_FULL_RST);
}

uint8_t reset_rcr_read(const uint8_t *rcr)
{
	return *rcr;
}

/* 0xCF9 itself is decoded by devices/pci_host.c, which owns 0xCF8-0xCFF. */
struct reset_ports {
	struct vm *vm;
	uint8_t port_a; /* bits kept by port 0x92 */
};

static void port_a_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
		      bool is_write)
{
	struct reset_ports *r = opaque;
	(void)offset, (void)len;
	if (!is_write) {
		data[0] = (uint8_t)(r->port_a | PORT_A_A20);
		return;
	}
	if (data[0] & PORT_A_FAST_RESET)
		vm_stop(r->vm, EXIT_OK, "guest rebooted (fast reset, port 0x92)");
	r->port_a = data[0] & (uint8_t)~PORT_A_FAST_RESET;
}

static void reset_destroy(void *instance)
{
	struct reset_ports *r = instance;
	bus_unregister(&r->vm->pio, PORT_A);
	free(r);
}

static const struct device_ops reset_ops;

static int reset_create(struct vm *vm)
{
	struct reset_ports *r = calloc(1, sizeof(*r));
	if (!r) {
		log_error("reset: out of memory");
		return -1;
	}
	r->vm = vm;
	if (bus_register(&vm->pio, PORT_A, 1, port_a_io, r, "reset") < 0) {
		free(r);
		return -1;
	}
	if (device_add(vm, &reset_ops, r) < 0) {
		reset_destroy(r);
		return -1;
	}
	return 0;
}

static const struct device_ops reset_ops = {
	.name = "reset",
	.order = DEVICE_ORDER_PLATFORM,
	.create = reset_create,
	.destroy = reset_destroy,
};
DEVICE_REGISTER(reset_ops)
