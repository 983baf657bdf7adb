/*
 * The hardware-reduced ACPI power registers the FADT points at
 * (vmm/acpi.h): the sleep control register, whose write of SLP_EN with the
 * _S5 sleep type is "power off" (ACPI 6.4, 4.8.3.7 and 7.4.2), the sleep
 * status register, and the reset register (4.8.3.6). A guest reboot stops
 * the VM too, as Firecracker does: a fresh VM is the caller's job.
 */
#include "devices/device.h"
#include "vmm/acpi.h"
#include "lib/cli.h"
#include "vmm/vm.h"

static void acpi_pm_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
		       bool is_write)
{
	struct vm *vm = opaque;
	(void)len;
	if (!is_write) {
		/* Sleep status: WAK_STS (bit 7) is never set; we never sleep. */
		data[0] = 0;
		return;
	}
	uint16_t port = (uint16_t)(ACPI_PM_PORT_BASE + offset);
	uint8_t v = data[0];
	if (port == ACPI_PM_SLEEP_CONTROL && (v & ACPI_SLEEP_EN)) {
		unsigned typ = (v >> ACPI_SLEEP_TYP_SHIFT) & ACPI_SLEEP_TYP_MASK;
		if (typ == ACPI_S5_SLP_TYP)
			vm_stop(vm, EXIT_OK, "guest powered off");
		/* Other sleep states are not offered in the DSDT: ignore. */
	} else if (port == ACPI_PM_RESET && v == ACPI_PM_RESET_VALUE) {
		vm_stop(vm, EXIT_OK, "guest rebooted");
	}
}

static int acpi_pm_create(struct vm *vm)
{
	return bus_register(&vm->pio, ACPI_PM_PORT_BASE, ACPI_PM_NPORTS, acpi_pm_io, vm,
			    "acpi-pm");
}

static const struct device_ops acpi_pm_ops = {
	.name = "acpi-pm",
	.order = DEVICE_ORDER_PLATFORM,
	.create = acpi_pm_create,
};
DEVICE_REGISTER(acpi_pm_ops)
