/* The console ring a crash dump shows as "last console output"
 * (vmm/console_ring.h): which lines it keeps, wrap-around, lines cut by
 * the ring or not yet ended, bytes escaped, bounded output. */
#include "tests/unit/unit.h"
#include "vmm/console.h"
#include "vmm/console_ring.h"
#include "vmm/vm.h"

#include <stdio.h>
#include <string.h>

static void put_str(struct console_ring *r, const char *s)
{
	console_ring_put(r, (const uint8_t *)s, strlen(s));
}

static size_t lines_of(struct console_ring *r, char *out, size_t len)
{
	return console_ring_lines(r, out, len);
}

START_TEST(test_lines_and_partial)
{
	struct console_ring r = CONSOLE_RING_INIT;
	char out[CONSOLE_RING_TEXT];
	ck_assert_int_eq(lines_of(&r, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	put_str(&r, "first\r\nsecond\n");
	ck_assert_int_eq(lines_of(&r, out, sizeof(out)), 2);
	ck_assert_str_eq(out, "  | first\n  | second\n");
	/* A line still being written counts, and a blank line is kept. */
	put_str(&r, "\nprompt# ");
	ck_assert_int_eq(lines_of(&r, out, sizeof(out)), 4);
	ck_assert_str_eq(out, "  | first\n  | second\n  | \n  | prompt# \n");
}
END_TEST

START_TEST(test_last_lines_only)
{
	struct console_ring r = CONSOLE_RING_INIT;
	char out[CONSOLE_RING_TEXT];
	for (int i = 0; i < 40; i++) {
		char line[32];
		snprintf(line, sizeof(line), "line %d\n", i);
		put_str(&r, line);
	}
	ck_assert_int_eq(lines_of(&r, out, sizeof(out)), CONSOLE_RING_LINES);
	ck_assert_ptr_nonnull(strstr(out, "  | line 24\n"));
	ck_assert_ptr_null(strstr(out, "line 23\n"));
	ck_assert_ptr_nonnull(strstr(out, "  | line 39\n"));
	/* Oldest first. */
	ck_assert(strstr(out, "line 24") < strstr(out, "line 39"));
}
END_TEST

START_TEST(test_wrap_around)
{
	struct console_ring r = CONSOLE_RING_INIT;
	char out[CONSOLE_RING_TEXT];
	/* 5000 bytes in lines of 100: the ring holds the last 2048 bytes,
	 * which start in the middle of a line. */
	char line[101];
	for (int i = 0; i < 50; i++) {
		snprintf(line, sizeof(line), "%04d", i);
		memset(line + 4, 'a' + i % 26, 95);
		line[99] = '\n';
		line[100] = '\0';
		put_str(&r, line);
	}
	uint8_t raw[CONSOLE_RING_BYTES];
	bool cut;
	ck_assert_uint_eq(console_ring_copy(&r, raw, &cut), CONSOLE_RING_BYTES);
	ck_assert(cut);
	ck_assert_int_eq(raw[CONSOLE_RING_BYTES - 1], '\n');
	ck_assert(memcmp(raw + CONSOLE_RING_BYTES - 100, "0049", 4) == 0);
	ck_assert_int_eq(lines_of(&r, out, sizeof(out)), CONSOLE_RING_LINES);
	ck_assert_ptr_nonnull(strstr(out, "  | 0034"));
	ck_assert_ptr_nonnull(strstr(out, "  | 0049"));
	ck_assert_ptr_null(strstr(out, "..."));

	/* One line longer than the ring: what is left of it is marked. */
	struct console_ring big = CONSOLE_RING_INIT;
	put_str(&big, "START");
	for (int i = 0; i < 3000; i++)
		put_str(&big, "x");
	put_str(&big, "END");
	ck_assert_int_eq(lines_of(&big, out, sizeof(out)), 1);
	ck_assert(strncmp(out, "  | ...xxx", 10) == 0);
	ck_assert_ptr_null(strstr(out, "START"));
	ck_assert_uint_eq(strlen(out), 4 + 3 + CONSOLE_RING_BYTES + 1);
	ck_assert(strcmp(out + strlen(out) - 4, "END\n") == 0);
}
END_TEST

START_TEST(test_escaped)
{
	struct console_ring r = CONSOLE_RING_INIT;
	char out[CONSOLE_RING_TEXT];
	static const uint8_t bytes[] = {0x1b, '[', '3', '1', 'm', 'r', 'e', 'd', 0x00, '\\', '\t',
					0xe2, 0x97, 0x8f, '\r', 'x', '\n'};
	console_ring_put(&r, bytes, sizeof(bytes));
	ck_assert_int_eq(lines_of(&r, out, sizeof(out)), 1);
	/* A CR inside a line stays visible; only the CR of CR LF goes. */
	ck_assert_str_eq(out, "  | \\x1b[31mred\\x00\\\\\t\\xe2\\x97\\x8f\\x0dx\n");
}
END_TEST

START_TEST(test_format_bounds)
{
	static const uint8_t bytes[] = "one\ntwo\nthree\n";
	char small[12];
	memset(small, 'Z', sizeof(small));
	size_t n = console_ring_format(bytes, sizeof(bytes) - 1, false, 16, small, sizeof(small));
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_str_eq(small, "  | one\n  |");
	/* max_lines counts from the end. */
	char out[64];
	ck_assert_int_eq(console_ring_format(bytes, sizeof(bytes) - 1, false, 2, out, sizeof(out)), 2);
	ck_assert_str_eq(out, "  | two\n  | three\n");
	ck_assert_int_eq(console_ring_format(bytes, 0, false, 2, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(console_ring_format(bytes, 3, false, 0, out, sizeof(out)), 0);
}
END_TEST

static void *writer(void *arg)
{
	struct console_ring *r = arg;
	for (int i = 0; i < 20000; i++)
		put_str(r, "0123456789abcdef\n");
	return NULL;
}

/* The dump may read while a vCPU writes: every line it sees is whole. */
START_TEST(test_concurrent)
{
	static struct console_ring r = CONSOLE_RING_INIT;
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, writer, &r), 0);
	char out[CONSOLE_RING_TEXT];
	for (int i = 0; i < 200; i++) {
		lines_of(&r, out, sizeof(out));
		for (char *p = out; (p = strstr(p, "  | ")) != NULL; p += 4) {
			char *nl = strchr(p, '\n');
			ck_assert_ptr_nonnull(nl);
			/* The first line may be cut by the ring; the rest are whole. */
			if (p != out && nl - p - 4 != 0)
				ck_assert_int_eq(nl - p - 4, 16);
		}
	}
	pthread_join(t, NULL);
}
END_TEST

/* What the UART sends to the console is what a dump shows. */
START_TEST(test_console_keeps_output)
{
	struct vm vm;
	memset(&vm, 0, sizeof(vm));
	vm_init_common(&vm, NULL);
	static const char text[] = "boot\r\nunit-test: the last line\n";
	for (size_t i = 0; i < sizeof(text) - 1; i++)
		console_output(&vm, (uint8_t)text[i]);
	console_flush();
	char out[CONSOLE_RING_TEXT];
	ck_assert_uint_ge(console_last_lines(out, sizeof(out)), 2);
	const char *want = "  | boot\n  | unit-test: the last line\n";
	ck_assert_uint_ge(strlen(out), strlen(want));
	ck_assert_str_eq(out + strlen(out) - strlen(want), want);
}
END_TEST

static Suite *console_ring_suite(void)
{
	Suite *s = suite_create("console_ring");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_lines_and_partial);
	tcase_add_test(tc, test_last_lines_only);
	tcase_add_test(tc, test_wrap_around);
	tcase_add_test(tc, test_escaped);
	tcase_add_test(tc, test_format_bounds);
	tcase_add_test(tc, test_concurrent);
	tcase_add_test(tc, test_console_keeps_output);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(console_ring_suite)
