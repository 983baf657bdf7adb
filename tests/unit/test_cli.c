/* Typed options (lib/cli.h): numbers are parsed and bounded once, when the
 * command line is read, and read back as numbers. */
#include "tests/unit/unit.h"
#include "lib/cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static int typed_main(const struct config *cfg)
{
	(void)cfg;
	return 0;
}

static const struct cli_command typed_cmd = {
	.name = "unit-test-typed", .usage = "", .summary = "test", .main = typed_main};
CLI_OPTION(.command = "unit-test-typed", .name = "count", .argname = "N", .help = "1 to 10",
	   .kind = CLI_UINT, .min = 1, .max = 10)
CLI_OPTION(.command = "unit-test-typed", .name = "big", .argname = "N", .help = "any",
	   .kind = CLI_UINT)
CLI_OPTION(.command = "unit-test-typed", .name = "bytes", .argname = "SIZE", .help = "a size",
	   .kind = CLI_SIZE, .max = 1ULL << 30)
CLI_OPTION(.command = "unit-test-typed", .name = "text", .argname = "X", .help = "text")

static int parse(int argc, char **argv, struct config *cfg)
{
	bool help;
	memset(cfg, 0, sizeof(*cfg));
	return cli_parse(&typed_cmd, argc, argv, cfg, &help);
}

START_TEST(cli_typed_values)
{
	char *argv[] = {"--count", "3", "--bytes=2M", "--big", "18446744073709551615",
			"--count", "7", "--text", "12"};
	struct config cfg;
	ck_assert_int_eq(parse(9, argv, &cfg), 0);
	ck_assert_uint_eq(config_get_uint(&cfg, "count", 0), 7); /* last wins */
	ck_assert_uint_eq(config_get_uint(&cfg, "bytes", 0), 2ULL << 20);
	ck_assert_uint_eq(config_get_uint(&cfg, "big", 0), UINT64_MAX);
	ck_assert_str_eq(config_get(&cfg, "count"), "7"); /* the text stays */
	/* A copy keeps the numbers; config_add parses like the command line. */
	struct config copy;
	ck_assert_int_eq(config_copy(&copy, &cfg), 0);
	ck_assert_uint_eq(config_get_uint(&copy, "bytes", 0), 2ULL << 20);
	ck_assert_int_eq(config_add(&copy, "count", "9"), 0);
	ck_assert_uint_eq(config_get_uint(&copy, "count", 0), 9);
	ck_assert_int_eq(config_add(&copy, "count", "11"), -1);
	ck_assert_uint_eq(config_get_uint(&copy, "count", 0), 9);
	config_free(&copy);
	config_free(&cfg);
	/* Absent: the default. */
	ck_assert_int_eq(parse(0, NULL, &cfg), 0);
	ck_assert_uint_eq(config_get_uint(&cfg, "count", 4), 4);
	config_free(&cfg);
}
END_TEST

START_TEST(cli_typed_refusals)
{
	static const char *bad[][2] = {
		{"--count", "0"}, {"--count", "11"}, {"--count", "-1"}, {"--count", "+3"},
		{"--count", " 3"}, {"--count", "3x"}, {"--count", ""},
		{"--big", "18446744073709551616"}, {"--bytes", "2G"}, {"--bytes", "lots"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = {(char *)bad[i][0], (char *)bad[i][1]};
		struct config cfg;
		ck_assert_msg(parse(2, argv, &cfg) == EXIT_USAGE, "%s '%s' was accepted", bad[i][0],
			      bad[i][1]);
		config_free(&cfg);
	}
}
END_TEST

START_TEST(cli_text_option_read_as_number_aborts)
{
	char *argv[] = {"--text", "12"};
	struct config cfg;
	ck_assert_int_eq(parse(2, argv, &cfg), 0);
	config_get_uint(&cfg, "text", 0);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *t = tcase_create("typed");
	tcase_add_test(t, cli_typed_values);
	tcase_add_test(t, cli_typed_refusals);
	tcase_add_test_raise_signal(t, cli_text_option_read_as_number_aborts, SIGABRT);
	suite_add_tcase(s, t);
	return s;
}
UNIT_SUITE(cli_suite)
