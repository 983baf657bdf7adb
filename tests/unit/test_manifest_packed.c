/* Packed files (image format version 2): the "blob" key, accepted and
 * refused; the hole and offset mapping; a packed blob written from a
 * sparse file, expanded back, and verified (and a damaged one refused). */
#include "tests/unit/unit.h"

#include "image/image.h"
#include "image/manifest.h"
#include "lib/rmtree.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CS 4096

static void sha(const void *p, size_t n, uint8_t out[MANIFEST_DIGEST_LEN])
{
	unsigned l;
	EVP_Digest(p, n, out, &l, EVP_sha256(), NULL);
}

/* A file of 6 chunks: data, hole, hole, data, hole (a full last chunk of
 * zeros counts), as content; its entry in m. */
enum { N_CHUNKS = 5, FILE_SIZE = N_CHUNKS * CS };
static uint8_t content[FILE_SIZE];
static const bool is_hole[N_CHUNKS] = {false, true, true, false, true};

static void fill_content(void)
{
	memset(content, 0, sizeof(content));
	for (int i = 0; i < CS; i++) {
		content[i] = (uint8_t)(i % 251 + 1);
		content[3 * CS + i] = (uint8_t)(i % 241 + 2);
	}
}

static void packed_manifest(struct manifest *m)
{
	memset(m, 0, sizeof(*m));
	fill_content();
	m->version = MANIFEST_VERSION;
	m->chunk_size = CS;
	m->blobs_url = strdup(MANIFEST_DEFAULT_BLOBS);
	m->entries = calloc(2, sizeof(*m->entries));
	m->n_entries = 2;
	m->entries[0].path = strdup("");
	m->entries[0].type = MF_DIR;
	struct manifest_entry *e = &m->entries[1];
	e->path = strdup("f");
	e->type = MF_REG;
	e->size = FILE_SIZE;
	e->has_digest = true;
	sha(content, FILE_SIZE, e->digest);
	e->n_chunks = N_CHUNKS;
	e->chunks = calloc(N_CHUNKS, MANIFEST_DIGEST_LEN);
	uint8_t packed[2 * CS];
	for (int i = 0; i < N_CHUNKS; i++)
		sha(content + i * CS, CS, e->chunks[i]);
	memcpy(packed, content, CS);
	memcpy(packed + CS, content + 3 * CS, CS);
	sha(packed, sizeof(packed), e->blob);
	e->packed = true;
	m->total_bytes = FILE_SIZE;
}

START_TEST(hole_mapping)
{
	struct manifest m;
	packed_manifest(&m);
	const struct manifest_entry *e = &m.entries[1];
	for (size_t i = 0; i < N_CHUNKS; i++)
		ck_assert_int_eq(manifest_chunk_hole(e, CS, i), is_hole[i]);
	ck_assert(!manifest_chunk_hole(e, CS, N_CHUNKS)); /* out of range */
	ck_assert_uint_eq(manifest_hole_count(e, CS), 3);
	/* Chunk i at (i - holes before i) * chunk_size of the packed blob. */
	ck_assert_uint_eq(manifest_chunk_offset(e, CS, 0), 0);
	ck_assert_uint_eq(manifest_chunk_offset(e, CS, 3), CS);
	ck_assert_uint_eq(manifest_blob_size(e, CS), 2 * CS);
	ck_assert(manifest_blob_name(e) == e->blob);
	/* Unpacked, the same chunks are at their own offsets. */
	struct manifest_entry u = *e;
	u.packed = false;
	ck_assert_uint_eq(manifest_chunk_offset(&u, CS, 3), 3 * CS);
	ck_assert_uint_eq(manifest_blob_size(&u, CS), FILE_SIZE);
	ck_assert(manifest_blob_name(&u) == u.digest);
	/* A short last chunk of zeros is no hole: its digest is not the
	 * digest of a whole chunk of zeros. */
	u.size = FILE_SIZE - 1;
	sha(content + 4 * CS, CS - 1, u.chunks[4]);
	ck_assert(!manifest_chunk_hole(&u, CS, 4));
	/* The zero digest is the SHA-256 of chunk_size zeros. */
	static const uint8_t z[CS];
	uint8_t want[MANIFEST_DIGEST_LEN];
	sha(z, CS, want);
	ck_assert_mem_eq(manifest_zero_chunk(CS), want, MANIFEST_DIGEST_LEN);
	ck_assert_ptr_null(manifest_zero_chunk(CS + 1));
	manifest_free(&m);
}
END_TEST

/* Write m, apply one edit to the JSON, parse: refused naming want (want
 * NULL: accepted). */
