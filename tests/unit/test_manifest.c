/* The manifest: round trips, strict refusals, lookup, and parse speed. */
#include "tests/unit/unit.h"

#include "image/manifest.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

static void sha(const char *s, uint8_t out[MANIFEST_DIGEST_LEN])
{
	unsigned n;
	EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL);
}

static struct manifest_entry *add(struct manifest *m, const char *path, enum manifest_type t)
{
	m->entries = realloc(m->entries, (m->n_entries + 1) * sizeof(*m->entries));
	struct manifest_entry *e = &m->entries[m->n_entries++];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	e->type = t;
	e->mode = t == MF_DIR ? 0755 : 0644;
	e->mtime_sec = 1704067200;
	return e;
}

static void add_reg(struct manifest *m, const char *path, uint64_t size)
{
	struct manifest_entry *e = add(m, path, MF_REG);
	e->size = size;
	e->has_digest = true;
	sha(path, e->digest);
	e->n_chunks = manifest_chunk_count(size, m->chunk_size);
	if (e->n_chunks) {
		e->chunks = calloc(e->n_chunks, MANIFEST_DIGEST_LEN);
		for (size_t i = 0; i < e->n_chunks; i++)
			e->chunks[i][0] = (uint8_t)i;
	}
	m->total_bytes += size;
}

/* A small manifest with one of everything, including names that are not
 * UTF-8 and names with newlines. */
static void sample(struct manifest *m)
{
	memset(m, 0, sizeof(*m));
	m->version = MANIFEST_VERSION;
	m->name = strdup("sample");
	m->chunk_size = 4096;
	m->blobs_url = strdup(MANIFEST_DEFAULT_BLOBS);
	m->cmdline = strdup("console=ttyS0");
	m->kernel.present = true;
	sha("kernel", m->kernel.digest);
	m->kernel.size = 123;
	add(m, "", MF_DIR);
	add(m, "bin", MF_DIR);
	add_reg(m, "bin/big", 3 * 4096 + 1);
	struct manifest_entry *l = add(m, "bin/link", MF_HARDLINK);
	l->target = strdup("bin/big");
	struct manifest_entry *s = add(m, "bin/sh", MF_SYMLINK);
	s->target = strdup("/outside/the/image");
	s->size = strlen(s->target);
	s->mode = 0777;
	add(m, "dev", MF_DIR);
	add(m, "dev/null", MF_CHR)->rdev = 0x103;
	add(m, "dev/pipe", MF_FIFO);
	add_reg(m, "empty", 0);
	add_reg(m, "new\nline", 5);
	add_reg(m, "non-utf8-\xff\xfe", 7);
	struct manifest_entry *x = add(m, "z", MF_DIR);
	x->n_xattrs = 1;
	x->xattrs = calloc(1, sizeof(*x->xattrs));
	x->xattrs[0].name = strdup("user.test");
	x->xattrs[0].value = (uint8_t *)strdup("v\001");
	x->xattrs[0].len = 2;
	m->boot_files = calloc(1, sizeof(char *));
	m->boot_files[0] = strdup("non-utf8-\xff\xfe");
	m->n_boot_files = 1;
}

START_TEST(roundtrip)
{
	for (int compress = 0; compress < 2; compress++) {
		struct manifest m, back;
		char err[512];
		sample(&m);
		void *buf;
		size_t len;
		ck_assert_msg(manifest_write(&m, compress, &buf, &len, err, sizeof(err)) == 0, "%s", err);
		ck_assert_msg(manifest_parse(buf, len, &back, err, sizeof(err)) == 0, "%s", err);
		ck_assert_uint_eq(back.n_entries, m.n_entries);
		for (size_t i = 0; i < m.n_entries; i++) {
			ck_assert_str_eq(back.entries[i].path, m.entries[i].path);
			ck_assert_int_eq(back.entries[i].type, m.entries[i].type);
			ck_assert_uint_eq(back.entries[i].size, m.entries[i].size);
			ck_assert_uint_eq(back.entries[i].n_chunks, m.entries[i].n_chunks);
			ck_assert_uint_eq(back.entries[i].rdev, m.entries[i].rdev);
		}
		const struct manifest_entry *e = manifest_lookup(&back, "non-utf8-\xff\xfe");
		ck_assert_ptr_nonnull(e);
		ck_assert(memcmp(e->digest, m.entries[10].digest, MANIFEST_DIGEST_LEN) == 0);
		ck_assert_ptr_nonnull(manifest_lookup(&back, "new\nline"));
		ck_assert_str_eq(manifest_lookup(&back, "bin/sh")->target, "/outside/the/image");
		ck_assert_str_eq(manifest_lookup(&back, "bin/link")->target, "bin/big");
		ck_assert_uint_eq(manifest_lookup(&back, "z")->xattrs[0].len, 2);
		ck_assert_str_eq(back.boot_files[0], "non-utf8-\xff\xfe");
		ck_assert(back.kernel.present && back.kernel.size == 123);
		/* Deterministic: written again, the same bytes. */
		void *buf2;
		size_t len2;
		ck_assert(manifest_write(&back, compress, &buf2, &len2, err, sizeof(err)) == 0);
		ck_assert_uint_eq(len, len2);
		ck_assert(memcmp(buf, buf2, len) == 0);
		if (!compress) {
			/* base64 of "non-utf8-\xff\xfe" */
			ck_assert_ptr_nonnull(strstr(buf, "\"path_b64\":\"bm9uLXV0Zjgt//4=\""));
			ck_assert_ptr_nonnull(strstr(buf, "\"path\":\"new\\nline\""));
		}
		free(buf);
		free(buf2);
		manifest_free(&m);
		manifest_free(&back);
	}
}
END_TEST

