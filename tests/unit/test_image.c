/* Image internals: content hashing with chunks and holes, the blob store,
 * the bzImage version field, and the initramfs's module resolution. */
#include "tests/unit/unit.h"

#include "image/image.h"
#include "fs/backend.h"
#include "fs/backend_fetch.h"
#include "lib/cli.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

static void sha(const void *p, size_t n, uint8_t out[32])
{
	unsigned len;
	EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/minivmm-unit.XXXXXX";
	char *d = mkdtemp(tmpl);
	ck_assert_ptr_nonnull(d);
	return strdup(d);
}

/* Chunk digests and the whole digest agree with one-shot SHA-256, whether
 * the bytes come in odd pieces or as holes. */
START_TEST(hasher_chunks_and_holes)
{
	const uint64_t chunk = 4096;
	size_t n = 3 * 4096 + 100;
	uint8_t *buf = calloc(1, n);
	for (size_t i = 0; i < 5000; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	/* buf: data [0, 5000), zeros after: feed the zeros as a hole. */
	struct image_hasher *h = image_hasher_new(chunk);
	ck_assert(image_hasher_update(h, buf, 1) == 0);
	ck_assert(image_hasher_update(h, buf + 1, 4999) == 0);
	ck_assert(image_hasher_zeros(h, n - 5000) == 0);
	uint8_t d[32], want[32], (*chunks)[32];
	uint64_t size, data;
	size_t nc;
	image_hasher_finish(h, d, &size, &chunks, &nc, &data);
	sha(buf, n, want);
	ck_assert_uint_eq(size, n);
	ck_assert_uint_eq(data, 5000);
	ck_assert(memcmp(d, want, 32) == 0);
	ck_assert_uint_eq(nc, 4);
	for (size_t i = 0; i < nc; i++) {
		size_t len = i == 3 ? 100 : 4096;
		sha(buf + i * 4096, len, want);
		ck_assert_msg(memcmp(chunks[i], want, 32) == 0, "chunk %zu differs", i);
	}
	free(chunks);
	free(buf);

	/* Whole zero chunks take the shortcut; same digests as real zeros. */
	h = image_hasher_new(1 << 16);
	ck_assert(image_hasher_zeros(h, 3 << 16) == 0);
	image_hasher_finish(h, d, &size, &chunks, &nc, NULL);
	uint8_t *z = calloc(1, 3 << 16);
	sha(z, 3 << 16, want);
	ck_assert(memcmp(d, want, 32) == 0);
	sha(z, 1 << 16, want);
	ck_assert_uint_eq(nc, 3);
	ck_assert(memcmp(chunks[2], want, 32) == 0);
	free(chunks);
	free(z);

	/* A file that fits in one chunk lists no chunks. */
	h = image_hasher_new(chunk);
	image_hasher_update(h, "abc", 3);
	image_hasher_finish(h, d, &size, &chunks, &nc, NULL);
	ck_assert_uint_eq(nc, 0);
	ck_assert_ptr_null(chunks);
}
END_TEST

START_TEST(blob_store_dedup_and_sparse)
{
	char *dir = tmpdir(), path[512];
	snprintf(path, sizeof(path), "%s/sparse", dir);
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert(pwrite(fd, "head", 4, 0) == 4);
	ck_assert(pwrite(fd, "tail", 4, 64 << 20) == 4); /* 64 MiB hole */
	struct manifest_entry e = {0}, e2 = {0};
	uint64_t data;
	char err[256];
	ck_assert_msg(image_blob_from_fd(dir, fd, path, 1 << 20, &e, &data, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(e.size, (64 << 20) + 4);
	ck_assert_uint_eq(e.n_chunks, 65);
	ck_assert_uint_lt(data, 1 << 20); /* the hole was not read as data */
	char blob[600];
	image_blob_path(dir, e.digest, blob, sizeof(blob));
	struct stat st;
	ck_assert_int_eq(stat(blob, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, e.size);
	ck_assert_uint_lt((uint64_t)st.st_blocks * 512, 1 << 20); /* stored sparse */
	/* The same content again: the same blob, nothing new. */
	ck_assert(image_blob_from_fd(dir, fd, path, 1 << 20, &e2, NULL, err, sizeof(err)) == 0);
	ck_assert(memcmp(e.digest, e2.digest, 32) == 0);
	close(fd);
	free(e.chunks);
	free(e2.chunks);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "ls -A %s/blobs/sha256 | wc -l | grep -qx 1 && rm -rf %s", dir, dir);
	ck_assert_msg(system(cmd) == 0, "dedup left more than one blob (or temporaries) in %s", dir);
	free(dir);
}
END_TEST

START_TEST(kernel_version_field)
{
	char *dir = tmpdir(), path[512], ver[64], err[256];
	snprintf(path, sizeof(path), "%s/bz", dir);
	uint8_t img[0x1000] = {0};
	memcpy(img + 0x202, "HdrS", 4);
	img[0x20e] = 0x00, img[0x20f] = 0x02; /* string at 0x200 + 0x200 */
	strcpy((char *)img + 0x400, "6.9.1-test (builder@x) #1 SMP");
	FILE *f = fopen(path, "w");
	fwrite(img, 1, sizeof(img), f);
	fclose(f);
	ck_assert_msg(image_kernel_version(path, ver, sizeof(ver), err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(ver, "6.9.1-test");
	/* No "HdrS": not a bzImage, named. */
	img[0x202] = 'X';
	f = fopen(path, "w");
	fwrite(img, 1, sizeof(img), f);
	fclose(f);
	ck_assert_int_eq(image_kernel_version(path, ver, sizeof(ver), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a bzImage"));
	ck_assert_ptr_nonnull(strstr(err, path));
	/* A version offset pointing at a slash-laden string is refused. */
	img[0x202] = 'H';
	strcpy((char *)img + 0x400, "../../etc");
	f = fopen(path, "w");
	fwrite(img, 1, sizeof(img), f);
	fclose(f);
	ck_assert_int_eq(image_kernel_version(path, ver, sizeof(ver), err, sizeof(err)), -1);
	unlink(path);
	rmdir(dir);
	free(dir);
}
END_TEST

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
	ck_assert(system(cmd) == 0);
	*slash = '/';
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fwrite(data, 1, len, f);
	fclose(f);
}

/* Find name in an uncompressed newc archive; returns the data or NULL. */
static const char *cpio_find(const char *a, size_t len, const char *name, size_t *dlen)
{
	size_t off = 0;
	while (off + 110 <= len && memcmp(a + off, "070701", 6) == 0) {
		char f[9] = {0};
		memcpy(f, a + off + 54, 8);
		size_t fsize = strtoul(f, NULL, 16);
		memcpy(f, a + off + 94, 8);
		size_t nsize = strtoul(f, NULL, 16);
		const char *n = a + off + 110;
		size_t data = (off + 110 + nsize + 3) & ~(size_t)3;
		if (strcmp(n, name) == 0) {
			*dlen = fsize;
			return a + data;
		}
		off = (data + fsize + 3) & ~(size_t)3;
	}
	return NULL;
}

/* modules.dep resolution in a made-up module tree: dependencies first
 * (deepest first), each once, compressed modules unpacked. */
START_TEST(initramfs_modules)
{
	char *dir = tmpdir(), err[512];
	const char *dep =
		"kernel/drivers/virtio/virtio_ring.ko:\n"
		"kernel/drivers/virtio/virtio.ko:\n"
		"kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n"
		"kernel/fs/fuse/fuse.ko:\n"
		"kernel/fs/fuse/virtiofs.ko.zst: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko kernel/fs/fuse/fuse.ko\n";
	write_file(dir, "modules.dep", dep, strlen(dep));
	write_file(dir, "kernel/drivers/virtio/virtio_ring.ko", "RING", 4);
	write_file(dir, "kernel/drivers/virtio/virtio.ko", "VIRTIO", 6);
	write_file(dir, "kernel/drivers/virtio/virtio_mmio.ko", "MMIO", 4);
	write_file(dir, "kernel/fs/fuse/fuse.ko", "FUSE", 4);
	char z[128];
	size_t zl = ZSTD_compress(z, sizeof(z), "VIRTIOFS-PLAIN", 14, 3);
	write_file(dir, "kernel/fs/fuse/virtiofs.ko.zst", z, zl);
	write_file(dir, "busybox", "BB", 2);
	char bb[600];
	snprintf(bb, sizeof(bb), "%s/busybox", dir);

	void *out;
	size_t len;
	ck_assert_msg(image_initramfs_build(dir, true, bb, &out, &len, err, sizeof(err)) == 0, "%s", err);
	unsigned long long plain_len = ZSTD_getFrameContentSize(out, len);
	ck_assert(plain_len != ZSTD_CONTENTSIZE_ERROR && plain_len != ZSTD_CONTENTSIZE_UNKNOWN);
	char *a = malloc(plain_len);
	ck_assert_uint_eq(ZSTD_decompress(a, plain_len, out, len), plain_len);
	size_t dl;
	const char *order = cpio_find(a, plain_len, "lib/modules/load-order", &dl);
	ck_assert_ptr_nonnull(order);
	ck_assert_int_eq((int)dl, (int)strlen("00-virtio_ring.ko\n01-virtio.ko\n02-virtio_mmio.ko\n"
					      "03-fuse.ko\n04-virtiofs.ko\n"));
	ck_assert(memcmp(order, "00-virtio_ring.ko\n01-virtio.ko\n02-virtio_mmio.ko\n03-fuse.ko\n"
			 "04-virtiofs.ko\n", dl) == 0);
	const char *vfs = cpio_find(a, plain_len, "lib/modules/04-virtiofs.ko", &dl);
	ck_assert_ptr_nonnull(vfs);
	ck_assert(dl == 14 && memcmp(vfs, "VIRTIOFS-PLAIN", 14) == 0);
	const char *init = cpio_find(a, plain_len, "init", &dl);
	ck_assert_ptr_nonnull(init);
	ck_assert_ptr_nonnull(memmem(init, dl, "mount -t virtiofs minivmm-root /newroot", 39));
	ck_assert_ptr_nonnull(memmem(init, dl, "echo MINIVMM-INIT", 17));
	ck_assert_ptr_nonnull(cpio_find(a, plain_len, "dev/console", &dl));
	free(a);
	free(out);

	/* Full mode needs virtio_blk and ext4, absent here: refused, named. */
	ck_assert_int_eq(image_initramfs_build(dir, false, bb, &out, &len, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "virtio_blk"));
	ck_assert_ptr_nonnull(strstr(err, "modules.dep"));
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert(system(cmd) == 0);
	free(dir);
}
END_TEST


/* A local manifest file naming an absolute blobs URL (the copy `run
 * --image-url` saves) is checked where it is opened: another origin only
 * if allowed, which run does for the image's own. */
START_TEST(local_manifest_blobs_checked)
{
	char dir[] = "/tmp/minivmm-img-XXXXXX", mpath[200], cdir[200], err[700];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(mpath, sizeof(mpath), "%s/manifest.json", dir);
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	struct manifest m = {.version = MANIFEST_VERSION, .chunk_size = MANIFEST_DEFAULT_CHUNK};
	m.blobs_url = strdup("http://127.0.0.1:9/img/blobs/sha256/");
	m.entries = calloc(1, sizeof(*m.entries));
	m.entries[0] = (struct manifest_entry){.path = strdup(""), .type = MF_DIR, .mode = 0755};
	m.n_entries = 1;
	ck_assert_msg(manifest_write_file(&m, mpath, false, err, sizeof(err)) == 0, "%s", err);
	struct config cfg = {0};
	config_add(&cfg, "cache-dir", cdir);
	ck_assert_ptr_null(fs_backend_fetch_open_local(mpath, &m, &cfg, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "outside the image's origin"));
	config_add(&cfg, "allow-blob-origin", "http://127.0.0.1:9/");
	void *b = fs_backend_fetch_open_local(mpath, &m, &cfg, err, sizeof(err));
	ck_assert_msg(b != NULL, "%s", err);
	fs_backend_fetch.destroy(b);
	/* Local files are the user's own: allowed in a local manifest. */
	free(m.blobs_url);
	m.blobs_url = strdup("file:///nonexistent/blobs/");
	b = fs_backend_fetch_open_local(mpath, &m, &cfg, err, sizeof(err));
	ck_assert_msg(b != NULL, "%s", err);
	fs_backend_fetch.destroy(b);
	config_free(&cfg);
	manifest_free(&m);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *image_suite(void)
{
	Suite *s = suite_create("image");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, hasher_chunks_and_holes);
	tcase_add_test(tc, local_manifest_blobs_checked);
	tcase_add_test(tc, blob_store_dedup_and_sparse);
	tcase_add_test(tc, kernel_version_field);
	tcase_add_test(tc, initramfs_modules);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(image_suite)
