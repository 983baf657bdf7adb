/* Unit tests of the VMM core that need no KVM: guest-memory bounds, bus
 * dispatch, command-line parsing and sizes. */
#include "tests/unit/unit.h"
#include "vmm/bus.h"
#include "lib/cli.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

#include <stdint.h>
#include <string.h>

/* ---- guest memory ---- */

START_TEST(gmem_small_ram_bounds)
{
	struct guest_mem m;
	ck_assert_int_eq(gmem_init(&m, 16 << 20), 0);
	ck_assert_int_eq(m.n_regions, 1);
	ck_assert_ptr_nonnull(gmem_ptr(&m, 0, 16 << 20));
	ck_assert_ptr_nonnull(gmem_ptr(&m, (16 << 20) - 1, 1));
	ck_assert_ptr_nonnull(gmem_ptr(&m, 16 << 20, 0)); /* empty range at the end */
	ck_assert_ptr_null(gmem_ptr(&m, 16 << 20, 1));
	ck_assert_ptr_null(gmem_ptr(&m, (16 << 20) - 1, 2));
	ck_assert_ptr_null(gmem_ptr(&m, 0, (16 << 20) + 1));
	/* Overflowing sums must not wrap into RAM. */
	ck_assert_ptr_null(gmem_ptr(&m, UINT64_MAX, 2));
	ck_assert_ptr_null(gmem_ptr(&m, 4096, UINT64_MAX));
	ck_assert_ptr_null(gmem_ptr(&m, UINT64_MAX - 4095, 4096));
	uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8}, back[8];
	ck_assert_int_eq(gmem_write(&m, 0x1000, buf, 8), 0);
	ck_assert_int_eq(gmem_read(&m, 0x1000, back, 8), 0);
	ck_assert_mem_eq(buf, back, 8);
	ck_assert_int_eq(gmem_write(&m, (16 << 20) - 4, buf, 8), -1);
	gmem_free(&m);
}
END_TEST

START_TEST(gmem_hole_splits_ram)
{
	/* 3.5 GiB: 3 GiB below the hole, 512 MiB above 4 GiB. Reserve only:
	 * MAP_NORESERVE keeps this cheap. */
	struct guest_mem m;
	uint64_t size = 3584ULL << 20;
	ck_assert_int_eq(gmem_init(&m, size), 0);
	ck_assert_int_eq(m.n_regions, 2);
	ck_assert_uint_eq(gmem_low_end(&m), LAYOUT_MMIO_HOLE_START);
	ck_assert_ptr_nonnull(gmem_ptr(&m, LAYOUT_MMIO_HOLE_START - 8, 8));
	/* Nothing in the hole, nothing across it. */
	ck_assert_ptr_null(gmem_ptr(&m, LAYOUT_MMIO_HOLE_START, 1));
	ck_assert_ptr_null(gmem_ptr(&m, LAYOUT_MMIO_HOLE_START - 4, 8));
	ck_assert_ptr_null(gmem_ptr(&m, LAYOUT_LAPIC, 4));
	ck_assert_ptr_nonnull(gmem_ptr(&m, LAYOUT_4G, 512ULL << 20));
	ck_assert_ptr_null(gmem_ptr(&m, LAYOUT_4G, (512ULL << 20) + 1));
	/* The high region maps to the part of the mapping after the low one. */
	ck_assert_ptr_eq(gmem_ptr(&m, LAYOUT_4G, 1), m.base + LAYOUT_MMIO_HOLE_START);
	gmem_free(&m);
}
END_TEST

START_TEST(gmem_rejects_bad_sizes)
{
	struct guest_mem m;
	ck_assert_int_lt(gmem_init(&m, 4096), 0);
	ck_assert_int_lt(gmem_init(&m, (16 << 20) + 1), 0);
}
END_TEST

/* ---- bus ---- */

struct probe {
	uint64_t offset;
	uint32_t len;
	bool write;
	int calls;
	uint8_t value;
};

static void probe_handler(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct probe *p = opaque;
	p->offset = offset;
	p->len = len;
	p->write = is_write;
	p->calls++;
	if (is_write)
		p->value = data[0];
	else
		memset(data, p->value, len);
}

