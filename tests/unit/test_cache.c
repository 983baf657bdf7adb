/* Unit tests of the blob cache through file:// URLs: layout, hits,
 * refusal of bad bytes, corruption, LRU eviction that spares blobs in use,
 * chunks and concurrent threads. */
#include "tests/unit/unit.h"
#include "fetch/cache.h"
#include "fetch/fetch.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBLOBS 8
#define BLOB_SIZE 10000

#define DIR_TEMPLATE "/tmp/minivmm-cache-XXXXXX"
static char dir[sizeof(DIR_TEMPLATE)];
static char base[300], cdir[300];
static uint8_t blobs[NBLOBS][BLOB_SIZE];
static uint8_t dig[NBLOBS][FETCH_SHA256_LEN];
static struct fetch_client *fc;

static void sha(const void *p, size_t n, uint8_t out[FETCH_SHA256_LEN])
{
	unsigned l;
	EVP_Digest(p, n, out, &l, EVP_sha256(), NULL);
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void setup(void)
{
	memcpy(dir, DIR_TEMPLATE, sizeof(DIR_TEMPLATE));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char p[400], hex[FETCH_SHA256_HEX];
	snprintf(p, sizeof(p), "%s/srv", dir);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(base, sizeof(base), "file://%s/srv", dir);
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	for (int b = 0; b < NBLOBS; b++) {
		for (int i = 0; i < BLOB_SIZE; i++)
			blobs[b][i] = (uint8_t)(b * 31 + i * 13 + i / 256);
		sha(blobs[b], BLOB_SIZE, dig[b]);
		fetch_sha256_to_hex(dig[b], hex);
		snprintf(p, sizeof(p), "%s/srv/%s", dir, hex);
		write_file(p, blobs[b], BLOB_SIZE);
	}
	char err[256];
	struct fetch_opts o = {.no_retries = true, .allow_file = true};
	fc = fetch_client_create(&o, err, sizeof(err));
	ck_assert_ptr_nonnull(fc);
}

static void teardown(void)
{
	fetch_client_destroy(fc);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s; rm -rf %s", dir, dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct cache *open_cache(uint64_t max)
{
	char err[256];
	struct cache *c = cache_open(cdir, max, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	return c;
}

static void entry_path(int b, char *out, size_t len)
{
	char hex[FETCH_SHA256_HEX];
	fetch_sha256_to_hex(dig[b], hex);
	snprintf(out, len, "%s/blobs/sha256/%s", cdir, hex);
}

static void check_fd(int fd, int b)
{
	static uint8_t back[BLOB_SIZE + 1];
	ck_assert_int_eq(pread(fd, back, sizeof(back), 0), BLOB_SIZE);
	ck_assert_mem_eq(back, blobs[b], BLOB_SIZE);
}

static int count_files(const char *sub)
{
	char cmd[500];
	snprintf(cmd, sizeof(cmd), "exit $(find %s/%s -type f | wc -l)", cdir, sub);
	return WEXITSTATUS(system(cmd));
}

static int get(struct cache *c, int b, bool *hit)
{
	int fd = -1;
	char err[FETCH_ERR_LEN + 100];
	ck_assert_msg(cache_get_blob(c, fc, base, dig[b], BLOB_SIZE, &fd, hit, err, sizeof(err)) == 0,
		      "%s", err);
	check_fd(fd, b);
	return fd;
}

START_TEST(layout_and_hits)
{
	struct cache *c = open_cache(0);
	bool hit = true;
	int fd = get(c, 0, &hit);
	ck_assert(!hit);
	close(fd);
	char p[500];
	entry_path(0, p, sizeof(p));
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_size, BLOB_SIZE);
	ck_assert_int_eq(st.st_mode & 0222, 0); /* entries are read-only */
	ck_assert_int_eq(count_files("tmp"), 0);
	ck_assert_int_eq(count_files("locks"), 0);
	fd = get(c, 0, &hit);
	ck_assert(hit);
	close(fd);
	ck_assert(cache_has(c, dig[0], BLOB_SIZE));
	ck_assert(!cache_has(c, dig[0], BLOB_SIZE + 1));
	ck_assert(!cache_has(c, dig[1], BLOB_SIZE));
	struct cache_stats s;
	cache_get_stats(c, &s);
	ck_assert_uint_eq(s.hits, 1);
	ck_assert_uint_eq(s.misses, 1);
	ck_assert_uint_eq(s.bytes_fetched, BLOB_SIZE);
	ck_assert_uint_eq(s.bytes_served_from_cache, BLOB_SIZE);
	cache_close(c);
}
END_TEST

START_TEST(bad_bytes_stay_out)
{
	struct cache *c = open_cache(0);
	char err[FETCH_ERR_LEN + 100], url[500], hex[FETCH_SHA256_HEX];
	int fd = -1;
	/* The object at blob 1's URL, claimed to be blob 0. */
	fetch_sha256_to_hex(dig[1], hex);
	snprintf(url, sizeof(url), "%s/%s", base, hex);
	ck_assert_int_eq(cache_get_url(c, fc, url, dig[0], BLOB_SIZE, &fd, NULL, err, sizeof(err)), -1);
	fetch_sha256_to_hex(dig[0], hex);
	ck_assert_ptr_nonnull(strstr(err, hex));
	ck_assert_ptr_nonnull(strstr(err, "sha256 mismatch"));
	ck_assert_int_eq(count_files("blobs"), 0);
	ck_assert_int_eq(count_files("tmp"), 0);
	/* Right digest, wrong declared size: refused too. */
	ck_assert_int_eq(cache_get_blob(c, fc, base, dig[2], BLOB_SIZE - 1, &fd, NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "expected 9999"));
	ck_assert_int_eq(count_files("blobs"), 0);
	cache_close(c);
}
END_TEST

START_TEST(unknown_size_hashed_aside)
{
	/* Size unknown: the digest is computed on a second thread (the path
	 * of large blobs); a wrong one still keeps the bytes out. */
	struct cache *c = open_cache(0);
	char err[FETCH_ERR_LEN + 100], url[500], hex[FETCH_SHA256_HEX];
	int fd = -1;
	fetch_sha256_to_hex(dig[4], hex);
	snprintf(url, sizeof(url), "%s/%s", base, hex);
	ck_assert_int_eq(cache_get_url(c, fc, url, dig[5], UINT64_MAX, &fd, NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "sha256 mismatch"));
	ck_assert_ptr_nonnull(strstr(err, hex)); /* the digest actually received */
	ck_assert_int_eq(count_files("blobs"), 0);
	ck_assert_int_eq(count_files("tmp"), 0);
	ck_assert_msg(cache_get_url(c, fc, url, dig[4], UINT64_MAX, &fd, NULL, err, sizeof(err)) == 0, "%s", err);
	check_fd(fd, 4);
	close(fd);
	cache_close(c);
}
END_TEST

static void corrupt(int b, bool truncate_it)
{
	char p[500];
	entry_path(b, p, sizeof(p));
	ck_assert_int_eq(chmod(p, 0644), 0);
	if (truncate_it) {
		ck_assert_int_eq(truncate(p, BLOB_SIZE / 2), 0);
		return;
	}
	int fd = open(p, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "\xff\xfe", 2, 100), 2);
	close(fd);
}

START_TEST(corruption_detected)
{
	struct cache *c = open_cache(0);
	close(get(c, 0, NULL));
	close(get(c, 1, NULL));
	cache_close(c);
	corrupt(0, false);
	corrupt(1, true);
	/* A new process (cache handle) re-checks the digest on first use. */
	c = open_cache(0);
	bool hit = true;
	close(get(c, 0, &hit));
	ck_assert(!hit);
	close(get(c, 1, &hit));
	ck_assert(!hit);
	struct cache_stats s;
	cache_get_stats(c, &s);
	ck_assert_uint_eq(s.corrupt_refetched, 2);
	/* Now verified: a hit without hashing again. */
	close(get(c, 0, &hit));
	ck_assert(hit);
	cache_close(c);
	/* With size-only checks a same-size corruption is not seen (the
	 * documented trade-off), a truncation is. */
	corrupt(0, false);
	corrupt(1, true);
	c = open_cache(0);
	cache_set_verify(c, CACHE_VERIFY_SIZE);
	int fd = -1;
	char err[FETCH_ERR_LEN + 100];
	ck_assert_int_eq(cache_get_blob(c, fc, base, dig[0], BLOB_SIZE, &fd, &hit, err, sizeof(err)), 0);
	ck_assert(hit);
	close(fd);
	close(get(c, 1, &hit));
	ck_assert(!hit);
	cache_close(c);
}
END_TEST


/* The same process (one cache handle) meets an entry corrupted after it
 * verified it: the changed file (ctime, size) is hashed again, refetched,
 * and the right bytes served; an unchanged one is not hashed again. */
START_TEST(corruption_seen_by_same_process)
{
	struct cache *c = open_cache(0);
	close(get(c, 0, NULL));
	close(get(c, 1, NULL));
	bool hit = false;
	close(get(c, 0, &hit)); /* unchanged: a plain hit */
	ck_assert(hit);
	corrupt(0, false);      /* same size, other bytes */
	corrupt(1, true);
	close(get(c, 0, &hit)); /* check_fd: the right bytes */
	ck_assert(!hit);
	close(get(c, 1, &hit));
	ck_assert(!hit);
	struct cache_stats st;
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.corrupt_refetched, 2);
	close(get(c, 0, &hit)); /* the fresh copy is verified: a hit */
	ck_assert(hit);
	cache_close(c);
}
END_TEST