/* The tree digest: the entries alone decide it, and it survives a round
 * trip under disk.tree. */
START_TEST(tree_digest)
{
	struct manifest m, back;
	char err[512];
	uint8_t a[MANIFEST_DIGEST_LEN], b[MANIFEST_DIGEST_LEN];
	sample(&m);
	ck_assert_int_eq(manifest_tree_digest(&m, a), 0);
	free(m.cmdline);
	m.cmdline = strdup("other command line"); /* not the tree */
	ck_assert_int_eq(manifest_tree_digest(&m, b), 0);
	ck_assert(memcmp(a, b, sizeof(a)) == 0);
	m.entries[2].mtime_sec++; /* the tree */
	ck_assert_int_eq(manifest_tree_digest(&m, b), 0);
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	m.disk.present = true;
	m.disk.size = 4096;
	sha("disk", m.disk.digest);
	m.disk_tree_present = true;
	memcpy(m.disk_tree, a, sizeof(a));
	void *buf;
	size_t len;
	ck_assert_msg(manifest_write(&m, false, &buf, &len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(manifest_parse(buf, len, &back, err, sizeof(err)) == 0, "%s", err);
	ck_assert(back.disk_tree_present && memcmp(back.disk_tree, a, sizeof(a)) == 0);
	free(buf);
	manifest_free(&m);
	manifest_free(&back);
}
END_TEST

START_TEST(lookup)
{
	struct manifest m;
	sample(&m);
	ck_assert_int_eq(manifest_index(&m, ""), 0);
	ck_assert_int_eq(manifest_index(&m, "bin/big"), 2);
	ck_assert_int_eq(manifest_index(&m, "z"), (long)m.n_entries - 1);
	ck_assert_int_eq(manifest_index(&m, "bin/bi"), -1);
	ck_assert_int_eq(manifest_index(&m, "zz"), -1);
	ck_assert_ptr_null(manifest_lookup(&m, "/bin"));
	manifest_free(&m);
}
END_TEST

/* Write the sample, apply an edit to the JSON text, parse: must fail with
 * a message containing want. */
static void refused(const char *from, const char *to, const char *want)
{
	struct manifest m, back;
	char err[512];
	void *buf;
	size_t len;
	sample(&m);
	ck_assert(manifest_write(&m, false, &buf, &len, err, sizeof(err)) == 0);
	manifest_free(&m);
	char *s = buf, *at = strstr(s, from);
	ck_assert_msg(at != NULL, "sample lacks %s", from);
	size_t fl = strlen(from), tl = strlen(to);
	char *edited = malloc(len - fl + tl + 1);
	memcpy(edited, s, (size_t)(at - s));
	memcpy(edited + (at - s), to, tl);
	strcpy(edited + (at - s) + tl, at + fl);
	int rc = manifest_parse(edited, strlen(edited), &back, err, sizeof(err));
	ck_assert_msg(rc == -1, "edit %s -> %s was accepted", from, to);
	ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
	ck_assert_uint_eq(back.n_entries, 0);
	free(buf);
	free(edited);
}

START_TEST(refusals)
{
	refused("\"version\":1", "\"version\":3", "unsupported manifest version 3");
	refused("\"path\":\"bin/sh\"", "\"path\":\"bin/../sh\"", "'..' component");
	refused("\"path\":\"bin/sh\"", "\"path\":\"/bin/sh\"", "absolute");
	refused("\"path\":\"bin/sh\"", "\"path\":\"bin//sh\"", "empty component");
	refused("\"path\":\"bin/sh\"", "\"path\":\"bin/big\"", "not sorted and unique");
	refused("\"path\":\"bin/sh\"", "\"path\":\"bin/a\"", "not sorted");
	refused("\"path\":\"dev/null\"", "\"path\":\"dex/null\"", "parent directory is missing");
	refused("\"type\":\"fifo\"", "\"type\":\"door\"", "\"type\"");
	refused("\"mode\":420", "\"mode\":4096", "\"mode\"");
	refused("\"mode\":420", "\"mode\":-1", "\"mode\"");
	refused("\"mode\":420", "\"mode\":\"420\"", "\"mode\"");
	refused("\"target\":\"bin/big\"", "\"target\":\"bin/nope\"", "hard link target is missing");
	refused("\"total_bytes\":", "\"total_bytes\":1", "total_bytes");
	refused("\"chunk_size\":4096", "\"chunk_size\":4097", "chunk_size");
	refused("\"cmdline\"", "\"cmdline2\"", "unknown key");
	refused("\"name\":\"sample\"", "\"name\":\"sample\",\"name\":\"x\"", "JSON");
	refused("\"blobs\":\"blobs/sha256/\"", "\"blobs\":\"../other/\"", "blobs");
	refused("\"blobs\":\"blobs/sha256/\"", "\"blobs\":\"/etc/\"", "blobs");
	refused("\"entries\":[", "\"entries\":[{\"path\":\"\",\"type\":\"reg\",\"mode\":1,\"uid\":0,"
		"\"gid\":0,\"mtime\":0,\"size\":0,\"digest\":\"00\"},", "64 lowercase hex");
	refused("\"path_b64\":\"", "\"path_b64\":\"!", "base64");
	refused("\"chunks\":[\"", "\"chunks\":[\"00\",\"", "chunk");
}
END_TEST


/* text compressed with zstd, parsed: must fail naming want. */
static void refused_zst(const char *text, size_t len, const char *want)
{
	struct manifest m;
	char err[512];
	size_t cap = ZSTD_compressBound(len);
	void *z = malloc(cap);
	size_t zl = ZSTD_compress(z, cap, text, len, 3);
	ck_assert(!ZSTD_isError(zl));
	ck_assert_int_eq(manifest_parse(z, zl, &m, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
	/* Plain, the same limits hold. */
	ck_assert_int_eq(manifest_parse(text, len, &m, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
	free(z);
}

/* Decompression bombs: the work is bounded before jansson runs. */
START_TEST(bombs)
{
	/* More arrays than a manifest can hold (the 8.7 KB bomb of the
	 * issue is 33 M of them: tests/host/43-manifest-bombs.sh). */
	size_t n = MANIFEST_MAX_CONTAINERS + 1;
	char *t = malloc(3 * n + 2);
	t[0] = '[';
	for (size_t i = 0; i < n; i++)
		memcpy(t + 1 + 3 * i, i + 1 < n ? "[]," : "[]]", 3);
	refused_zst(t, 3 * n + 1, "JSON objects and arrays");
	/* Too many values. */
	n = MANIFEST_MAX_ELEMENTS + 2;
	t = realloc(t, 2 * n + 2);
	t[0] = '[';
	for (size_t i = 0; i < n; i++)
		memcpy(t + 1 + 2 * i, i + 1 < n ? "0," : "0]", 2);
	refused_zst(t, 2 * n + 1, "JSON values");
	/* Too deep, even in a tiny document; strings do not count. */
	refused_zst("[[[[[[[[[]]]]]]]]]", 18, "nested deeper");
	struct manifest m;
	char err[256];
	ck_assert_int_eq(manifest_parse("[\"[[[[[[[[[[[[\"]", 16, &m, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a JSON object"));
	free(t);
}
END_TEST

START_TEST(boot_files_bounded)
{
	refused("\"files\":[", "\"files\":[\"empty\",\"empty\",", "listed more than once");
	/* A path repeated past the bound: refused before anything is kept. */
	size_t n = MANIFEST_MAX_BOOT_FILES + 1;
	char *many = malloc(n * 8 + 16);
	strcpy(many, "\"files\":[");
	for (size_t i = 0; i < n; i++)
		memcpy(many + 9 + 8 * i, "\"empty\",", 9);
	refused("\"files\":[", many, "more than 4096");
	free(many);
}
END_TEST

START_TEST(tampered_digests)
{
	struct manifest m, back;
	char err[512];
	void *buf;
	size_t len;
	sample(&m);
	ck_assert(manifest_write(&m, false, &buf, &len, err, sizeof(err)) == 0);
	manifest_free(&m);
	char *d = strstr(buf, "\"digest\":\"");
	ck_assert_ptr_nonnull(d);
	d += 10;
	d[5] = 'G'; /* not hex */
	ck_assert_int_eq(manifest_parse(buf, len, &back, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "hex"));
	d[5] = 'A'; /* upper case: refused, one spelling per digest */
	ck_assert_int_eq(manifest_parse(buf, len, &back, err, sizeof(err)), -1);
	free(buf);
}
END_TEST

START_TEST(truncated)
{
	for (int compress = 0; compress < 2; compress++) {
		struct manifest m, back;
		char err[512];
		void *buf;
		size_t len;
		sample(&m);
		ck_assert(manifest_write(&m, compress, &buf, &len, err, sizeof(err)) == 0);
		manifest_free(&m);
		/* Every cut of the manifest is refused (not just most). */
		for (size_t cut = 0; cut < len; cut += compress ? 1 : 7) {
			int rc = manifest_parse(buf, cut, &back, err, sizeof(err));
			ck_assert_msg(rc == -1, "a manifest cut at %zu of %zu was accepted", cut, len);
			ck_assert(err[0] != '\0');
		}
		free(buf);
	}
}
END_TEST

START_TEST(paths)
{
	char err[128];
	ck_assert_int_eq(manifest_check_path("", err, sizeof(err)), 0);
	ck_assert_int_eq(manifest_check_path("a/b.c/..d", err, sizeof(err)), 0);
	ck_assert_int_eq(manifest_check_path("a/./b", err, sizeof(err)), -1);
	ck_assert_int_eq(manifest_check_path("a/", err, sizeof(err)), -1);
	char longname[300];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(manifest_check_path(longname, err, sizeof(err)), -1);
	ck_assert_uint_eq(manifest_chunk_count(4096, 4096), 0);
	ck_assert_uint_eq(manifest_chunk_count(4097, 4096), 2);
	ck_assert_uint_eq(manifest_chunk_count(5ULL << 30, 1 << 20), 5120);
}
END_TEST

/* CPU time of this thread: the figure does not depend on how many other
 * jobs share the machine's cores. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 100,000 files in 1,000 directories parse and are all there; the CPU
 * time is printed, not asserted (a loaded machine is not a bug). Under
 * AddressSanitizer (make asan) a tenth of the files. */
#ifdef __SANITIZE_ADDRESS__
#define PARSE_DIRS 100
#else
#define PARSE_DIRS 1000
#endif
START_TEST(parse_100k)
{
	struct manifest m = {0}, back;
	char err[512], path[64];
	m.version = MANIFEST_VERSION;
	m.chunk_size = MANIFEST_DEFAULT_CHUNK;
	m.blobs_url = strdup(MANIFEST_DEFAULT_BLOBS);
	add(&m, "", MF_DIR);
	for (int d = 0; d < PARSE_DIRS; d++) {
		snprintf(path, sizeof(path), "d%04d", d);
		add(&m, path, MF_DIR);
		for (int f = 0; f < 100; f++) {
			snprintf(path, sizeof(path), "d%04d/file%03d", d, f);
			add_reg(&m, path, (uint64_t)(d * 100 + f));
		}
	}
	void *buf;
	size_t len;
	ck_assert(manifest_write(&m, false, &buf, &len, err, sizeof(err)) == 0);
	double t0 = now();
	ck_assert_msg(manifest_parse(buf, len, &back, err, sizeof(err)) == 0, "%s", err);
	double t = now() - t0;
	ck_assert_uint_eq(back.n_entries, 1 + PARSE_DIRS * 101);
	ck_assert_ptr_nonnull(manifest_lookup(&back, PARSE_DIRS == 1000 ? "d0999/file099" : "d0099/file099"));
	fprintf(stderr, "manifest: %d entries, %zu bytes of JSON, parsed in %.3f s of CPU\n",
		1 + PARSE_DIRS * 101, len, t);
	free(buf);
	manifest_free(&m);
	manifest_free(&back);
}
END_TEST

static Suite *manifest_suite(void)
{
	Suite *s = suite_create("manifest");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, roundtrip);
	tcase_add_test(tc, tree_digest);
	tcase_add_test(tc, lookup);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, bombs);
	tcase_add_test(tc, boot_files_bounded);
	tcase_add_test(tc, tampered_digests);
	tcase_add_test(tc, truncated);
	tcase_add_test(tc, paths);
	suite_add_tcase(s, tc);
	/* Its own case: a timeout guards against a hang, not speed (the
	 * figure printed is for people); under ASan on a machine that also
	 * runs the nested sandbox, 30 s was seen to run out. */
	TCase *big = tcase_create("large");
	tcase_set_timeout(big, 600);
	tcase_add_test(big, parse_100k);
	suite_add_tcase(s, big);
	return s;
}
UNIT_SUITE(manifest_suite)
