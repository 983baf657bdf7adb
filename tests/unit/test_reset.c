/* The reset ports (devices/reset.c; 0xCF9 decoded by devices/pci_host.c;
 * devices/i8042.c) through the VM's port
 * bus: each documented reset write ends the run as a reboot (status 0,
 * "guest rebooted ..."); writes that are not resets do not. Ports and bits
 * are restated from the datasheets on purpose. */
#include "tests/unit/unit.h"
#include "tests/unit/test_vm_fake.h"

#define PORT_A 0x92
#define PORT_A_A20 0x02
#define RCR 0xcf9
#define I8042_CMD 0x64
#define I8042_PULSE_RESET 0xfe

static void vm_with(struct fake_vm *v, const char *dev)
{
	fake_vm_init(v, NULL, 8);
	ck_assert_int_eq(device_create(&v->vm, dev), 0);
}

static void out8(struct fake_vm *v, uint16_t port, uint8_t x)
{
	ck_assert(bus_dispatch(&v->vm.pio, port, &x, 1, true));
}

static uint8_t in8(struct fake_vm *v, uint16_t port)
{
	uint8_t x = 0x55;
	ck_assert(bus_dispatch(&v->vm.pio, port, &x, 1, false));
	return x;
}

static void assert_rebooted(struct fake_vm *v)
{
	ck_assert(vm_is_stopping(&v->vm));
	ck_assert_int_eq(v->vm.exit_status, EXIT_OK);
	ck_assert_msg(strncmp(v->vm.stop_reason, "guest rebooted", 14) == 0, "reason: %s",
		      v->vm.stop_reason);
}

START_TEST(test_port_92)
{
	struct fake_vm v;
	vm_with(&v, "reset");
	/* A20 reads as enabled, before and after the guest writes the gate. */
	ck_assert(in8(&v, PORT_A) & PORT_A_A20);
	out8(&v, PORT_A, 0x00);
	ck_assert(in8(&v, PORT_A) & PORT_A_A20);
	ck_assert(!(in8(&v, PORT_A) & 0x01));
	out8(&v, PORT_A, PORT_A_A20);
	ck_assert(!vm_is_stopping(&v.vm));
	/* Bit 0: fast reset. */
	out8(&v, PORT_A, PORT_A_A20 | 0x01);
	assert_rebooted(&v);
	fake_vm_free(&v);
}
END_TEST

START_TEST(test_cf9)
{
	static const uint8_t resets[] = {0x06, 0x0e, 0x04};
	for (size_t i = 0; i < sizeof(resets); i++) {
		struct fake_vm v;
		vm_with(&v, "pci-host");
		/* Choosing the kind of reset (SYS_RST) is not a reset. */
		out8(&v, RCR, 0x02);
		ck_assert(!vm_is_stopping(&v.vm));
		ck_assert_uint_eq(in8(&v, RCR), 0x02);
		out8(&v, RCR, 0x00);
		ck_assert(!vm_is_stopping(&v.vm));
		out8(&v, RCR, resets[i]);
		assert_rebooted(&v);
		fake_vm_free(&v);
	}
}
END_TEST

START_TEST(test_i8042)
{
	struct fake_vm v;
	vm_with(&v, "i8042");
	/* Status: buffers empty, so a driver's wait ends at once. */
	ck_assert_uint_eq(in8(&v, I8042_CMD), 0);
	/* Other commands (disable keyboard, read output port) are no reset. */
	out8(&v, I8042_CMD, 0xad);
	out8(&v, I8042_CMD, 0xd0);
	ck_assert(!vm_is_stopping(&v.vm));
	out8(&v, I8042_CMD, I8042_PULSE_RESET);
	assert_rebooted(&v);
	fake_vm_free(&v);
}
END_TEST

static Suite *reset_suite(void)
{
	Suite *s = suite_create("reset");
	TCase *tc = tcase_create("ports");
	tcase_add_test(tc, test_port_92);
	tcase_add_test(tc, test_cf9);
	tcase_add_test(tc, test_i8042);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(reset_suite)
