/*
 * Debug-exit port, compatible with QEMU's isa-debug-exit (iobase 0xf4,
 * iosize 4): a write of V stops the VM and minivmm exits with status
 * (V << 1) | 1, so test guests written for QEMU run unchanged.
 */
#include "devices/device.h"
#include "vmm/vm.h"

#include <string.h>

#define DEBUG_EXIT_PORT 0xf4
#define DEBUG_EXIT_SIZE 4

static void debug_exit_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write)
{
	struct vm *vm = opaque;
	(void)offset;
	if (!is_write)
		return;
	uint32_t v = 0;
	memcpy(&v, data, len < 4 ? len : 4);
	/* Exit statuses are 8 bits wide: QEMU truncates the same way. */
	int status = (int)(((v << 1) | 1) & 0xff);
	vm_stop(vm, status, "guest wrote 0x%x to the debug-exit port", v);
}

static int debug_exit_create(struct vm *vm)
{
	return bus_register(&vm->pio, DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE, debug_exit_io, vm,
			    "debug-exit");
}

static const struct device_ops debug_exit_ops = {
	.name = "debug-exit",
	.order = DEVICE_ORDER_PLATFORM,
	.create = debug_exit_create,
};
DEVICE_REGISTER(debug_exit_ops)
