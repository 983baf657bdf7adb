/* File faults: the FUSE server over a hand-built manifest and a fake
 * backend that counts what it is asked for, can be slow, and can fail. */
#include "tests/unit/unit.h"
#include "tests/unit/test_fuse_harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define BIG_SIZE (8ull << 20)
#define CHUNK (1ull << 20)

struct fake {
	char dir[300];          /* content files named by entry path */
	atomic_int opens, ranges;
	uint64_t last_off, last_len;
	atomic_int delay_ms;    /* applied to "slow" */
	bool fail;              /* the server is down */
};

static uint8_t big_byte(uint64_t off) { return (uint8_t)(off * 7 + (off >> 12)); }

static int fake_open(void *ctx, const struct manifest_entry *e, struct fs_fetch_info *info)
{
	struct fake *f = ctx;
	f->opens++;
	if (!strcmp(e->path, "slow") && f->delay_ms)
		usleep((useconds_t)f->delay_ms * 1000);
	if (f->fail)
		return -EIO;
	char p[400];
	snprintf(p, sizeof(p), "%s/%s", f->dir, e->path);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return -errno;
	info->fetched = true;
	info->bytes += e->size;
	info->requests++;
	return fd;
}

static ssize_t fake_range(void *ctx, const struct manifest_entry *e, uint64_t off, void *buf,
			  size_t len, struct fs_fetch_info *info)
{
	struct fake *f = ctx;
	f->ranges++;
	f->last_off = off;
	f->last_len = len;
	if (f->fail)
		return -EIO;
	if (off >= e->size)
		return 0;
	if (len > e->size - off)
		len = (size_t)(e->size - off);
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = big_byte(off + i);
	info->fetched = true;
	info->bytes += CHUNK;
	info->requests++;
	return (ssize_t)len;
}

static const struct fs_backend fake_backend = {
	.name = "fake", .open_content = fake_open, .read_range = fake_range,
};

static struct tf T;
static struct fake F;
static struct manifest M;
static struct manifest_entry E[5];
static uint8_t chunks[BIG_SIZE / CHUNK][32];
static uint8_t capval[] = {1, 0, 0, 2, 0x20, 0, 0, 0};
static struct manifest_xattr xattrs[] = {
	{.name = "security.capability", .value = capval, .len = sizeof(capval)},
	{.name = "user.note", .value = (uint8_t *)"hi", .len = 2},
};

static void setup(void)
{
	tf_setup_dirs(&T);
	memset(&F, 0, sizeof(F));
	snprintf(F.dir, sizeof(F.dir), "%s", T.lower);
	char p[400];
	snprintf(p, sizeof(p), "%s/small", T.lower);
	tf_write_file(p, "small file\n");
	snprintf(p, sizeof(p), "%s/slow", T.lower);
	tf_write_file(p, "slow file\n");
	memset(E, 0, sizeof(E));
	E[0] = (struct manifest_entry){.path = "", .type = MF_DIR, .mode = 0755};
	E[1] = (struct manifest_entry){.path = "big", .type = MF_REG, .mode = 0644, .size = BIG_SIZE,
				       .has_digest = true, .n_chunks = BIG_SIZE / CHUNK, .chunks = chunks};
	E[2] = (struct manifest_entry){.path = "etc", .type = MF_DIR, .mode = 0755};
	E[3] = (struct manifest_entry){.path = "slow", .type = MF_REG, .mode = 0644, .size = 10, .has_digest = true};
	E[4] = (struct manifest_entry){.path = "small", .type = MF_REG, .mode = 0644, .size = 11, .has_digest = true,
				       .n_xattrs = 2, .xattrs = xattrs};
	memset(&M, 0, sizeof(M));
	M.version = 1;
	M.chunk_size = CHUNK;
	M.entries = E;
	M.n_entries = 5;
	M.total_bytes = BIG_SIZE + 21;
	T.mf = &M;
	tf_start(&T, &fake_backend, &F);
}

static void teardown(void)
{
	T.mf = NULL; /* static, not ours to free */
	tf_stop(&T);
}

START_TEST(test_metadata_needs_no_fetch)
{
	int err;
	uint64_t b = tf_lookup(&T, 1, "big", &err);
	ck_assert_uint_eq(tf_getattr(&T, b, &err).size, BIG_SIZE);
	char names[128];
	tf_list(&T, 1, names, sizeof(names), 4096);
	ck_assert_str_eq(names, ".,..,big,etc,slow,small");
	ck_assert_int_eq(F.opens + F.ranges, 0);
	struct fs_stats st;
	fs_get_stats(T.fs, &st);
	ck_assert_uint_eq(st.files_faulted, 0);
}
END_TEST

