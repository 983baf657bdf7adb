/* fw_cfg (devices/fw_cfg.c) through the VM's port bus, as a guest's in/out
 * instructions reach it. Keys, ports and layouts are restated from QEMU's
 * docs/specs/fw_cfg.rst on purpose: the test checks the device against the
 * spec, not against its own table. */
#include "tests/unit/unit.h"
#include "tests/unit/test_vm_fake.h"
#include "vmm/boot_linux.h"

#include <endian.h>

#define SEL_PORT 0x510
#define DATA_PORT 0x511
#define KEY_SIGNATURE 0x00
#define KEY_ID 0x01
#define KEY_RAM_SIZE 0x03
#define KEY_NB_CPUS 0x05
#define KEY_MAX_CPUS 0x0f
#define KEY_CMDLINE_SIZE 0x14
#define KEY_CMDLINE_DATA 0x15
#define KEY_FILE_DIR 0x19
#define ID_TRADITIONAL 0x1
#define ID_DMA 0x2
#define FILE_ENTRY_SIZE 64
#define TEST_CPUS 3
#define TEST_CMDLINE "console=ttyS0 answer=42"

struct fw_test {
	struct fake_vm v;
	struct config cfg;
};

static void ft_init(struct fw_test *t)
{
	memset(&t->cfg, 0, sizeof(t->cfg));
	ck_assert_int_eq(config_add(&t->cfg, "cmdline", TEST_CMDLINE), 0);
	fake_vm_init(&t->v, &t->cfg, 8);
	t->v.vm.n_vcpus = TEST_CPUS;
	ck_assert_int_eq(device_create(&t->v.vm, "fw-cfg"), 0);
}

static void ft_free(struct fw_test *t)
{
	fake_vm_free(&t->v);
	config_free(&t->cfg);
}

static void sel(struct fw_test *t, uint16_t key)
{
	uint8_t d[2] = {(uint8_t)key, (uint8_t)(key >> 8)};
	ck_assert(bus_dispatch(&t->v.vm.pio, SEL_PORT, d, 2, true));
}

static uint8_t rd8(struct fw_test *t)
{
	uint8_t b = 0xaa;
	ck_assert(bus_dispatch(&t->v.vm.pio, DATA_PORT, &b, 1, false));
	return b;
}

static void rd(struct fw_test *t, void *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)out)[i] = rd8(t);
}

static uint64_t rd_le(struct fw_test *t, uint16_t key, size_t width)
{
	sel(t, key);
	uint8_t b[8] = {0};
	rd(t, b, width);
	uint64_t v;
	memcpy(&v, b, 8);
	return le64toh(v);
}

START_TEST(test_signature_and_id)
{
	struct fw_test t;
	ft_init(&t);
	char sig[5] = {0};
	sel(&t, KEY_SIGNATURE);
	rd(&t, sig, 4);
	ck_assert_str_eq(sig, "QEMU");
	/* Selecting again rewinds the data offset. */
	sel(&t, KEY_SIGNATURE);
	ck_assert_uint_eq(rd8(&t), 'Q');
	/* Traditional interface only: DMA must not be advertised. */
	uint64_t id = rd_le(&t, KEY_ID, 4);
	ck_assert(id & ID_TRADITIONAL);
	ck_assert(!(id & ID_DMA));
	ft_free(&t);
}
END_TEST

START_TEST(test_cpus_ram_cmdline)
{
	struct fw_test t;
	ft_init(&t);
	ck_assert_uint_eq(rd_le(&t, KEY_NB_CPUS, 2), TEST_CPUS);
	ck_assert_uint_eq(rd_le(&t, KEY_MAX_CPUS, 2), TEST_CPUS);
	ck_assert_uint_eq(rd_le(&t, KEY_RAM_SIZE, 8), FAKE_RAM);
	ck_assert_uint_eq(rd_le(&t, KEY_CMDLINE_SIZE, 4), sizeof(TEST_CMDLINE));
	char cmd[sizeof(TEST_CMDLINE)];
	sel(&t, KEY_CMDLINE_DATA);
	rd(&t, cmd, sizeof(cmd));
	ck_assert_mem_eq(cmd, TEST_CMDLINE, sizeof(TEST_CMDLINE));
	ft_free(&t);
}
END_TEST

START_TEST(test_file_dir_e820)
{
	struct fw_test t;
	ft_init(&t);
	sel(&t, KEY_FILE_DIR);
	uint32_t count;
	rd(&t, &count, 4);
	count = be32toh(count);
	ck_assert_uint_ge(count, 1);
	ck_assert_uint_le(count, 64);
	uint32_t size = 0;
	uint16_t key = 0;
	for (uint32_t i = 0; i < count; i++) {
		uint8_t e[FILE_ENTRY_SIZE];
		rd(&t, e, sizeof(e));
		ck_assert_uint_eq(e[FILE_ENTRY_SIZE - 1], 0); /* names are NUL-terminated */
		if (strcmp((char *)e + 8, "etc/e820") == 0) {
			size = (uint32_t)e[0] << 24 | (uint32_t)e[1] << 16 | (uint32_t)e[2] << 8 | e[3];
			key = (uint16_t)(e[4] << 8 | e[5]);
		}
	}
	ck_assert_uint_ge(key, 0x20); /* files live from FW_CFG_FILE_FIRST on */
	/* The same map the Linux loaders give: 20-byte packed entries. */
	struct e820_entry want[BOOT_LINUX_MAX_E820];
	int n = boot_linux_e820(&t.v.vm, want);
	ck_assert_uint_eq(size, (uint32_t)n * 20);
	uint8_t got[BOOT_LINUX_MAX_E820 * 20];
	sel(&t, key);
	rd(&t, got, size);
	ck_assert_mem_eq(got, want, size);
	/* The first entry is conventional RAM at 0. */
	uint64_t addr;
	uint32_t type;
	memcpy(&addr, got, 8);
	memcpy(&type, got + 16, 4);
	ck_assert_uint_eq(addr, 0);
	ck_assert_uint_eq(type, 1);
	ft_free(&t);
}
END_TEST

START_TEST(test_reads_past_the_end)
{
	struct fw_test t;
	ft_init(&t);
	/* Past the end of an item: zeros, however long the guest reads. */
	sel(&t, KEY_SIGNATURE);
	char sig[4];
	rd(&t, sig, 4);
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(rd8(&t), 0);
	/* Keys with no item, in the table's gaps, past it, arch-local. */
	uint16_t none[] = {0x02, 0x18, 0x21, 0x1000, 0x7fff, 0x8000, 0x8003, 0xffff};
	for (size_t k = 0; k < sizeof(none) / sizeof(none[0]); k++) {
		sel(&t, none[k]);
		for (int i = 0; i < 100; i++)
			ck_assert_uint_eq(rd8(&t), 0);
	}
	/* Writes to the data port change nothing. */
	sel(&t, KEY_SIGNATURE);
	uint8_t junk = 'X';
	ck_assert(bus_dispatch(&t.v.vm.pio, DATA_PORT, &junk, 1, true));
	sel(&t, KEY_SIGNATURE);
	ck_assert_uint_eq(rd8(&t), 'Q');
	ft_free(&t);
}
END_TEST

static Suite *fw_cfg_suite(void)
{
	Suite *s = suite_create("fw_cfg");
	TCase *tc = tcase_create("items");
	tcase_add_test(tc, test_signature_and_id);
	tcase_add_test(tc, test_cpus_ram_cmdline);
	tcase_add_test(tc, test_file_dir_e820);
	tcase_add_test(tc, test_reads_past_the_end);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(fw_cfg_suite)