/* A blob larger than the cache's bound is refused without a fetch. */
START_TEST(size_over_bound_refused)
{
	struct cache *c = open_cache(BLOB_SIZE / 2);
	int fd = -1;
	char err[FETCH_ERR_LEN + 100];
	ck_assert_int_eq(cache_get_blob(c, fc, base, dig[0], BLOB_SIZE, &fd, NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "more than the cache may hold"));
	struct cache_stats st;
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.misses, 0);
	ck_assert_uint_eq(st.bytes_fetched, 0);
	cache_close(c);
}
END_TEST

static void set_age(int b, time_t secs_ago)
{
	char p[500];
	entry_path(b, p, sizeof(p));
	struct timespec ts[2] = {{.tv_sec = time(NULL) - secs_ago}, {.tv_sec = time(NULL) - secs_ago}};
	ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
}

START_TEST(lru_eviction_spares_in_use)
{
	struct cache *c = open_cache(0);
	for (int b = 0; b < 6; b++) {
		close(get(c, b, NULL));
		set_age(b, 1000 - b * 100); /* blob 0 oldest ... blob 5 newest */
	}
	int held = get(c, 0, NULL); /* in use: oldest, yet must stay */
	set_age(0, 5000);
	long n = cache_gc(c, 3 * BLOB_SIZE);
	ck_assert_int_eq(n, 3); /* 1, 2, 3 go (oldest first); 0 is held */
	for (int b = 0; b < 6; b++)
		ck_assert_int_eq(cache_has(c, dig[b], BLOB_SIZE), b == 0 || b >= 4);
	struct cache_usage u;
	ck_assert_int_eq(cache_usage(c, &u), 0);
	ck_assert_uint_eq(u.blobs, 3);
	ck_assert_uint_eq(u.bytes, 3 * BLOB_SIZE);
	ck_assert_uint_eq(u.in_use, 1);
	/* clear spares it too while it is held */
	ck_assert_int_eq(cache_clear(c), 2);
	ck_assert(cache_has(c, dig[0], BLOB_SIZE));
	check_fd(held, 0);
	close(held);
	ck_assert_int_eq(cache_clear(c), 1);
	ck_assert_int_eq(count_files("blobs"), 0);
	cache_close(c);
}
END_TEST