START_TEST(test_fault_counted_once_per_file)
{
	int err;
	uint64_t s = tf_lookup(&T, 1, "small", &err);
	uint64_t fh = tf_open(&T, s, O_RDONLY, &err);
	ck_assert_int_eq(err, 0);
	char buf[32];
	ck_assert_int_eq(tf_read(&T, s, fh, 0, buf, 32), 11);
	ck_assert_int_eq(memcmp(buf, "small file\n", 11), 0);
	tf_release(&T, s, fh, false);
	fh = tf_open(&T, s, O_RDONLY, &err);
	struct fs_stats st;
	fs_get_stats(T.fs, &st);
	ck_assert_uint_eq(st.files_faulted, 1);
	ck_assert_uint_eq(st.faults, 2); /* the fake backend has no cache */
	ck_assert_uint_eq(st.bytes_fetched, 22);
	ck_assert_uint_gt(st.fault_p50_ns, 0);
	ck_assert_uint_ge(st.fault_p99_ns, st.fault_p50_ns);
}
END_TEST

static int collect(void *ctx, const char *path)
{
	char *out = ctx;
	if (*out)
		strcat(out, ",");
	strcat(out, path);
	return 0;
}

START_TEST(test_chunked_read_fetches_only_the_range)
{
	int err;
	uint64_t b = tf_lookup(&T, 1, "big", &err);
	uint64_t fh = tf_open(&T, b, O_RDONLY, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(F.opens, 0); /* chunked: no whole-file fetch at open */
	uint8_t buf[4096];
	uint64_t off = 5 * CHUNK + 12345;
	ck_assert_int_eq(tf_read(&T, b, fh, off, buf, 4096), 4096);
	ck_assert_int_eq(F.ranges, 1);
	ck_assert_uint_eq(F.last_off, off);
	ck_assert_uint_eq(F.last_len, 4096);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(buf[i], big_byte(off + (uint64_t)i));
	/* Reading at the very end is cut to the file size. */
	ck_assert_int_eq(tf_read(&T, b, fh, BIG_SIZE - 100, buf, 4096), 100);
	ck_assert_uint_eq(F.last_len, 100);
	/* Fault order for a prefetch profile. */
	uint64_t s = tf_lookup(&T, 1, "small", &err);
	tf_open(&T, s, O_RDONLY, &err);
	char order[64] = "";
	fs_read_order(T.fs, collect, order);
	ck_assert_str_eq(order, "big,small");
	struct fs_stats st;
	fs_get_stats(T.fs, &st);
	ck_assert_uint_eq(st.files_faulted, 2);
	ck_assert_uint_eq(st.bytes_fetched, 2 * CHUNK + 11);
}
END_TEST

START_TEST(test_copy_up_of_chunked_file)
{
	int err;
	uint64_t b = tf_lookup(&T, 1, "big", &err);
	uint64_t fh = tf_open(&T, b, O_RDWR, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(tf_write(&T, b, fh, 10, "XY", 2), 0);
	uint8_t buf[16];
	ck_assert_int_eq(tf_read(&T, b, fh, 8, buf, 6), 6);
	ck_assert_uint_eq(buf[0], big_byte(8));
	ck_assert_uint_eq(buf[1], big_byte(9));
	ck_assert_int_eq(memcmp(buf + 2, "XY", 2), 0);
	ck_assert_uint_eq(buf[4], big_byte(12));
	ck_assert_int_eq(tf_read(&T, b, fh, BIG_SIZE - 1, buf, 6), 1);
	ck_assert_uint_eq(buf[0], big_byte(BIG_SIZE - 1));
}
END_TEST

START_TEST(test_server_down)
{
	F.fail = true;
	int err;
	uint64_t s = tf_lookup(&T, 1, "small", &err);
	ck_assert_int_eq(err, 0); /* metadata still works */
	tf_open(&T, s, O_RDONLY, &err);
	ck_assert_int_eq(err, -EIO);
	uint64_t b = tf_lookup(&T, 1, "big", &err);
	uint64_t fh = tf_open(&T, b, O_RDONLY, &err);
	uint8_t buf[16];
	ck_assert_int_eq(tf_read(&T, b, fh, 0, buf, 16), -EIO);
	tf_open(&T, s, O_RDWR, &err); /* copy-up needs the content too */
	ck_assert_int_eq(err, -EIO);
	/* Each failed fault is counted (the open, the chunk read, the copy-up). */
	struct fs_stats st;
	fs_get_stats(T.fs, &st);
	ck_assert_uint_eq(st.faults_failed, 3);
	/* An O_TRUNC open needs no content: it works offline. */
	uint64_t wfh = tf_open(&T, s, O_WRONLY | O_TRUNC, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(tf_write(&T, s, wfh, 0, "new", 3), 0);
	F.fail = false;
	uint64_t rfh = tf_open(&T, s, O_RDONLY, &err);
	ck_assert_int_eq(tf_read(&T, s, rfh, 0, buf, 16), 3);
	ck_assert_int_eq(memcmp(buf, "new", 3), 0);
}
END_TEST

/* While one request waits on a slow fetch, others are answered. */
struct slow_arg {
	struct fs *fs;
	uint64_t node;
	int err;
	uint64_t done_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *slow_open(void *p)
{
	struct slow_arg *a = p;
	struct fuse_open_in oi = {.flags = O_RDONLY};
	uint8_t req[sizeof(struct fuse_in_header) + sizeof(oi)];
	struct fuse_in_header h = {.len = sizeof(req), .opcode = FUSE_OPEN, .unique = 1000, .nodeid = a->node};
	memcpy(req, &h, sizeof(h));
	memcpy(req + sizeof(h), &oi, sizeof(oi));
	uint8_t out[64];
	struct iovec in = {req, sizeof(req)}, o = {out, sizeof(out)};
	fs_handle(a->fs, &in, 1, &o, 1);
	a->err = ((struct fuse_out_header *)out)->error;
	a->done_ns = now_ns();
	return NULL;
}

START_TEST(test_slow_fetch_does_not_block_others)
{
	int err;
	uint64_t slow = tf_lookup(&T, 1, "slow", &err);
	uint64_t small = tf_lookup(&T, 1, "small", &err);
	F.delay_ms = 400;
	struct slow_arg a = {.fs = T.fs, .node = slow};
	pthread_t th;
	uint64_t t0 = now_ns();
	pthread_create(&th, NULL, slow_open, &a);
	usleep(50000);
	/* Metadata and another file's content, served during the wait. */
	tf_getattr(&T, small, &err);
	ck_assert_int_eq(err, 0);
	uint64_t fh = tf_open(&T, small, O_RDONLY, &err);
	ck_assert_int_eq(err, 0);
	char buf[16];
	ck_assert_int_eq(tf_read(&T, small, fh, 0, buf, 16), 11);
	uint64_t others_done = now_ns();
	pthread_join(th, NULL);
	ck_assert_int_eq(a.err, 0);
	ck_assert_uint_lt(others_done - t0, 300000000ull);
	ck_assert_uint_ge(a.done_ns - t0, 400000000ull);
	struct fs_stats st;
	fs_get_stats(T.fs, &st);
	ck_assert_uint_ge(st.fault_max_ns, 400000000ull);
}
END_TEST

START_TEST(test_xattrs_from_the_manifest)
{
	int err;
	uint64_t s = tf_lookup(&T, 1, "small", &err);
	struct fuse_getxattr_in gi = {.size = 0};
	const char *name = "security.capability";
	ck_assert_int_eq(tf_req(&T, FUSE_GETXATTR, s, &gi, sizeof(gi), name, strlen(name) + 1, NULL, 0), 0);
	ck_assert_uint_eq(((struct fuse_getxattr_out *)tf_body(&T))->size, sizeof(capval));
	gi.size = 4;
	ck_assert_int_eq(tf_req(&T, FUSE_GETXATTR, s, &gi, sizeof(gi), name, strlen(name) + 1, NULL, 0), -ERANGE);
	gi.size = 64;
	ck_assert_int_eq(tf_req(&T, FUSE_GETXATTR, s, &gi, sizeof(gi), name, strlen(name) + 1, NULL, 0), 0);
	ck_assert_uint_eq(tf_body_len(&T), sizeof(capval));
	ck_assert_int_eq(memcmp(tf_body(&T), capval, sizeof(capval)), 0);
	ck_assert_int_eq(tf_req(&T, FUSE_GETXATTR, s, &gi, sizeof(gi), "user.none", 10, NULL, 0), -ENODATA);
	ck_assert_int_eq(tf_req(&T, FUSE_GETXATTR, s, &gi, sizeof(gi), "user.note", 9, NULL, 0), -EINVAL); /* no NUL */
	ck_assert_int_eq(tf_req(&T, FUSE_LISTXATTR, s, &gi, sizeof(gi), NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(tf_body_len(&T), strlen(name) + 1 + 10);
	ck_assert_int_eq(memcmp(tf_body(&T), "security.capability\0user.note\0", tf_body_len(&T)), 0);
	struct fuse_setxattr_in si = {.size = 1};
	ck_assert_int_eq(tf_req(&T, FUSE_SETXATTR, s, &si, sizeof(si), "user.a", 7, "x", 1), -EOPNOTSUPP);
	uint64_t b = tf_lookup(&T, 1, "big", &err);
	gi.size = 0;
	ck_assert_int_eq(tf_req(&T, FUSE_LISTXATTR, b, &gi, sizeof(gi), NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(((struct fuse_getxattr_out *)tf_body(&T))->size, 0);
}
END_TEST

static Suite *fs_faults_suite(void)
{
	Suite *s = suite_create("fs_faults");
	TCase *tc = tcase_create("faults");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_metadata_needs_no_fetch);
	tcase_add_test(tc, test_fault_counted_once_per_file);
	tcase_add_test(tc, test_chunked_read_fetches_only_the_range);
	tcase_add_test(tc, test_copy_up_of_chunked_file);
	tcase_add_test(tc, test_server_down);
	tcase_add_test(tc, test_slow_fetch_does_not_block_others);
	tcase_add_test(tc, test_xattrs_from_the_manifest);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(fs_faults_suite)
