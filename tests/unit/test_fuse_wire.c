/* The FUSE wire layer (fs/fuse_wire.c): the opcode table's minimum sizes,
 * unknown opcodes, which opcodes are answered, per-opcode counts. */
#include "tests/unit/unit.h"
#include "tests/unit/test_fuse_harness.h"
#include "fs/fuse_wire.h"

#include <stddef.h>

static struct tf T;

/* lower/: f (a file), d/g (a directory, not empty: fs/backend_dir.c
 * passes NULL to qsort for an empty one, which UBSan reports) */
static void setup(void)
{
	tf_setup_dirs(&T);
	char p[400];
	snprintf(p, sizeof(p), "%s/f", T.lower);
	tf_write_file(p, "content\n");
	snprintf(p, sizeof(p), "%s/d", T.lower);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/d/g", T.lower);
	tf_write_file(p, "");
	tf_start(&T, NULL, NULL);
}

static void teardown(void)
{
	tf_stop(&T);
}

/* The count of opcode name in fs_request_counts_json (0 if absent). */
static uint64_t count_of(const char *name)
{
	json_t *o = fs_request_counts_json(T.fs);
	ck_assert_ptr_nonnull(o);
	json_t *v = json_object_get(o, name);
	uint64_t n = v ? (uint64_t)json_integer_value(v) : 0;
	json_decref(o);
	return n;
}

START_TEST(test_minimums_are_the_protocol_sizes)
{
	/* Where <linux/fuse.h> names an older, shorter argument, the table
	 * accepts that one; else the whole struct. */
	ck_assert_uint_eq(fuse_wire_op(FUSE_MKNOD)->min_in, FUSE_COMPAT_MKNOD_IN_SIZE);
	ck_assert_uint_eq(fuse_wire_op(FUSE_WRITE)->min_in, FUSE_COMPAT_WRITE_IN_SIZE);
	ck_assert_uint_eq(fuse_wire_op(FUSE_READ)->min_in, offsetof(struct fuse_read_in, lock_owner));
	ck_assert_uint_eq(fuse_wire_op(FUSE_READDIR)->min_in, offsetof(struct fuse_read_in, lock_owner));
	ck_assert_uint_eq(fuse_wire_op(FUSE_INIT)->min_in, offsetof(struct fuse_init_in, max_readahead));
	ck_assert_uint_eq(fuse_wire_op(FUSE_SETATTR)->min_in, sizeof(struct fuse_setattr_in));
	ck_assert_uint_eq(fuse_wire_op(FUSE_FORGET)->min_in, sizeof(struct fuse_forget_in));
	ck_assert_uint_eq(fuse_wire_op(FUSE_LOOKUP)->min_in, 0);
	ck_assert_str_eq(fuse_wire_op(FUSE_LOOKUP)->name, "LOOKUP");
	ck_assert_str_eq(fuse_wire_op(FUSE_BATCH_FORGET)->name, "BATCH_FORGET");
	ck_assert_ptr_null(fuse_wire_op(7)); /* a gap in the opcode numbers */
	ck_assert_ptr_null(fuse_wire_op(FUSE_WIRE_OPS));
	ck_assert_ptr_null(fuse_wire_op(~0u));
}
END_TEST

/* Every opcode, sent one byte shorter than its minimum, is refused with
 * EINVAL (or, for one without a reply, dropped) before the filesystem
 * sees it: nothing changes, no node is forgotten. The bytes are 0xff, so
 * a handler that did run would see huge counts, sizes and flags. */
START_TEST(test_short_request_refused_untouched)
{
	int err;
	uint64_t f = tf_lookup(&T, 1, "f", &err);
	ck_assert_int_eq(err, 0);
	uint64_t d = tf_lookup(&T, 1, "d", &err);
	ck_assert_int_eq(err, 0);
	struct fs_stats before, after;
	fs_get_stats(T.fs, &before);
	uint8_t body[256];
	memset(body, 0xff, sizeof(body));
	int checked = 0;
	for (uint32_t op = 0; op < FUSE_WIRE_OPS; op++) {
		const struct fuse_wire_op *w = fuse_wire_op(op);
		if (!w || !w->handler || w->min_in == 0)
			continue;
		ck_assert_uint_le(w->min_in, sizeof(body));
		uint64_t node = op == FUSE_MKDIR || op == FUSE_MKNOD || op == FUSE_CREATE ? d : f;
		int e = tf_req(&T, op, node, body, w->min_in - 1, NULL, 0, NULL, 0);
		if (w->flags & FUSE_WIRE_NO_REPLY)
			ck_assert_int_eq(e, 1); /* no reply */
		else
			ck_assert_msg(e == -EINVAL, "%s: %d", w->name, e);
		checked++;
	}
	ck_assert_int_ge(checked, 20); /* the table has minimums at all */
	fs_get_stats(T.fs, &after);
	ck_assert(!fs_is_dirty(T.fs));
	ck_assert_uint_eq(after.nodes, before.nodes);
	ck_assert_uint_eq(after.copy_ups, 0);
	ck_assert_uint_eq(after.bytes_written, 0);
	tf_getattr(&T, f, &err); /* a short FORGET forgot nothing */
	ck_assert_int_eq(err, 0);
	tf_getattr(&T, d, &err);
	ck_assert_int_eq(err, 0);
	/* At its minimum, the same op is served: a FORGET of f's one lookup
	 * makes it unknown. */
	struct fuse_forget_in fi = {.nlookup = 1};
	ck_assert_int_eq(tf_req(&T, FUSE_FORGET, f, &fi, sizeof(fi), NULL, 0, NULL, 0), 1);
	tf_getattr(&T, f, &err);
	ck_assert_int_eq(err, -ENOENT);
}
END_TEST