START_TEST(bounded_automatically)
{
	/* Bound of 3.5 blobs: inserting 8 keeps it under the bound. */
	struct cache *c = open_cache(3 * BLOB_SIZE + BLOB_SIZE / 2);
	for (int b = 0; b < NBLOBS; b++) {
		close(get(c, b, NULL));
		set_age(b, 1000 - b * 100);
	}
	struct cache_usage u;
	ck_assert_int_eq(cache_usage(c, &u), 0);
	ck_assert_uint_le(u.bytes, 3 * BLOB_SIZE + BLOB_SIZE / 2);
	ck_assert(cache_has(c, dig[NBLOBS - 1], BLOB_SIZE)); /* the newest stays */
	struct cache_stats s;
	cache_get_stats(c, &s);
	ck_assert_uint_ge(s.evictions, NBLOBS - 3);
	cache_close(c);
}
END_TEST

START_TEST(abandoned_tmp_removed)
{
	struct cache *c = open_cache(0);
	char p[500];
	snprintf(p, sizeof(p), "%s/tmp/dead.123456", cdir);
	write_file(p, "x", 1);
	struct timespec ts[2] = {{.tv_sec = time(NULL) - 3600}, {.tv_sec = time(NULL) - 3600}};
	ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
	snprintf(p, sizeof(p), "%s/tmp/fresh.123456", cdir);
	write_file(p, "x", 1);
	/* A file time ahead of time(2), as fine-grained file times give just
	 * after a second begins: fresh too, not 2^64 s old. */
	snprintf(p, sizeof(p), "%s/tmp/ahead.123456", cdir);
	write_file(p, "x", 1);
	struct timespec ahead[2] = {{.tv_sec = time(NULL) + 2}, {.tv_sec = time(NULL) + 2}};
	ck_assert_int_eq(utimensat(AT_FDCWD, p, ahead, 0), 0);
	ck_assert_int_eq(cache_gc(c, UINT64_MAX), 0);
	ck_assert_int_eq(count_files("tmp"), 2); /* the fresh ones may be live */
	cache_close(c);
}
END_TEST

