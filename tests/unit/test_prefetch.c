/* Prefetch profiles and the prefetcher: reading a profile file, resolving
 * it against a manifest (unknown paths skipped, repeats dropped, bounded),
 * the manifest's tolerance of a stale or huge profile, and a lazy backend
 * that prefetches a profile into the cache and says which reads it served
 * (the server records them: tests/unit/test_lazy_root.c). */
#include "tests/unit/unit.h"
#include "tests/unit/test_fuse_harness.h"

#include "fs/backend_fetch.h"
#include "fs/prefetch.h"
#include "image/image.h"
#include "lib/cli.h"

#include <time.h>

static char dir[256];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s/tpf.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct manifest_entry *add(struct manifest *m, const char *path, enum manifest_type t)
{
	m->entries = realloc(m->entries, (m->n_entries + 1) * sizeof(*m->entries));
	struct manifest_entry *e = &m->entries[m->n_entries++];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	e->type = t;
	e->mode = t == MF_DIR ? 0755 : 0644;
	return e;
}

/* "", bin/, bin/x, etc/, etc/a, etc/h (hard link to etc/a), etc/l (symlink). */
static void small_manifest(struct manifest *m)
{
	memset(m, 0, sizeof(*m));
	m->version = MANIFEST_VERSION;
	m->chunk_size = MANIFEST_DEFAULT_CHUNK;
	m->blobs_url = strdup(MANIFEST_DEFAULT_BLOBS);
	add(m, "", MF_DIR);
	add(m, "bin", MF_DIR);
	struct manifest_entry *e = add(m, "bin/x", MF_REG);
	e->size = 1, e->has_digest = true, e->digest[0] = 1;
	add(m, "etc", MF_DIR);
	e = add(m, "etc/a", MF_REG);
	e->size = 2, e->has_digest = true, e->digest[0] = 2;
	e = add(m, "etc/h", MF_HARDLINK);
	e->target = strdup("etc/a");
	e = add(m, "etc/l", MF_SYMLINK);
	e->target = strdup("a"), e->size = 1;
	m->total_bytes = 3;
}