START_TEST(test_unknown_opcodes)
{
	/* Past the table, in a gap, named but not served: ENOSYS. */
	ck_assert_int_eq(tf_req(&T, 9999, 1, NULL, 0, NULL, 0, NULL, 0), -ENOSYS);
	ck_assert_int_eq(tf_req(&T, FUSE_WIRE_OPS, 1, NULL, 0, NULL, 0, NULL, 0), -ENOSYS);
	ck_assert_int_eq(tf_req(&T, 7, 1, NULL, 0, NULL, 0, NULL, 0), -ENOSYS);
	ck_assert_int_eq(tf_req(&T, CUSE_INIT, 1, NULL, 0, NULL, 0, NULL, 0), -ENOSYS);
	struct fuse_lk_in lk = {0};
	ck_assert_int_eq(tf_req(&T, FUSE_GETLK, 1, &lk, sizeof(lk), NULL, 0, NULL, 0), -ENOSYS);
	ck_assert_int_eq(tf_req(&T, FUSE_COPY_FILE_RANGE, 1, NULL, 0, NULL, 0, NULL, 0), -ENOSYS);
	/* INTERRUPT is known and never answered. */
	struct fuse_interrupt_in ii = {.unique = 1};
	ck_assert_int_eq(tf_req(&T, FUSE_INTERRUPT, 0, &ii, sizeof(ii), NULL, 0, NULL, 0), 1);
	/* What the device asks to serve the hiprio queue. */
	ck_assert(!fs_opcode_has_reply(FUSE_FORGET));
	ck_assert(!fs_opcode_has_reply(FUSE_BATCH_FORGET));
	ck_assert(!fs_opcode_has_reply(FUSE_INTERRUPT));
	ck_assert(fs_opcode_has_reply(FUSE_LOOKUP));
	ck_assert(fs_opcode_has_reply(FUSE_GETLK));
	ck_assert(fs_opcode_has_reply(9999));
	ck_assert(fs_opcode_has_reply(0));
}
END_TEST

START_TEST(test_request_counts)
{
	ck_assert_uint_eq(count_of("INIT"), 1); /* from tf_start */
	ck_assert_uint_eq(count_of("LOOKUP"), 0);
	uint64_t f = 0;
	for (int i = 0; i < 3; i++)
		f = tf_lookup(&T, 1, "f", NULL);
	tf_lookup(&T, 1, "missing", NULL); /* an error is a request too */
	tf_getattr(&T, 1, NULL);
	tf_getattr(&T, 1, NULL);
	tf_req(&T, 9999, 1, NULL, 0, NULL, 0, NULL, 0);
	tf_req(&T, 7, 1, NULL, 0, NULL, 0, NULL, 0);
	struct fuse_forget_in fi = {.nlookup = 1};
	tf_req(&T, FUSE_FORGET, f, &fi, sizeof(fi), NULL, 0, NULL, 0);
	/* A header whose length lies is refused before it is counted, as
	 * fs_stats.requests does. */
	struct fuse_in_header h = {.len = 1000, .opcode = FUSE_LOOKUP, .unique = 5, .nodeid = 1};
	uint8_t out[64];
	struct iovec in = {&h, sizeof(h)}, o = {out, sizeof(out)};
	ck_assert_uint_eq(fs_handle(T.fs, &in, 1, &o, 1), sizeof(struct fuse_out_header));

	ck_assert_uint_eq(count_of("LOOKUP"), 4);
	ck_assert_uint_eq(count_of("GETATTR"), 2);
	ck_assert_uint_eq(count_of("FORGET"), 1);
	ck_assert_uint_eq(count_of("UNKNOWN"), 2);
	ck_assert_uint_eq(count_of("INIT"), 1);
	/* Only opcodes seen are listed, and they sum to the total. */
	json_t *all = fs_request_counts_json(T.fs);
	ck_assert_ptr_null(json_object_get(all, "READ"));
	ck_assert_uint_eq(json_object_size(all), 5);
	uint64_t sum = 0;
	const char *k;
	json_t *v;
	json_object_foreach(all, k, v)
		sum += (uint64_t)json_integer_value(v);
	json_decref(all);
	struct fs_stats st;
	fs_get_stats(T.fs, &st);
	ck_assert_uint_eq(sum, st.requests);
	ck_assert_uint_eq(sum, 1 + 4 + 2 + 2 + 1);
}
END_TEST

static Suite *fuse_wire_suite(void)
{
	Suite *s = suite_create("fuse_wire");
	TCase *tc = tcase_create("wire");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_minimums_are_the_protocol_sizes);
	tcase_add_test(tc, test_short_request_refused_untouched);
	tcase_add_test(tc, test_unknown_opcodes);
	tcase_add_test(tc, test_request_counts);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(fuse_wire_suite)