START_TEST(chunks)
{
	struct cache *c = open_cache(0);
	const uint64_t cs = 4096;
	uint8_t cd[3][FETCH_SHA256_LEN];
	for (int i = 0; i < 3; i++) {
		uint64_t len = i < 2 ? cs : BLOB_SIZE - 2 * cs;
		sha(blobs[3] + i * cs, len, cd[i]);
	}
	char err[FETCH_ERR_LEN + 100];
	static uint8_t back[4096];
	for (int i = 2; i >= 0; i--) {
		int fd;
		uint64_t off, len;
		ck_assert_msg(cache_get_chunk(c, fc, base, dig[3], BLOB_SIZE, cs, (uint64_t)i, cd[i], &fd, &off,
					      &len, err, sizeof(err)) == 0, "%s", err);
		ck_assert_uint_eq(off, 0); /* the blob is not cached: the chunk alone */
		ck_assert_uint_eq(len, i < 2 ? cs : BLOB_SIZE - 2 * cs);
		ck_assert_int_eq(pread(fd, back, len, 0), (ssize_t)len);
		ck_assert_mem_eq(back, blobs[3] + i * cs, len);
		close(fd);
	}
	ck_assert(!cache_has(c, dig[3], BLOB_SIZE));
	int fd;
	uint64_t off, len;
	ck_assert_int_eq(cache_get_chunk(c, fc, base, dig[3], BLOB_SIZE, cs, 3, cd[0], &fd, &off, &len, err,
					 sizeof(err)), -1);
	ck_assert_int_eq(cache_get_chunk(c, fc, base, dig[3], BLOB_SIZE, 0, 0, cd[0], &fd, &off, &len, err,
					 sizeof(err)), -1);
	/* Once the whole blob is cached, it serves chunks at their offset. */
	close(get(c, 3, NULL));
	ck_assert_int_eq(cache_get_chunk(c, fc, base, dig[3], BLOB_SIZE, cs, 1, cd[1], &fd, &off, &len, err,
					 sizeof(err)), 0);
	ck_assert_uint_eq(off, cs);
	ck_assert_int_eq(pread(fd, back, len, (off_t)off), (ssize_t)len);
	ck_assert_mem_eq(back, blobs[3] + cs, len);
	close(fd);
	cache_close(c);
}
END_TEST

