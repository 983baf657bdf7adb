/* PCI configuration mechanism #1 (devices/pci_host.c) through the VM's
 * port bus, as Linux's arch/x86/pci/direct.c drives it, and the Reset
 * Control Register that shares its ports (0xCF9, told apart by access
 * size). Ports and header offsets restated from the PCI Local Bus
 * Specification 3.0 (3.2.2.3.2, 6.1) on purpose. */
#include "tests/unit/unit.h"
#include "tests/unit/test_vm_fake.h"

#define ADDR 0xcf8
#define DATA 0xcfc
#define RCR 0xcf9
#define ENABLE 0x80000000U
#define CONF1(bus, dev, fn, reg) (ENABLE | (bus) << 16 | (dev) << 11 | (fn) << 8 | (reg))

static void out(struct fake_vm *v, uint16_t port, uint32_t x, uint32_t len)
{
	ck_assert(bus_dispatch(&v->vm.pio, port, (uint8_t *)&x, len, true));
}

static uint32_t in(struct fake_vm *v, uint16_t port, uint32_t len)
{
	uint32_t x = 0;
	ck_assert(bus_dispatch(&v->vm.pio, port, (uint8_t *)&x, len, false));
	return x;
}

static uint32_t cfg_read(struct fake_vm *v, uint32_t address, uint32_t off, uint32_t len)
{
	out(v, ADDR, address, 4);
	return in(v, (uint16_t)(DATA + off), len);
}

static void host_vm(struct fake_vm *v)
{
	fake_vm_init(v, NULL, 8);
	ck_assert_int_eq(device_create(&v->vm, "pci-host"), 0);
}

START_TEST(test_linux_conf1_probe)
{
	struct fake_vm v;
	host_vm(&v);
	/* pci_check_type1: a byte to 0xCFB is ordinary I/O, then the address
	 * register keeps a 32-bit write. */
	out(&v, 0xcfb, 0x01, 1);
	(void)in(&v, ADDR, 4);
	out(&v, ADDR, ENABLE, 4);
	ck_assert_uint_eq(in(&v, ADDR, 4), ENABLE);
	/* Bits 1:0 read as 0. */
	out(&v, ADDR, CONF1(0, 0, 0, 0) | 3, 4);
	ck_assert_uint_eq(in(&v, ADDR, 4), CONF1(0, 0, 0, 0));
	ck_assert(!vm_is_stopping(&v.vm));
	fake_vm_free(&v);
}
END_TEST

START_TEST(test_host_bridge)
{
	struct fake_vm v;
	host_vm(&v);
	ck_assert_uint_eq(cfg_read(&v, CONF1(0, 0, 0, 0x00), 0, 4), 0x12378086);
	ck_assert_uint_eq(cfg_read(&v, CONF1(0, 0, 0, 0x00), 2, 2), 0x1237);
	ck_assert_uint_eq(cfg_read(&v, CONF1(0, 0, 0, 0x00), 1, 1), 0x80);
	/* Class code: base 0x06 (bridge), sub-class 0x00 (host). */
	ck_assert_uint_eq(cfg_read(&v, CONF1(0, 0, 0, 0x08), 0, 4) >> 16, 0x0600);
	ck_assert_uint_eq(cfg_read(&v, CONF1(0, 0, 0, 0x08), 2, 2), 0x0600);
	/* Header type 0, single function. */
	ck_assert_uint_eq(cfg_read(&v, CONF1(0, 0, 0, 0x0c), 2, 1), 0x00);
	/* No BARs: a sizing write leaves 0, as does any write. */
	out(&v, ADDR, CONF1(0, 0, 0, 0x10), 4);
	out(&v, DATA, 0xffffffff, 4);
	ck_assert_uint_eq(in(&v, DATA, 4), 0);
	out(&v, ADDR, CONF1(0, 0, 0, 0x00), 4);
	out(&v, DATA, 0, 4);
	ck_assert_uint_eq(in(&v, DATA, 4), 0x12378086);
	/* The last register of the 256 bytes is readable, byte by byte. */
	ck_assert_uint_eq(cfg_read(&v, CONF1(0, 0, 0, 0xfc), 3, 1), 0);
	fake_vm_free(&v);
}
END_TEST