static void edited(struct manifest *m, const char *from, const char *to, const char *want)
{
	char err[512];
	void *buf;
	size_t len;
	ck_assert_msg(manifest_write(m, false, &buf, &len, err, sizeof(err)) == 0, "%s", err);
	char *s = buf, *at = strstr(s, from);
	ck_assert_msg(at != NULL, "no %s in %s", from, s);
	size_t fl = strlen(from), tl = strlen(to);
	char *t = malloc(len - fl + tl + 1);
	memcpy(t, s, (size_t)(at - s));
	memcpy(t + (at - s), to, tl);
	strcpy(t + (at - s) + tl, at + fl);
	struct manifest back;
	int rc = manifest_parse(t, strlen(t), &back, err, sizeof(err));
	if (want) {
		ck_assert_msg(rc == -1, "edit %s -> %s was accepted", from, to);
		ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
	} else {
		ck_assert_msg(rc == 0, "edit %s -> %s: %s", from, to, err);
		manifest_free(&back);
	}
	free(t);
	free(buf);
}

START_TEST(blob_key)
{
	struct manifest m, back;
	char err[512], hex[65];
	void *buf;
	size_t len;
	packed_manifest(&m);
	/* Written as version 2 with the key, read back the same. */
	ck_assert_msg(manifest_write(&m, true, &buf, &len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(manifest_parse(buf, len, &back, err, sizeof(err)) == 0, "%s", err);
	free(buf);
	ck_assert_int_eq(back.version, 2);
	ck_assert(back.entries[1].packed);
	ck_assert_mem_eq(back.entries[1].blob, m.entries[1].blob, MANIFEST_DIGEST_LEN);
	manifest_free(&back);
	manifest_digest_hex(m.entries[1].blob, hex);
	char key[100];
	snprintf(key, sizeof(key), "\"blob\":\"%s\"", hex);
	/* The key needs version 2: in a version 1 manifest it is unknown. */
	edited(&m, "\"version\":2", "\"version\":1", "unknown key \"blob\"");
	edited(&m, key, "\"blob\":\"00\"", "64 lowercase hex");
	edited(&m, key, "\"blob\":7", "64 lowercase hex");
	/* Not on a file that is not chunked, nor on a directory. */
	edited(&m, "\"type\":\"dir\"", "\"type\":\"dir\",\"blob\":\"" "0000000000000000000000000000000000000000000000000000000000000000" "\"",
	       "not a chunked regular file");
	/* Not where nothing is left out: a packed form only where it
	 * differs from the content. */
	char nohole[100];
	manifest_digest_hex(m.entries[1].chunks[0], hex);
	snprintf(nohole, sizeof(nohole), "\"%s\"]", hex);
	char zh[65], last[100];
	manifest_digest_hex(manifest_zero_chunk(CS), zh);
	snprintf(last, sizeof(last), "\"%s\"]", zh);
	edited(&m, last, nohole, NULL); /* still two holes: fine */
	manifest_free(&m);

	/* A manifest without packed entries stays version 1. */
	packed_manifest(&m);
	for (int i = 0; i < N_CHUNKS; i++)
		memset(m.entries[1].chunks[i], 0x11 * (i + 1), MANIFEST_DIGEST_LEN);
	m.entries[1].packed = false;
	ck_assert_msg(manifest_write(&m, false, &buf, &len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_nonnull(strstr(buf, "\"version\":1"));
	ck_assert_ptr_null(strstr(buf, "\"blob\""));
	free(buf);
	/* ... and "blob" on an entry with no hole is refused. */
	m.entries[1].packed = true;
	ck_assert_int_eq(manifest_write(&m, false, &buf, &len, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "no hole chunk"));
	manifest_free(&m);
}
END_TEST

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/minivmm-packed.XXXXXX";
	char *d = mkdtemp(tmpl);
	ck_assert_ptr_nonnull(d);
	return strdup(d);
}

/* A sparse file written packed, expanded back byte for byte, verified;
 * then its blob damaged and truncated: refused. */
START_TEST(write_expand_verify)
{
	fill_content();
	char *dir = tmpdir(), path[600], err[1200];
	snprintf(path, sizeof(path), "%s/src", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, content, CS, 0), CS);
	ck_assert_int_eq(pwrite(fd, content + 3 * CS, CS, 3 * CS), CS);
	ck_assert_int_eq(ftruncate(fd, FILE_SIZE), 0);
	struct manifest m;
	packed_manifest(&m);
	struct manifest_entry *e = &m.entries[1], got = {0};
	ck_assert_msg(image_blob_from_fd_packed(dir, fd, path, CS, &got, NULL, err, sizeof(err)) == 0,
		      "%s", err);
	close(fd);
	ck_assert(got.packed);
	ck_assert_mem_eq(got.digest, e->digest, MANIFEST_DIGEST_LEN);
	ck_assert_mem_eq(got.blob, e->blob, MANIFEST_DIGEST_LEN);
	ck_assert_uint_eq(got.n_chunks, N_CHUNKS);
	ck_assert_mem_eq(got.chunks, e->chunks, N_CHUNKS * MANIFEST_DIGEST_LEN);
	free(got.chunks);
	char blob[700];
	image_blob_path(dir, e->blob, blob, sizeof(blob));
	struct stat st;
	ck_assert_int_eq(stat(blob, &st), 0);
	ck_assert_int_eq(st.st_size, 2 * CS); /* the two data chunks only */
	/* Unpacked (image_blob_from_fd, for kernels and disks): as it is. */
	fd = open(path, O_RDONLY);
	struct manifest_entry plain = {0};
	ck_assert(image_blob_from_fd(dir, fd, path, CS, &plain, NULL, err, sizeof(err)) == 0);
	close(fd);
	ck_assert(!plain.packed);
	free(plain.chunks);

	/* Expanded: the file again, holes as holes. */
	char out[700];
	snprintf(out, sizeof(out), "%s/out", dir);
	int in = open(blob, O_RDONLY), o = open(out, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_eq(image_blob_expand(in, o, e, CS), 0);
	static uint8_t back[FILE_SIZE + 1];
	ck_assert_int_eq(pread(o, back, sizeof(back), 0), FILE_SIZE);
	ck_assert_mem_eq(back, content, FILE_SIZE);
	close(o);

	/* Verified through the image source, as `image verify DIR` does. */
	struct image_src *s = image_src_open(dir, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_msg(image_src_check_packed(s, &m, e, err, sizeof(err)) == 0, "%s", err);
	/* A chunk digest that does not match the bytes. */
	e->chunks[3][0] ^= 1;
	ck_assert_int_eq(image_src_check_packed(s, &m, e, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "chunk"));
	e->chunks[3][0] ^= 1;
	/* One byte changed: not its name. */
	int w = open(blob, O_WRONLY);
	ck_assert_int_eq(pwrite(w, "X", 1, 5), 1);
	ck_assert_int_eq(image_src_check_packed(s, &m, e, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "does not match its name"));
	/* Cut short. */
	ck_assert_int_eq(ftruncate(w, CS), 0);
	close(w);
	ck_assert_int_eq(image_src_check_packed(s, &m, e, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "truncated"));
	/* Gone. */
	unlink(blob);
	ck_assert_int_eq(image_src_check_packed(s, &m, e, err, sizeof(err)), 1);
	close(in);
	image_src_close(s);
	manifest_free(&m);
	rmtree(dir);
	free(dir);
}
END_TEST

/* A file of one chunk or less is never packed, even all zeros; a chunked
 * file of zeros only packs to the empty blob. */
START_TEST(edge_sizes)
{
	char *dir = tmpdir(), err[600];
	struct image_blob_writer *w = image_blob_begin_packed(dir, CS, err, sizeof(err));
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(image_blob_hole(w, CS), 0);
	struct manifest_entry e = {0};
	ck_assert_msg(image_blob_commit(w, &e, NULL, err, sizeof(err)) == 0, "%s", err);
	ck_assert(!e.packed);
	ck_assert_uint_eq(e.size, CS);
	char blob[700];
	struct stat st;
	image_blob_path(dir, e.digest, blob, sizeof(blob));
	ck_assert_int_eq(stat(blob, &st), 0);
	ck_assert_int_eq(st.st_size, CS);

	static const uint8_t z[CS];
	w = image_blob_begin_packed(dir, CS, err, sizeof(err));
	ck_assert_int_eq(image_blob_write(w, z, CS), 0); /* zeros written as data */
	ck_assert_int_eq(image_blob_hole(w, 3 * CS), 0);
	memset(&e, 0, sizeof(e));
	ck_assert_msg(image_blob_commit(w, &e, NULL, err, sizeof(err)) == 0, "%s", err);
	ck_assert(e.packed);
	ck_assert_uint_eq(e.n_chunks, 4);
	uint8_t empty[MANIFEST_DIGEST_LEN];
	sha("", 0, empty);
	ck_assert_mem_eq(e.blob, empty, MANIFEST_DIGEST_LEN);
	image_blob_path(dir, e.blob, blob, sizeof(blob));
	ck_assert_int_eq(stat(blob, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	free(e.chunks);
	rmtree(dir);
	free(dir);
}
END_TEST

static Suite *manifest_packed_suite(void)
{
	Suite *s = suite_create("manifest_packed");
	TCase *tc = tcase_create("packed");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, hole_mapping);
	tcase_add_test(tc, blob_key);
	tcase_add_test(tc, write_expand_verify);
	tcase_add_test(tc, edge_sizes);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(manifest_packed_suite)
