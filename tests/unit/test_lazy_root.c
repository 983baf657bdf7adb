/* The lazy root (fs/root.h) without a VM: opened on a host directory, a
 * local manifest and a file:// image URL, FUSE requests handed to its
 * server, closed with each outcome. Write-back's result becomes the
 * status close returns (12 when the target refuses), a state directory
 * holding a stage is refused, and the one first-read recorder gives the
 * same profile, to --record-profile and to write-back, whether a file was
 * fetched or came from a warm cache. A stop signal during teardown
 * reaches the handler a device sets (vm_interrupt). */
#include "tests/unit/unit.h"
#include "tests/unit/test_fuse_harness.h"

#include "fs/root.h"
#include "image/image.h"
#include "lib/cli.h"
#include "vmm/vm.h"

#include <pthread.h>
#include <signal.h>

static struct tf T;
static char img[400], mpath[450], cdir[400];
static struct config cfg;
static char old_tmpdir[400];

/* An image in img/ (manifest.json, blobs/sha256/) made from lower/:
 * a.txt, b.txt and big.bin (chunked: 4 KiB chunks). */
static void build_image(void)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/a.txt", T.lower);
	tf_write_file(p, "alpha\n");
	snprintf(p, sizeof(p), "%s/b.txt", T.lower);
	tf_write_file(p, "bravo\n");
	snprintf(p, sizeof(p), "%s/big.bin", T.lower);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 3000; i++)
		fprintf(f, "line %d\n", i);
	fclose(f);
	tf_write_image(&T, img, mpath);
}

static void setup(void)
{
	tf_setup_dirs(&T);
	snprintf(img, sizeof(img), "%s/img", T.dir);
	snprintf(mpath, sizeof(mpath), "%s/manifest.json", img);
	snprintf(cdir, sizeof(cdir), "%s/cache", T.dir);
	ck_assert_int_eq(mkdir(img, 0755), 0);
	build_image();
	memset(&cfg, 0, sizeof(cfg));
	config_add(&cfg, "cache-dir", cdir);
	config_add(&cfg, "no-prefetch", NULL); /* what is read is what the test reads */
	/* A temporary state directory goes under TMPDIR: keep it in ours. */
	const char *t = getenv("TMPDIR");
	snprintf(old_tmpdir, sizeof(old_tmpdir), "%s", t ? t : "");
	setenv("TMPDIR", T.dir, 1);
}

static void teardown(void)
{
	config_free(&cfg);
	if (old_tmpdir[0])
		setenv("TMPDIR", old_tmpdir, 1);
	else
		unsetenv("TMPDIR");
	ck_assert_int_eq(rmtree(T.dir), 0);
}

