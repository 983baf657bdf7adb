/*
 * The reset line of the 8042 keyboard controller, and nothing else: the
 * command 0xFE ("pulse output port bit 0", which on a PC resets the CPU)
 * written to the command port 0x64 stops the VM as a reboot. That is
 * Linux's reboot=k method. The status register reads 0 (no data, input
 * buffer empty), so the kernel's wait for the controller ends at once
 * instead of spinning through thousands of exits.
 *
 * There is no keyboard: the FADT does not set the 8042 flag (vmm/acpi.c),
 * so the kernel's i8042 driver does not probe this.
 */
#include "devices/device.h"
#include "lib/cli.h"
#include "vmm/vm.h"

#define I8042_DATA_PORT 0x60
#define I8042_COMMAND_PORT 0x64
#define I8042_CMD_RESET 0xfe

static void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write)
{
	(void)opaque, (void)offset, (void)len;
	if (!is_write)
		data[0] = 0;
}

static void i8042_command_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			     bool is_write)
{
	struct vm *vm = opaque;
	(void)offset, (void)len;
	if (!is_write)
		data[0] = 0; /* status: output and input buffers empty */
	else if (data[0] == I8042_CMD_RESET)
		vm_stop(vm, EXIT_OK, "guest rebooted (i8042 reset)");
}

static int i8042_create(struct vm *vm)
{
	if (bus_register(&vm->pio, I8042_DATA_PORT, 1, i8042_data_io, vm, "i8042") < 0)
		return -1;
	return bus_register(&vm->pio, I8042_COMMAND_PORT, 1, i8042_command_io, vm, "i8042");
}

static const struct device_ops i8042_ops = {
	.name = "i8042",
	.order = DEVICE_ORDER_PLATFORM,
	.create = i8042_create,
};
DEVICE_REGISTER(i8042_ops)