START_TEST(test_nothing_else)
{
	struct fake_vm v;
	host_vm(&v);
	for (uint32_t devfn = 1; devfn < 256; devfn++)
		ck_assert_uint_eq(cfg_read(&v, ENABLE | devfn << 8, 0, 4), 0xffffffff);
	uint32_t buses[] = {1, 2, 0x80, 0xff};
	for (size_t i = 0; i < 4; i++) {
		ck_assert_uint_eq(cfg_read(&v, CONF1(buses[i], 0, 0, 0), 0, 4), 0xffffffff);
		ck_assert_uint_eq(cfg_read(&v, CONF1(buses[i], 0, 0, 0), 2, 2), 0xffff);
	}
	/* Enable bit clear: the data port is ordinary I/O, nobody there. */
	ck_assert_uint_eq(cfg_read(&v, 0, 0, 4), 0xffffffff);
	ck_assert_uint_eq(cfg_read(&v, 0x8, 0, 4), 0xffffffff);
	/* Extended register bits (offsets past 256): absent. */
	ck_assert_uint_eq(cfg_read(&v, CONF1(0, 0, 0, 0) | 0x01000000, 0, 4), 0xffffffff);
	fake_vm_free(&v);
}
END_TEST

START_TEST(test_cf9_shares_the_ports)
{
	struct fake_vm v;
	host_vm(&v);
	out(&v, ADDR, CONF1(0, 0, 0, 0x08), 4);
	/* A 32-bit address whose second byte is a reset value is no reset. */
	out(&v, ADDR, ENABLE | 0x0600, 4);
	out(&v, ADDR, ENABLE | 0x0e00, 4);
	ck_assert(!vm_is_stopping(&v.vm));
	ck_assert_uint_eq(in(&v, ADDR, 4), ENABLE | 0x0e00);
	/* Bytes and words at 0xCF8-0xCFB other than 0xCF9 reach nothing and
	 * leave the address alone. */
	out(&v, ADDR, CONF1(0, 0, 0, 0), 4);
	out(&v, ADDR, 0x06, 1);
	out(&v, 0xcfa, 0x0606, 2);
	out(&v, 0xcfb, 0x06, 1);
	ck_assert_uint_eq(in(&v, ADDR, 1), 0xff);
	ck_assert_uint_eq(in(&v, ADDR, 2), 0xffff);
	ck_assert_uint_eq(in(&v, 0xcfa, 2), 0xffff);
	ck_assert(!vm_is_stopping(&v.vm));
	ck_assert_uint_eq(in(&v, ADDR, 4), CONF1(0, 0, 0, 0));
	/* The byte at 0xCF9 is the reset register, and leaves the address. */
	out(&v, RCR, 0x02, 1);
	ck_assert_uint_eq(in(&v, RCR, 1), 0x02);
	ck_assert_uint_eq(in(&v, ADDR, 4), CONF1(0, 0, 0, 0));
	ck_assert_uint_eq(in(&v, DATA, 4), 0x12378086);
	ck_assert(!vm_is_stopping(&v.vm));
	out(&v, RCR, 0x06, 1);
	ck_assert(vm_is_stopping(&v.vm));
	ck_assert_int_eq(v.vm.exit_status, EXIT_OK);
	fake_vm_free(&v);
}
END_TEST

static Suite *pci_host_suite(void)
{
	Suite *s = suite_create("pci_host");
	TCase *tc = tcase_create("conf1");
	tcase_add_test(tc, test_linux_conf1_probe);
	tcase_add_test(tc, test_host_bridge);
	tcase_add_test(tc, test_nothing_else);
	tcase_add_test(tc, test_cf9_shares_the_ports);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(pci_host_suite)