/* A packed file (image format version 2): 4 chunks of 4 KiB, the middle
 * two zeros, stored as a blob of chunks 0 and 3 only. A chunk is fetched
 * at its packed offset; the whole file is fetched packed and expanded,
 * sparse, under the file's digest; bytes that do not expand to it never
 * get that name. */
START_TEST(packed)
{
	struct cache *c = open_cache(0);
	enum { CS = 4096, N = 4 };
	static uint8_t file[N * CS], pkd[2 * CS];
	for (int i = 0; i < CS; i++)
		file[i] = (uint8_t)(i * 7 + 1), file[3 * CS + i] = (uint8_t)(i * 11 + 3);
	memcpy(pkd, file, CS);
	memcpy(pkd + CS, file + 3 * CS, CS);
	uint8_t fd_dig[FETCH_SHA256_LEN], pk[FETCH_SHA256_LEN], c3[FETCH_SHA256_LEN];
	sha(file, sizeof(file), fd_dig);
	sha(pkd, sizeof(pkd), pk);
	sha(file + 3 * CS, CS, c3);
	char p[400], hex[FETCH_SHA256_HEX], err[FETCH_ERR_LEN + 100];
	fetch_sha256_to_hex(pk, hex);
	snprintf(p, sizeof(p), "%s/srv/%s", dir, hex);
	write_file(p, pkd, sizeof(pkd));
	int fd;
	uint64_t off, len;
	static uint8_t back[N * CS];
	ck_assert_msg(cache_get_chunk_from(c, fc, base, fd_dig, sizeof(file), CS, 3, c3, pk, CS, &fd,
					   &off, &len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(pread(fd, back, len, (off_t)off), CS);
	ck_assert_mem_eq(back, file + 3 * CS, CS);
	close(fd);
	/* At the unpacked offset, the bytes are another chunk's: refused. */
	uint8_t c3b[FETCH_SHA256_LEN];
	memcpy(c3b, c3, sizeof(c3b));
	c3b[0] ^= 1;
	ck_assert_int_eq(cache_get_chunk_from(c, fc, base, fd_dig, sizeof(file), CS, 3, c3b, pk, CS,
					      &fd, &off, &len, err, sizeof(err)), -1);
	const bool hole[N] = {false, true, true, false};
	uint8_t wrong[FETCH_SHA256_LEN];
	memcpy(wrong, fd_dig, sizeof(wrong));
	wrong[5] ^= 0x40;
	/* A hole map that does not give the file's digest: not stored. */
	const bool other[N] = {false, false, true, true};
	ck_assert_int_eq(cache_get_packed(c, fc, base, fd_dig, sizeof(file), CS, other, N, pk,
					  sizeof(pkd), &fd, NULL, err, sizeof(err)), -1);
	ck_assert(!cache_has(c, fd_dig, sizeof(file)));
	ck_assert_int_eq(cache_get_packed(c, fc, base, wrong, sizeof(file), CS, hole, N, pk,
					  sizeof(pkd), &fd, NULL, err, sizeof(err)), -1);
	ck_assert(!cache_has(c, wrong, sizeof(file)));
	bool hit = true;
	ck_assert_msg(cache_get_packed(c, fc, base, fd_dig, sizeof(file), CS, hole, N, pk,
				       sizeof(pkd), &fd, &hit, err, sizeof(err)) == 0, "%s", err);
	ck_assert(!hit);
	ck_assert_int_eq(pread(fd, back, sizeof(back), 0), (ssize_t)sizeof(back));
	ck_assert_mem_eq(back, file, sizeof(file));
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, sizeof(file));
	ck_assert_int_le(st.st_blocks * 512, 3 * CS); /* the holes take no disk */
	close(fd);
	ck_assert(cache_has(c, fd_dig, sizeof(file)));
	/* Now cached whole: a hit, and chunks come from it at their own
	 * offset. */
	ck_assert_int_eq(cache_get_packed(c, fc, base, fd_dig, sizeof(file), CS, hole, N, pk,
					  sizeof(pkd), &fd, &hit, err, sizeof(err)), 0);
	ck_assert(hit);
	close(fd);
	ck_assert_int_eq(cache_get_chunk_from(c, fc, base, fd_dig, sizeof(file), CS, 3, c3, pk, CS,
					      &fd, &off, &len, err, sizeof(err)), 0);
	ck_assert_uint_eq(off, 3 * CS);
	close(fd);
	cache_close(c);
}
END_TEST

struct race {
	struct cache *c;
	int failures;
};

static void *racer(void *arg)
{
	struct race *r = arg;
	for (int b = 0; b < NBLOBS; b++) {
		int fd = -1;
		char err[FETCH_ERR_LEN + 100];
		if (cache_get_blob(r->c, fc, base, dig[b], BLOB_SIZE, &fd, NULL, err, sizeof(err)) < 0) {
			__atomic_add_fetch(&r->failures, 1, __ATOMIC_SEQ_CST);
			continue;
		}
		static __thread uint8_t back[BLOB_SIZE];
		if (pread(fd, back, BLOB_SIZE, 0) != BLOB_SIZE || memcmp(back, blobs[b], BLOB_SIZE))
			__atomic_add_fetch(&r->failures, 1, __ATOMIC_SEQ_CST);
		close(fd);
	}
	return NULL;
}

START_TEST(threads_fetch_once)
{
	struct race r = {.c = open_cache(0)};
	pthread_t t[6];
	for (int i = 0; i < 6; i++)
		pthread_create(&t[i], NULL, racer, &r);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(r.failures, 0);
	struct cache_stats s;
	cache_get_stats(r.c, &s);
	ck_assert_uint_eq(s.misses, NBLOBS); /* each blob fetched once */
	ck_assert_uint_eq(s.hits, 5 * NBLOBS);
	struct fetch_stats fs;
	fetch_get_stats(fc, &fs);
	ck_assert_uint_eq(fs.requests[FETCH_KIND_GET], NBLOBS);
	cache_close(r.c);
}
END_TEST

START_TEST(default_dir)
{
	char buf[256];
	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	ck_assert_int_eq(cache_default_dir(buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/x/cache/minivmm");
	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", "/home/u", 1);
	ck_assert_int_eq(cache_default_dir(buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/home/u/.cache/minivmm");
	unsetenv("HOME");
	ck_assert_int_eq(cache_default_dir(buf, sizeof(buf)), -1);
}
END_TEST

static Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *t = tcase_create("file");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, layout_and_hits);
	tcase_add_test(t, bad_bytes_stay_out);
	tcase_add_test(t, unknown_size_hashed_aside);
	tcase_add_test(t, corruption_detected);
	tcase_add_test(t, corruption_seen_by_same_process);
	tcase_add_test(t, size_over_bound_refused);
	tcase_add_test(t, lru_eviction_spares_in_use);
	tcase_add_test(t, bounded_automatically);
	tcase_add_test(t, abandoned_tmp_removed);
	tcase_add_test(t, chunks);
	tcase_add_test(t, packed);
	tcase_add_test(t, threads_fetch_once);
	suite_add_tcase(s, t);
	t = tcase_create("paths");
	tcase_add_test(t, default_dir);
	suite_add_tcase(s, t);
	return s;
}
UNIT_SUITE(cache_suite)