/* Open source as T's server (its FUSE INIT done). */
static struct lazy_root *open_root(const char *source, const char *state, bool writeback)
{
	struct lazy_root_options o = {.cfg = &cfg, .state_dir = state, .writeback = writeback};
	char err[1024] = "";
	struct lazy_root *r = lazy_root_open(source, &o, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	T.fs = lazy_root_fs(r);
	T.unique = 0;
	tf_init(&T);
	return r;
}

/* Read name whole (a small file) or 100 bytes at 8 KiB (big.bin). */
static void read_file(const char *name, const char *want)
{
	int err;
	uint64_t n = tf_lookup(&T, 1, name, &err);
	ck_assert_int_eq(err, 0);
	uint64_t fh = tf_open(&T, n, O_RDONLY, &err);
	ck_assert_int_eq(err, 0);
	char buf[128];
	ssize_t got = tf_read(&T, n, fh, want ? 0 : 8192, buf, want ? sizeof(buf) : 100);
	if (want) {
		ck_assert_int_eq(got, (ssize_t)strlen(want));
		ck_assert_int_eq(memcmp(buf, want, strlen(want)), 0);
	} else {
		ck_assert_int_eq(got, 100);
	}
	tf_release(&T, n, fh, false);
}

static void write_new_file(const char *name, const char *content)
{
	int err;
	uint64_t n = tf_create(&T, 1, name, &err);
	ck_assert_int_eq(err, 0);
	uint64_t fh = tf_open(&T, n, O_WRONLY, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(tf_write(&T, n, fh, 0, content, (uint32_t)strlen(content)), 0);
	tf_release(&T, n, fh, false);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

START_TEST(test_dir_root)
{
	/* Nothing changed: the temporary state directory goes at close. */
	struct lazy_root *r = open_root(T.lower, NULL, true);
	char state[600];
	snprintf(state, sizeof(state), "%s", lazy_root_state_dir(r));
	ck_assert(exists(state));
	read_file("a.txt", "alpha\n");
	ck_assert_int_eq(lazy_root_close(r, LAZY_ROOT_CLEAN), EXIT_OK);
	ck_assert(!exists(state));
	lazy_root_free(r);

	/* A change under a host directory has nowhere to go: kept. */
	r = open_root(T.lower, NULL, true);
	snprintf(state, sizeof(state), "%s", lazy_root_state_dir(r));
	write_new_file("new.txt", "new\n");
	ck_assert_int_eq(lazy_root_close(r, LAZY_ROOT_CLEAN), EXIT_OK);
	ck_assert(exists(state));
	ck_assert_uint_eq(lazy_root_written_back(r), 0);
	lazy_root_free(r);
	char p[700];
	snprintf(p, sizeof(p), "%s/new.txt", T.lower);
	ck_assert(!exists(p)); /* the host directory is never written */

	/* A source that is not there names itself. */
	struct lazy_root_options o = {.cfg = &cfg};
	char err[1024] = "";
	snprintf(p, sizeof(p), "%s/nosuch", T.dir);
	ck_assert_ptr_null(lazy_root_open(p, &o, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "nosuch"));
}
END_TEST

START_TEST(test_manifest_root_writes_back)
{
	char state[600];
	snprintf(state, sizeof(state), "%s/state", T.dir);
	struct lazy_root *r = open_root(mpath, state, true);
	read_file("a.txt", "alpha\n");
	write_new_file("new.txt", "brand new\n");
	ck_assert_int_eq(lazy_root_close(r, LAZY_ROOT_CLEAN), EXIT_OK);
	ck_assert_uint_gt(lazy_root_written_back(r), 10);
	lazy_root_free(r);
	struct manifest m = {0};
	char err[512];
	ck_assert_msg(manifest_load_file(mpath, &m, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_nonnull(manifest_lookup(&m, "new.txt"));
	manifest_free(&m);
	char p[700];
	snprintf(p, sizeof(p), "%s/pending", state);
	ck_assert(!exists(p)); /* pushed: the stage is gone */
}
END_TEST

START_TEST(test_writeback_refused_is_reported)
{
	char state[600], bad[600], p[700];
	snprintf(state, sizeof(state), "%s/state", T.dir);
	snprintf(bad, sizeof(bad), "%s/missing-dir/manifest.json", T.dir);
	config_add(&cfg, LAZY_ROOT_WRITEBACK_TARGET_KEY, bad);

	/* Not a clean stop: staged, kept, nothing pushed, not a failure. */
	struct lazy_root *r = open_root(mpath, state, true);
	write_new_file("new.txt", "brand new\n");
	ck_assert_int_eq(lazy_root_close(r, LAZY_ROOT_ABORTED), EXIT_OK);
	lazy_root_free(r);
	snprintf(p, sizeof(p), "%s/pending/manifest.json", state);
	ck_assert(exists(p));

	/* A state directory holding a stage is refused, naming the command. */
	struct lazy_root_options o = {.cfg = &cfg, .state_dir = state, .writeback = true};
	char err[1024] = "";
	ck_assert_ptr_null(lazy_root_open(mpath, &o, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "minivmm writeback"));
	snprintf(p, sizeof(p), "%s/pending", state);
	ck_assert_int_eq(rmtree(p), 0);

	/* A clean stop whose push the target refuses: exit 12, stage kept,
	 * and a temporary state directory is not removed. */
	r = open_root(mpath, NULL, true);
	char tmp_state[600];
	snprintf(tmp_state, sizeof(tmp_state), "%s", lazy_root_state_dir(r));
	write_new_file("new.txt", "brand new\n");
	ck_assert_int_eq(lazy_root_close(r, LAZY_ROOT_CLEAN), EXIT_FAILURE_IO);
	lazy_root_free(r);
	snprintf(p, sizeof(p), "%s/pending/manifest.json", tmp_state);
	ck_assert(exists(p));
	ck_assert(!exists(bad));
}
END_TEST

/* A file:// image URL: the manifest read once into a local copy. */
START_TEST(test_url_root)
{
	char url[600];
	snprintf(url, sizeof(url), "file://%s", img);
	struct lazy_root *r = open_root(url, NULL, true);
	read_file("b.txt", "bravo\n");
	write_new_file("new.txt", "via the URL\n");
	ck_assert_int_eq(lazy_root_close(r, LAZY_ROOT_CLEAN), EXIT_OK);
	lazy_root_free(r);
	struct manifest m = {0};
	char err[512];
	ck_assert_msg(manifest_load_file(mpath, &m, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_nonnull(manifest_lookup(&m, "new.txt")); /* the image's own manifest */
	manifest_free(&m);
}
END_TEST

static void read_profile(const char *path, char *out, size_t len)
{
	char **v, err[512];
	size_t n, bad;
	ck_assert_msg(manifest_profile_read(path, &v, &n, &bad, err, sizeof(err)) == 0, "%s", err);
	out[0] = 0;
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "", v[i]);
	manifest_profile_free(v, n);
}

/* The guest reads b.txt, big.bin (one chunk), a.txt, b.txt again. */
static void boot_reads(void)
{
	read_file("b.txt", "bravo\n");
	read_file("big.bin", NULL);
	read_file("a.txt", "alpha\n");
	read_file("b.txt", "bravo\n");
}

/* Cold (every file fetched), then warm (every file from the cache): the
 * same first-read order, in --record-profile and in the profile
 * write-back gives the new image. */
START_TEST(test_warm_read_recorded_like_fetched)
{
	char rec[600], got[256];
	snprintf(rec, sizeof(rec), "%s/cold.txt", T.dir);
	config_add(&cfg, "record-profile", rec);
	struct lazy_root *r = open_root(mpath, NULL, false);
	boot_reads();
	struct fs_stats st;
	fs_get_stats(T.fs, &st);
	ck_assert_uint_eq(st.files_faulted, 3);
	ck_assert_int_eq(lazy_root_close(r, LAZY_ROOT_CLEAN), EXIT_OK);
	lazy_root_free(r);
	read_profile(rec, got, sizeof(got));
	ck_assert_str_eq(got, "b.txt,big.bin,a.txt");

	config_free(&cfg);
	memset(&cfg, 0, sizeof(cfg));
	config_add(&cfg, "cache-dir", cdir);
	config_add(&cfg, "no-prefetch", NULL);
	snprintf(rec, sizeof(rec), "%s/warm.txt", T.dir);
	config_add(&cfg, "record-profile", rec);
	r = open_root(mpath, NULL, true);
	boot_reads();
	write_new_file("new.txt", "changed\n"); /* something to write back */
	fs_get_stats(T.fs, &st);
	ck_assert_uint_eq(st.files_faulted, 0); /* all from the cache */
	ck_assert_int_eq(lazy_root_close(r, LAZY_ROOT_CLEAN), EXIT_OK);
	lazy_root_free(r);
	read_profile(rec, got, sizeof(got));
	ck_assert_str_eq(got, "b.txt,big.bin,a.txt");
	struct manifest m = {0};
	char err[512];
	ck_assert_msg(manifest_load_file(mpath, &m, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(m.n_profile, 3);
	ck_assert_str_eq(m.profile[0], "b.txt");
	ck_assert_str_eq(m.profile[1], "big.bin");
	ck_assert_str_eq(m.profile[2], "a.txt");
	manifest_free(&m);
}
END_TEST

/* The signal path of a run's teardown (vmm/run.c -> vm_interrupt -> the
 * handler the device sets around lazy_root_close): a signal that came
 * before the handler is handed over when it is set, none after it goes. */
static int got_sig, got_calls;
static void on_interrupt(void *ctx, int sig)
{
	ck_assert_ptr_eq(ctx, &got_calls);
	got_sig = sig;
	got_calls++;
}

START_TEST(test_teardown_interrupt_reaches_handler)
{
	struct vm vm;
	memset(&vm, 0, sizeof(vm));
	pthread_mutex_init(&vm.stop_lock, NULL);
	ck_assert(!vm_interrupt(&vm, SIGTERM)); /* no handler yet: kept */
	vm_on_interrupt(&vm, on_interrupt, &got_calls);
	ck_assert_int_eq(got_calls, 1);
	ck_assert_int_eq(got_sig, SIGTERM);
	ck_assert(vm_interrupt(&vm, SIGINT));
	ck_assert_int_eq(got_calls, 2);
	ck_assert_int_eq(got_sig, SIGINT);
	vm_on_interrupt(&vm, NULL, NULL);
	ck_assert(!vm_interrupt(&vm, SIGHUP));
	ck_assert_int_eq(got_calls, 2);
	pthread_mutex_destroy(&vm.stop_lock);
}
END_TEST

static Suite *lazy_root_suite(void)
{
	Suite *s = suite_create("lazy_root");
	TCase *tc = tcase_create("lazy_root");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_dir_root);
	tcase_add_test(tc, test_manifest_root_writes_back);
	tcase_add_test(tc, test_writeback_refused_is_reported);
	tcase_add_test(tc, test_url_root);
	tcase_add_test(tc, test_warm_read_recorded_like_fetched);
	tcase_add_test(tc, test_teardown_interrupt_reaches_handler);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(lazy_root_suite)