START_TEST(bus_dispatch_by_address)
{
	struct bus bus = {.name = "pio"};
	struct probe a = {0}, b = {0};
	ck_assert_int_eq(bus_register(&bus, 0x3f8, 8, probe_handler, &a, "a"), 0);
	ck_assert_int_eq(bus_register(&bus, 0xf4, 4, probe_handler, &b, "b"), 0);
	uint8_t d[4] = {0x5a};
	ck_assert(bus_dispatch(&bus, 0x3fd, d, 1, true));
	ck_assert_int_eq(a.calls, 1);
	ck_assert_uint_eq(a.offset, 5);
	ck_assert_uint_eq(a.value, 0x5a);
	ck_assert_int_eq(b.calls, 0);
	ck_assert(bus_dispatch(&bus, 0xf4, d, 4, false));
	ck_assert_int_eq(b.calls, 1);
	/* Unowned: reads see all ones, nobody is called. */
	memset(d, 0, 4);
	ck_assert(!bus_dispatch(&bus, 0x2f0, d, 4, false));
	ck_assert_uint_eq(d[0], 0xff);
	ck_assert_uint_eq(d[3], 0xff);
	/* An access that straddles the end of a range belongs to nobody. */
	ck_assert(!bus_dispatch(&bus, 0x3ff, d, 2, false));
	ck_assert(!bus_dispatch(&bus, 0xf6, d, 4, true));
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(b.calls, 1);
}
END_TEST

START_TEST(bus_refuses_overlaps)
{
	struct bus bus = {.name = "mmio"};
	struct probe p = {0};
	ck_assert_int_eq(bus_register(&bus, 0x1000, 0x100, probe_handler, &p, "x"), 0);
	ck_assert_int_eq(bus_register(&bus, 0x10ff, 1, probe_handler, &p, "y"), -1);
	ck_assert_int_eq(bus_register(&bus, 0xfff, 2, probe_handler, &p, "y"), -1);
	ck_assert_int_eq(bus_register(&bus, 0x0, 0x2000, probe_handler, &p, "y"), -1);
	ck_assert_int_eq(bus_register(&bus, 0x1100, 1, probe_handler, &p, "y"), 0);
	ck_assert_int_eq(bus_register(&bus, 0xfff, 1, probe_handler, &p, "z"), 0);
	ck_assert_int_eq(bus_register(&bus, 0x5000, 0, probe_handler, &p, "empty"), -1);
	ck_assert_int_eq(bus_register(&bus, UINT64_MAX - 1, 4, probe_handler, &p, "wrap"), -1);
	ck_assert_int_eq(bus.n, 3);
}
END_TEST

START_TEST(bus_many_ranges_bisect)
{
	static struct bus bus = {.name = "mmio"};
	static struct probe p[64];
	/* Registered out of order, found in order. */
	for (int i = 63; i >= 0; i--)
		ck_assert_int_eq(bus_register(&bus, 0xd0000000ULL + (uint64_t)i * 0x1000, 0x200,
					      probe_handler, &p[i], "dev"), 0);
	for (int i = 0; i < 64; i++) {
		uint8_t d[4];
		ck_assert(bus_dispatch(&bus, 0xd0000000ULL + (uint64_t)i * 0x1000 + 0x1fc, d, 4, false));
		ck_assert_int_eq(p[i].calls, 1);
		ck_assert(!bus_dispatch(&bus, 0xd0000000ULL + (uint64_t)i * 0x1000 + 0x200, d, 4, false));
	}
}
END_TEST

/* ---- sizes and the command line ---- */

