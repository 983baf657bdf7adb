/*
 * The ACPI power-management timer (ACPI 6.4, 4.8.3.3): a free-running
 * counter at 3.579545 MHz, read at ACPI_PM_TIMER_PORT (vmm/acpi.h). It
 * counts from 0 at VM creation and is derived from the host's monotonic
 * clock at each read, so a guest that times a busy-wait with it measures
 * real time, whatever the vCPU was doing meanwhile. It is 32 bits wide
 * (the FADT says TMR_VAL_EXT) and wraps after 20 minutes. No interrupt:
 * TMR_STS/TMR_EN live in the PM1 event block, which a hardware-reduced
 * machine has not. Writes are ignored (the register is read-only).
 */
#include "devices/pm_timer.h"
#include "devices/device.h"
#include "vmm/acpi.h"
#include "lib/clock.h"
#include "vmm/vm.h"

#include <stdlib.h>
#include <string.h>

static const struct device_ops pm_timer_ops;

struct pm_timer {
	uint64_t start_ns;
};

uint32_t pm_timer_ticks(uint64_t ns)
{
	/* Split so that neither product overflows 64 bits. */
	uint64_t s = ns / CLOCK_NS_PER_S, rem = ns % CLOCK_NS_PER_S;
	return (uint32_t)(s * ACPI_PM_TIMER_HZ + rem * ACPI_PM_TIMER_HZ / CLOCK_NS_PER_S);
}

static void pm_timer_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			bool is_write)
{
	struct pm_timer *t = opaque;
	if (is_write)
		return;
	uint8_t bytes[8] = {0};
	uint32_t v = pm_timer_ticks(clock_now_ns() - t->start_ns);
	memcpy(bytes, &v, sizeof(v));
	/* A narrower read sees its bytes of the register; none past it. */
	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i < sizeof(bytes) ? bytes[offset + i] : 0;
}

static int pm_timer_create(struct vm *vm)
{
	struct pm_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->start_ns = clock_now_ns();
	if (bus_register(&vm->pio, ACPI_PM_TIMER_PORT, ACPI_PM_TIMER_LEN, pm_timer_io, t,
			 "pm-timer") < 0) {
		free(t);
		return -1;
	}
	if (device_add(vm, &pm_timer_ops, t) < 0) {
		bus_unregister(&vm->pio, ACPI_PM_TIMER_PORT);
		free(t);
		return -1;
	}
	return 0;
}

static void pm_timer_destroy(void *instance)
{
	free(instance);
}

static const struct device_ops pm_timer_ops = {
	.name = "pm-timer",
	.order = DEVICE_ORDER_PLATFORM,
	.create = pm_timer_create,
	.destroy = pm_timer_destroy,
};
DEVICE_REGISTER(pm_timer_ops)