START_TEST(test_profile_read)
{
	char f[300], err[256];
	snprintf(f, sizeof(f), "%s/p.txt", dir);
	tf_write_file(f, "# a comment\n\n/etc/a\nusr/bin/b\r\n../x\na//b\netc/a\n");
	char **v;
	size_t n, bad;
	ck_assert_msg(manifest_profile_read(f, &v, &n, &bad, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(bad, 2);
	ck_assert_str_eq(v[0], "etc/a");
	ck_assert_str_eq(v[1], "usr/bin/b");
	ck_assert_str_eq(v[2], "etc/a");
	manifest_profile_free(v, n);
	snprintf(f, sizeof(f), "%s/missing.txt", dir);
	ck_assert_int_eq(manifest_profile_read(f, &v, &n, &bad, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "missing.txt"));
}
END_TEST

START_TEST(test_profile_resolve_skips_and_dedupes)
{
	struct manifest m;
	small_manifest(&m);
	char *paths[] = {"bin/x", "nosuch", "etc/h", "etc/a", "etc", "etc/l", "bin/x", "etc/a/zz"};
	size_t idx[8], skipped = 99;
	size_t got = manifest_profile_resolve(&m, paths, 8, idx, &skipped);
	ck_assert_uint_eq(got, 2);
	ck_assert_str_eq(m.entries[idx[0]].path, "bin/x");
	ck_assert_str_eq(m.entries[idx[1]].path, "etc/a"); /* via the hard link */
	ck_assert_uint_eq(skipped, 4);

	/* Stored in the manifest: resolved paths only, and it round-trips. */
	size_t kept;
	char err[256];
	ck_assert_int_eq(manifest_profile_set(&m, paths, 8, &kept, &skipped, err, sizeof(err)), 0);
	ck_assert_uint_eq(kept, 2);
	ck_assert_uint_eq(m.n_profile, 2);
	ck_assert_str_eq(m.profile[1], "etc/a");
	void *buf;
	size_t len;
	ck_assert_msg(manifest_write(&m, false, &buf, &len, err, sizeof(err)) == 0, "%s", err);
	struct manifest m2;
	ck_assert_msg(manifest_parse(buf, len, &m2, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(m2.n_profile, 2);
	ck_assert_str_eq(m2.profile[0], "bin/x");
	free(buf);
	manifest_free(&m2);
	manifest_free(&m);
}
END_TEST

/* A profile naming files the image no longer has is a stale hint, not a
 * broken manifest; a huge one is cut at MANIFEST_MAX_PROFILE. */
START_TEST(test_manifest_tolerates_stale_and_huge_profile)
{
	struct manifest m;
	small_manifest(&m);
	size_t n = MANIFEST_MAX_PROFILE + 10;
	m.profile = calloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		char p[32];
		snprintf(p, sizeof(p), "gone/%zu", i);
		m.profile[i] = strdup(p);
	}
	m.n_profile = n;
	char err[256];
	ck_assert_msg(manifest_validate(&m, err, sizeof(err)) == 0, "%s", err);
	void *buf;
	size_t len;
	ck_assert_msg(manifest_write(&m, false, &buf, &len, err, sizeof(err)) == 0, "%s", err);
	struct manifest m2;
	ck_assert_msg(manifest_parse(buf, len, &m2, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(m2.n_profile, MANIFEST_MAX_PROFILE);
	size_t *idx = malloc(m2.n_entries * sizeof(*idx)), skipped = 0;
	ck_assert_uint_eq(manifest_profile_resolve(&m2, m2.profile, m2.n_profile, idx, &skipped), 0);
	ck_assert_uint_eq(skipped, MANIFEST_MAX_PROFILE);
	free(idx);
	free(buf);
	manifest_free(&m2);
	manifest_free(&m);
}
END_TEST

/* --- the prefetcher, through the lazy backend on a file:// image --- */

static void write_bytes(const char *path, size_t n, char c)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < n; i++)
		fputc(c + (int)(i % 7), f);
	fclose(f);
}

static struct manifest *image_with_profile(const char *img, const char *mpath)
{
	char lower[300], p[400], err[512] = "";
	snprintf(lower, sizeof(lower), "%s/lower", dir);
	ck_assert_int_eq(mkdir(lower, 0755), 0);
	snprintf(p, sizeof(p), "%s/a.txt", lower);
	write_bytes(p, 100, 'a');
	snprintf(p, sizeof(p), "%s/b.txt", lower);
	write_bytes(p, 200, 'b');
	snprintf(p, sizeof(p), "%s/big.bin", lower);
	write_bytes(p, 5 * 4096 - 10, 'c'); /* 5 chunks of 4 KiB */
	char *prof[] = {"b.txt", "no/such/file", "big.bin", "b.txt"};
	tf_write_image_dir(lower, img, mpath, prof, 4);
	struct manifest *l = calloc(1, sizeof(*l));
	ck_assert_msg(manifest_load_file(mpath, l, err, sizeof(err)) == 0, "%s", err);
	return l;
}

START_TEST(test_prefetch_fills_cache_and_serves)
{
	char img[300], mpath[350], cdir[300], err[512] = "";
	snprintf(img, sizeof(img), "%s/img", dir);
	snprintf(mpath, sizeof(mpath), "%s/manifest.json", img);
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	ck_assert_int_eq(mkdir(img, 0755), 0);
	struct manifest *m = image_with_profile(img, mpath);
	ck_assert_uint_eq(m->n_profile, 4);

	memset(&prefetch_stats, 0, sizeof(prefetch_stats));
	struct config cfg = {0};
	config_add(&cfg, "cache-dir", cdir);
	config_add(&cfg, "prefetch-parallel", "3");
	void *b = fs_backend_fetch_open_local(mpath, m, &cfg, err, sizeof(err));
	ck_assert_msg(b != NULL, "%s", err);
	ck_assert(prefetch_stats.enabled);
	ck_assert_uint_eq(prefetch_stats.profile_entries, 4);
	ck_assert_uint_eq(prefetch_stats.profile_files, 2);
	ck_assert_uint_eq(prefetch_stats.profile_skipped, 1);
	for (int i = 0; i < 1000 && !prefetch_stats.finished; i++)
		usleep(10000);
	ck_assert_msg(prefetch_stats.finished, "the prefetcher did not finish a 3-file profile");
	ck_assert_uint_eq(prefetch_stats.files, 2);
	ck_assert_uint_eq(prefetch_stats.requests, 1 + 5); /* b.txt, big.bin's 5 chunks */
	ck_assert_uint_eq(prefetch_stats.bytes, 200 + 5 * 4096 - 10);
	ck_assert_uint_eq(prefetch_stats.errors, 0);

	struct cache *c = cache_open(cdir, 0, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	const struct manifest_entry *ea = manifest_lookup(m, "a.txt");
	const struct manifest_entry *eb = manifest_lookup(m, "b.txt");
	const struct manifest_entry *eg = manifest_lookup(m, "big.bin");
	ck_assert(cache_has(c, eb->digest, eb->size));
	ck_assert(!cache_has(c, ea->digest, ea->size)); /* not in the profile */
	ck_assert_uint_eq(eg->n_chunks, 5);
	for (size_t i = 0; i < 5; i++)
		ck_assert(cache_has(c, eg->chunks[i], i < 4 ? 4096 : 4096 - 10));

	/* The guest reads b.txt (served from prefetched data: no fault),
	 * then a.txt (a fault), then big.bin. */
	struct fs_fetch_info info = {0};
	int fd = fs_backend_fetch.open_content(b, eb, &info);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert(!info.fetched);
	ck_assert(info.served); /* a read all the same: the first-read order counts it */
	ck_assert_uint_eq(prefetch_stats.demand_served, 1);
	memset(&info, 0, sizeof(info));
	fd = fs_backend_fetch.open_content(b, ea, &info);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert(info.fetched);
	ck_assert(info.served);
	char buf[100];
	memset(&info, 0, sizeof(info));
	ck_assert_int_eq(fs_backend_fetch.read_range(b, eg, 4096, buf, sizeof(buf), &info), 100);
	ck_assert(!info.fetched);
	ck_assert(info.served);
	ck_assert_uint_eq(prefetch_stats.demand_served, 2);
	/* A fault that fails delivers nothing. */
	struct manifest_entry gone = *ea;
	gone.digest[0] ^= 0xff;
	memset(&info, 0, sizeof(info));
	ck_assert_int_lt(fs_backend_fetch.open_content(b, &gone, &info), 0);
	ck_assert(!info.served);
	fs_backend_fetch_stop(b); /* the lazy root's close; faults still served */
	memset(&info, 0, sizeof(info));
	fd = fs_backend_fetch.open_content(b, ea, &info);
	ck_assert_int_ge(fd, 0);
	close(fd);
	fs_backend_fetch.destroy(b);
	cache_close(c);
	config_free(&cfg);
	manifest_free(m);
	free(m);
}
END_TEST

/* --no-prefetch, and a profile file of 200k lines naming nothing in the
 * image: no prefetch, no harm, quickly. */
START_TEST(test_no_prefetch_and_huge_bogus_profile)
{
	char img[300], mpath[350], cdir[300], pf[300], err[512] = "";
	snprintf(img, sizeof(img), "%s/img", dir);
	snprintf(mpath, sizeof(mpath), "%s/manifest.json", img);
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	snprintf(pf, sizeof(pf), "%s/huge.txt", dir);
	ck_assert_int_eq(mkdir(img, 0755), 0);
	struct manifest *m = image_with_profile(img, mpath);

	memset(&prefetch_stats, 0, sizeof(prefetch_stats));
	struct config cfg = {0};
	config_add(&cfg, "cache-dir", cdir);
	config_add(&cfg, "no-prefetch", "");
	void *b = fs_backend_fetch_open_local(mpath, m, &cfg, err, sizeof(err));
	ck_assert_msg(b != NULL, "%s", err);
	ck_assert(!prefetch_stats.enabled);
	fs_backend_fetch.destroy(b);
	config_free(&cfg);
	ck_assert_uint_eq(prefetch_stats.files, 0);

	FILE *f = fopen(pf, "w");
	for (int i = 0; i < 200000; i++)
		fprintf(f, "/no/such/dir/file-%d\n", i);
	fclose(f);
	memset(&prefetch_stats, 0, sizeof(prefetch_stats));
	struct config cfg2 = {0};
	config_add(&cfg2, "cache-dir", cdir);
	config_add(&cfg2, "prefetch-profile", pf);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	b = fs_backend_fetch_open_local(mpath, m, &cfg2, err, sizeof(err));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_msg(b != NULL, "%s", err);
	ck_assert(!prefetch_stats.enabled); /* nothing to prefetch */
	ck_assert_uint_eq(prefetch_stats.profile_entries, 200000);
	ck_assert_uint_eq(prefetch_stats.profile_skipped, 200000);
	ck_assert_uint_eq(prefetch_stats.profile_files, 0);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_msg(s < 2.0, "a 200k-line profile took %.2f s to resolve", s);
	fs_backend_fetch.destroy(b);
	config_free(&cfg2);
	manifest_free(m);
	free(m);
}
END_TEST

static Suite *prefetch_suite(void)
{
	Suite *s = suite_create("prefetch");
	TCase *tc = tcase_create("prefetch");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_profile_read);
	tcase_add_test(tc, test_profile_resolve_skips_and_dedupes);
	tcase_add_test(tc, test_manifest_tolerates_stale_and_huge_profile);
	tcase_add_test(tc, test_prefetch_fills_cache_and_serves);
	tcase_add_test(tc, test_no_prefetch_and_huge_bogus_profile);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(prefetch_suite)