START_TEST(parse_sizes)
{
	uint64_t v;
	ck_assert_int_eq(parse_size("4096", &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(parse_size("256M", &v), 0);
	ck_assert_uint_eq(v, 256ULL << 20);
	ck_assert_int_eq(parse_size("1G", &v), 0);
	ck_assert_uint_eq(v, 1ULL << 30);
	ck_assert_int_eq(parse_size("2k", &v), 0);
	ck_assert_uint_eq(v, 2048);
	ck_assert_int_eq(parse_size("512MiB", &v), 0);
	ck_assert_uint_eq(v, 512ULL << 20);
	ck_assert_int_eq(parse_size("", &v), -1);
	ck_assert_int_eq(parse_size("-1", &v), -1);
	ck_assert_int_eq(parse_size("12Q", &v), -1);
	ck_assert_int_eq(parse_size("M", &v), -1);
	ck_assert_int_eq(parse_size("1MM", &v), -1);
	ck_assert_int_eq(parse_size("99999999999999999999", &v), -1);
	ck_assert_int_eq(parse_size("17179869184G", &v), -1); /* 2^64 */
}
END_TEST

static int dummy_main(const struct config *cfg)
{
	(void)cfg;
	return 0;
}

static const struct cli_command test_cmd = {
	.name = "unit-test-cmd", .usage = "", .summary = "test", .main = dummy_main};
CLI_OPTION(.command = "unit-test-cmd", .name = "size", .argname = "SIZE", .help = "a size",
	   .kind = CLI_SIZE)
CLI_OPTION(.command = "unit-test-cmd", .name = "flag", .argname = NULL, .help = "a flag")
CLI_OPTION(.command = "unit-test-cmd", .name = "item", .argname = "X", .help = "repeatable")

START_TEST(cli_parses_options_and_args)
{
	char *argv[] = {"--size", "1G", "pos1", "--flag", "--item=a", "--item", "b", "--", "--pos2"};
	struct config cfg = {0};
	bool help;
	ck_assert_int_eq(cli_parse(&test_cmd, 9, argv, &cfg, &help), 0);
	ck_assert(!help);
	ck_assert_str_eq(config_get(&cfg, "size"), "1G");
	ck_assert(config_flag(&cfg, "flag"));
	ck_assert(!config_flag(&cfg, "nope"));
	const char *items[4];
	ck_assert_uint_eq(config_get_all(&cfg, "item", items, 4), 2);
	ck_assert_str_eq(items[0], "a");
	ck_assert_str_eq(items[1], "b");
	ck_assert_str_eq(config_get(&cfg, "item"), "b"); /* last wins */
	ck_assert_uint_eq(cfg.n_args, 2);
	ck_assert_str_eq(cfg.args[0], "pos1");
	ck_assert_str_eq(cfg.args[1], "--pos2");
	config_free(&cfg);
}
END_TEST

START_TEST(cli_usage_errors)
{
	struct config cfg = {0};
	bool help;
	char *bad_value[] = {"--size", "lots"};
	ck_assert_int_eq(cli_parse(&test_cmd, 2, bad_value, &cfg, &help), EXIT_USAGE);
	config_free(&cfg);
	char *unknown[] = {"--nope"};
	ck_assert_int_eq(cli_parse(&test_cmd, 1, unknown, &cfg, &help), EXIT_USAGE);
	config_free(&cfg);
	char *missing[] = {"--size"};
	ck_assert_int_eq(cli_parse(&test_cmd, 1, missing, &cfg, &help), EXIT_USAGE);
	config_free(&cfg);
	char *flag_value[] = {"--flag=1"};
	ck_assert_int_eq(cli_parse(&test_cmd, 1, flag_value, &cfg, &help), EXIT_USAGE);
	config_free(&cfg);
	char *help_arg[] = {"--help"};
	ck_assert_int_eq(cli_parse(&test_cmd, 1, help_arg, &cfg, &help), 0);
	ck_assert(help);
	config_free(&cfg);
}
END_TEST

static Suite *core_suite(void)
{
	Suite *s = suite_create("core");
	TCase *t = tcase_create("memory");
	tcase_add_test(t, gmem_small_ram_bounds);
	tcase_add_test(t, gmem_hole_splits_ram);
	tcase_add_test(t, gmem_rejects_bad_sizes);
	suite_add_tcase(s, t);
	t = tcase_create("bus");
	tcase_add_test(t, bus_dispatch_by_address);
	tcase_add_test(t, bus_refuses_overlaps);
	tcase_add_test(t, bus_many_ranges_bisect);
	suite_add_tcase(s, t);
	t = tcase_create("cli");
	tcase_add_test(t, parse_sizes);
	tcase_add_test(t, cli_parses_options_and_args);
	tcase_add_test(t, cli_usage_errors);
	suite_add_tcase(s, t);
	return s;
}
UNIT_SUITE(core_suite)
