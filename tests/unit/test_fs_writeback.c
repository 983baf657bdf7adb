/* The fetch backend (blobs through the cache, file:// URLs) and
 * write-back: stage the merged tree, push blobs then the manifest, boot
 * the new image and find the changes. */
#include "tests/unit/unit.h"
#include "tests/unit/test_fuse_harness.h"

#include "fs/backend_fetch.h"
#include "fs/fs_priv.h" /* to make a tree the server itself refuses */
#include "fs/writeback.h"
#include "image/image.h"
#include "lib/cli.h"

static struct tf T;
static char img[400], mpath[450];
static struct manifest *M;

/* An image in img/: manifest.json and blobs/sha256/, from lower/. */
static void build_image(void)
{
	tf_write_image(&T, img, mpath);
}

static void start_from_image(void)
{
	char err[512] = "";
	M = calloc(1, sizeof(*M));
	ck_assert_msg(manifest_load_file(mpath, M, err, sizeof(err)) == 0, "%s", err);
	struct config cfg = {0};
	void *b = fs_backend_fetch_open_local(mpath, M, &cfg, err, sizeof(err));
	ck_assert_msg(b != NULL, "%s", err);
	T.mf = M;
	tf_start(&T, &fs_backend_fetch, b);
}

static void stop_image(void)
{
	fs_destroy(T.fs);
	T.fs = NULL;
	manifest_free(M);
	free(M);
	T.mf = NULL;
}

static void setup(void)
{
	tf_setup_dirs(&T);
	char p[400];
	snprintf(p, sizeof(p), "%s/cache", T.dir);
	setenv("XDG_CACHE_HOME", p, 1);
	snprintf(p, sizeof(p), "%s/keep.txt", T.lower);
	tf_write_file(p, "unchanged\n");
	snprintf(p, sizeof(p), "%s/edit.txt", T.lower);
	tf_write_file(p, "before\n");
	snprintf(p, sizeof(p), "%s/gone.txt", T.lower);
	tf_write_file(p, "delete me\n");
	snprintf(p, sizeof(p), "%s/big.bin", T.lower);
	FILE *f = fopen(p, "w");
	for (int i = 0; i < 20000; i++)
		fprintf(f, "line %d\n", i);
	fclose(f);
	snprintf(img, sizeof(img), "%s/img", T.dir);
	ck_assert_int_eq(mkdir(img, 0755), 0);
	snprintf(mpath, sizeof(mpath), "%s/manifest.json", img);
	build_image();
	start_from_image();
}

static void teardown(void)
{
	if (T.fs)
		stop_image();
	T.mf = NULL;
	tf_stop(&T);
	unsetenv("XDG_CACHE_HOME");
}

static void read_all(uint64_t node, char *buf, size_t len, ssize_t *got)
{
	int err;
	uint64_t fh = tf_open(&T, node, O_RDONLY, &err);
	ck_assert_int_eq(err, 0);
	*got = tf_read(&T, node, fh, 0, buf, (uint32_t)len);
	tf_release(&T, node, fh, false);
}

START_TEST(test_fetch_faults_and_verifies)
{
	int err;
	char buf[64];
	ssize_t got;
	uint64_t k = tf_lookup(&T, 1, "keep.txt", &err);
	read_all(k, buf, sizeof(buf), &got);
	ck_assert_int_eq(got, 10);
	ck_assert_int_eq(memcmp(buf, "unchanged\n", 10), 0);
	read_all(k, buf, sizeof(buf), &got); /* second time: from the cache */
	struct fs_stats st;
	fs_get_stats(T.fs, &st);
	ck_assert_uint_eq(st.files_faulted, 1);
	ck_assert_uint_eq(st.faults, 1);
	ck_assert_uint_eq(st.bytes_fetched, 10);
	/* A chunked file: one 4 KiB chunk for a read in the middle. */
	uint64_t b = tf_lookup(&T, 1, "big.bin", &err);
	uint64_t fh = tf_open(&T, b, O_RDONLY, &err);
	char page[100];
	ck_assert_int_eq(tf_read(&T, b, fh, 50000, page, 100), 100);
	fs_get_stats(T.fs, &st);
	ck_assert_uint_eq(st.bytes_fetched, 10 + 4096 * ((50000 % 4096) + 100 > 4096 ? 2 : 1));
	/* A blob that does not match its digest is refused: EIO. */
	stop_image();
	char p[600];
	snprintf(p, sizeof(p), "rm -rf '%s/cache'", T.dir);
	ck_assert_int_eq(system(p), 0);
	struct manifest m2 = {0};
	char e2[256];
	ck_assert_int_eq(manifest_load_file(mpath, &m2, e2, sizeof(e2)), 0);
	const struct manifest_entry *ed = manifest_lookup(&m2, "edit.txt");
	char hex[65];
	manifest_digest_hex(ed->digest, hex);
	snprintf(p, sizeof(p), "%s/blobs/sha256/%s", img, hex);
	tf_write_file(p, "tampered\n");
	manifest_free(&m2);
	start_from_image();
	uint64_t e = tf_lookup(&T, 1, "edit.txt", &err);
	tf_open(&T, e, O_RDONLY, &err);
	ck_assert_int_eq(err, -EIO);
}
END_TEST

static int do_unlink(const char *name)
{
	return tf_req(&T, FUSE_UNLINK, 1, name, strlen(name) + 1, NULL, 0, NULL, 0);
}

START_TEST(test_writeback_round_trip)
{
	int err;
	/* Change one file, add one, delete one, chmod one. */
	uint64_t e = tf_lookup(&T, 1, "edit.txt", &err);
	uint64_t fh = tf_open(&T, e, O_WRONLY | O_TRUNC, &err);
	ck_assert_int_eq(tf_write(&T, e, fh, 0, "after\n", 6), 0);
	tf_release(&T, e, fh, false);
	struct fuse_create_in ci = {.flags = O_RDWR, .mode = S_IFREG | 0600};
	ck_assert_int_eq(tf_req(&T, FUSE_CREATE, 1, &ci, sizeof(ci), "new.txt", 8, NULL, 0), 0);
	uint64_t n = ((struct fuse_entry_out *)tf_body(&T))->nodeid;
	fh = ((struct fuse_open_out *)((struct fuse_entry_out *)tf_body(&T) + 1))->fh;
	ck_assert_int_eq(tf_write(&T, n, fh, 0, "brand new\n", 10), 0);
	ck_assert_int_eq(do_unlink("gone.txt"), 0);
	uint64_t k = tf_lookup(&T, 1, "keep.txt", &err);
	struct fuse_setattr_in si = {.valid = FATTR_MODE, .mode = 0600};
	ck_assert_int_eq(tf_req(&T, FUSE_SETATTR, k, &si, sizeof(si), NULL, 0, NULL, 0), 0);

	struct manifest before = {0};
	char errs[512];
	ck_assert_int_eq(manifest_load_file(mpath, &before, errs, sizeof(errs)), 0);
	/* A target that cannot be written: the stage stays for a retry. */
	struct config cfg = {0};
	char bad[500];
	snprintf(bad, sizeof(bad), "%s/missing-dir/manifest.json", T.dir);
	ck_assert_int_eq(fs_writeback_at_exit(T.fs, M, &cfg, bad, T.state, true), -1);
	char p[600];
	snprintf(p, sizeof(p), "%s/pending/manifest.json", T.state);
	ck_assert_int_eq(access(p, F_OK), 0);
	/* The real push. */
	uint64_t wb0 = fs_writeback_bytes();
	ck_assert_int_eq(fs_writeback_at_exit(T.fs, M, &cfg, mpath, T.state, true), 0);
	ck_assert_int_ne(access(p, F_OK), 0); /* stage removed after success */
	uint64_t pushed = fs_writeback_bytes() - wb0;
	/* Only the two changed files' blobs (6 + 10 bytes) and the manifest. */
	struct stat mst;
	ck_assert_int_eq(stat(mpath, &mst), 0);
	ck_assert_uint_eq(pushed, 16 + (uint64_t)mst.st_size);

	struct manifest after = {0};
	ck_assert_int_eq(manifest_load_file(mpath, &after, errs, sizeof(errs)), 0);
	ck_assert_ptr_null(manifest_lookup(&after, "gone.txt"));
	ck_assert_ptr_nonnull(manifest_lookup(&after, "new.txt"));
	ck_assert_uint_eq(manifest_lookup(&after, "keep.txt")->mode, 0600);
	ck_assert_int_eq(memcmp(manifest_lookup(&after, "keep.txt")->digest,
				manifest_lookup(&before, "keep.txt")->digest, 32), 0);
	ck_assert_int_ne(memcmp(manifest_lookup(&after, "edit.txt")->digest,
				manifest_lookup(&before, "edit.txt")->digest, 32), 0);
	ck_assert_uint_eq(manifest_lookup(&after, "big.bin")->n_chunks,
			  manifest_lookup(&before, "big.bin")->n_chunks);
	manifest_free(&before);
	manifest_free(&after);

	/* Boot the new image: the changes are there. */
	stop_image();
	snprintf(p, sizeof(p), "rm -rf '%s'", T.state);
	ck_assert_int_eq(system(p), 0);
	start_from_image();
	char buf[64];
	ssize_t got;
	read_all(tf_lookup(&T, 1, "edit.txt", &err), buf, sizeof(buf), &got);
	ck_assert_int_eq(got, 6);
	ck_assert_int_eq(memcmp(buf, "after\n", 6), 0);
	read_all(tf_lookup(&T, 1, "new.txt", &err), buf, sizeof(buf), &got);
	ck_assert_int_eq(got, 10);
	ck_assert_int_eq(memcmp(buf, "brand new\n", 10), 0);
	tf_lookup(&T, 1, "gone.txt", &err);
	ck_assert_int_eq(err, -ENOENT);
	ck_assert(!fs_is_dirty(T.fs));
}
END_TEST

START_TEST(test_retry_command_path)
{
	int err;
	uint64_t e = tf_lookup(&T, 1, "edit.txt", &err);
	uint64_t fh = tf_open(&T, e, O_RDWR, &err);
	ck_assert_int_eq(tf_write(&T, e, fh, 0, "AFTER", 5), 0);
	struct config cfg = {0};
	/* An unclean stop stages but does not push. */
	ck_assert_int_eq(fs_writeback_at_exit(T.fs, M, &cfg, mpath, T.state, false), 1);
	struct manifest m = {0};
	char errs[512];
	ck_assert_int_eq(manifest_load_file(mpath, &m, errs, sizeof(errs)), 0);
	char hex_before[65];
	manifest_digest_hex(manifest_lookup(&m, "edit.txt")->digest, hex_before);
	manifest_free(&m);
	/* minivmm writeback STATE_DIR */
	ck_assert_msg(fs_writeback_push(T.state, NULL, errs, sizeof(errs)) == 0, "%s", errs);
	ck_assert_int_eq(manifest_load_file(mpath, &m, errs, sizeof(errs)), 0);
	char hex_after[65];
	manifest_digest_hex(manifest_lookup(&m, "edit.txt")->digest, hex_after);
	ck_assert_str_ne(hex_before, hex_after);
	manifest_free(&m);
	/* Nothing left to push. */
	ck_assert_int_eq(fs_writeback_push(T.state, NULL, errs, sizeof(errs)), -1);
}
END_TEST

/* Item 10: a state directory whose path holds a quote. The old rm_rf
 * ran `rm -rf -- 'STATE/pending.new'` through the shell, which here
 * removed the sibling directory "victim". */
START_TEST(test_state_dir_with_quote)
{
	int err;
	uint64_t e = tf_lookup(&T, 1, "edit.txt", &err);
	uint64_t fh = tf_open(&T, e, O_RDWR, &err);
	ck_assert_int_eq(tf_write(&T, e, fh, 0, "QUOTE", 5), 0);
	tf_release(&T, e, fh, false);
	char victim[400], keep[450], odd[450];
	snprintf(victim, sizeof(victim), "%s/victim", T.dir);
	ck_assert_int_eq(mkdir(victim, 0755), 0);
	snprintf(keep, sizeof(keep), "%s/keep", victim);
	tf_write_file(keep, "mine\n");
	snprintf(odd, sizeof(odd), "%s/victim' 'x", T.dir);
	ck_assert_int_eq(mkdir(odd, 0755), 0);
	struct config cfg = {0};
	ck_assert_int_eq(fs_writeback_at_exit(T.fs, M, &cfg, mpath, odd, true), 0);
	ck_assert_int_eq(access(keep, F_OK), 0);
	struct manifest m = {0};
	char errs[512];
	ck_assert_int_eq(manifest_load_file(mpath, &m, errs, sizeof(errs)), 0);
	ck_assert_uint_eq(manifest_lookup(&m, "edit.txt")->size, 7);
	manifest_free(&m);
}
END_TEST

/* Item 4: a change no manifest can hold does not sink the others. The
 * server refuses such names now (test_fuse.c), so the tree is made
 * behind its back, as an older server or a future bug would: a chain of
 * 40,000 directories (the old recursive walk overflowed the stack), a
 * file at its bottom, and an ordinary file at the root. */
START_TEST(test_unrepresentable_change_alone_is_lost)
{
	int err;
	uint64_t o = tf_create(&T, 1, "ordinary.txt", &err);
	ck_assert_int_eq(err, 0);
	uint64_t fh = tf_open(&T, o, O_WRONLY, &err);
	ck_assert_int_eq(tf_write(&T, o, fh, 0, "keep me\n", 8), 0);
	tf_release(&T, o, fh, false);
	uint64_t deep = tf_mkdir(&T, 1, "deep", &err);
	ck_assert_int_eq(err, 0);
	pthread_mutex_lock(&T.fs->lock);
	struct fs_node *dir = fs_node_get(T.fs, deep);
	enum { LEVELS = 40000 };
	for (int i = 0; i < LEVELS; i++) {
		struct fs_node *n = fs_node_new(T.fs, S_IFDIR | 0755, 0, 0);
		ck_assert_ptr_nonnull(fs_dentry_add(T.fs, dir, "a", 1, n));
		dir->nlink++;
		dir = n;
	}
	struct fs_node *f = fs_node_new(T.fs, S_IFREG | 0644, 0, 0);
	ck_assert_ptr_nonnull(fs_dentry_add(T.fs, dir, "bottom", 6, f));
	pthread_mutex_unlock(&T.fs->lock);

	struct config cfg = {0};
	ck_assert_int_eq(fs_writeback_at_exit(T.fs, M, &cfg, mpath, T.state, true), -1);
	struct manifest m = {0};
	char errs[512];
	ck_assert_int_eq(manifest_load_file(mpath, &m, errs, sizeof(errs)), 0);
	ck_assert_ptr_nonnull(manifest_lookup(&m, "ordinary.txt"));
	ck_assert_uint_eq(manifest_lookup(&m, "ordinary.txt")->size, 8);
	ck_assert_ptr_nonnull(manifest_lookup(&m, "deep/a/a/a"));
	/* "deep" + 2,046 levels of "/a" is 4,096 bytes: the deepest kept is
	 * the level before. */
	char path[4200] = "deep";
	for (int i = 0; i < 2045; i++)
		strcat(path, "/a");
	ck_assert_uint_eq(strlen(path), 4094);
	ck_assert_ptr_nonnull(manifest_lookup(&m, path));
	strcat(path, "/a");
	ck_assert_ptr_null(manifest_lookup(&m, path));
	manifest_free(&m);
	/* The one left out is named, in the state dir. */
	char list[600], line[5000];
	snprintf(list, sizeof(list), "%s/not-written-back", T.state);
	FILE *lf = fopen(list, "r");
	ck_assert_ptr_nonnull(lf);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), lf));
	ck_assert_ptr_nonnull(strstr(line, path));
	ck_assert_ptr_null(fgets(line, sizeof(line), lf));
	fclose(lf);
}
END_TEST

/* A second server over the same image (another run or mount), with its
 * own state directory. */
struct other {
	struct tf t;
	struct manifest *m;
};

static void other_start(struct other *o, const char *name)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->t.dir, sizeof(o->t.dir), "%s", T.dir);
	snprintf(o->t.state, sizeof(o->t.state), "%s/%s", T.dir, name);
	char err[512] = "";
	o->m = calloc(1, sizeof(*o->m));
	ck_assert_msg(manifest_load_file(mpath, o->m, err, sizeof(err)) == 0, "%s", err);
	struct config cfg = {0};
	void *b = fs_backend_fetch_open_local(mpath, o->m, &cfg, err, sizeof(err));
	ck_assert_msg(b != NULL, "%s", err);
	o->t.mf = o->m;
	tf_start(&o->t, &fs_backend_fetch, b);
}

static void other_stop(struct other *o)
{
	fs_destroy(o->t.fs);
	manifest_free(o->m);
	free(o->m);
}

static void write_new(struct tf *t, const char *name, const char *text)
{
	int err;
	uint64_t n = tf_lookup(t, 1, name, &err);
	if (!n)
		n = tf_create(t, 1, name, &err);
	ck_assert_int_eq(err, 0);
	uint64_t fh = tf_open(t, n, O_WRONLY | O_TRUNC, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(tf_write(t, n, fh, 0, text, (uint32_t)strlen(text)), 0);
	tf_release(t, n, fh, false);
}

static uint64_t size_in_image(const char *path)
{
	struct manifest m = {0};
	char errs[512];
	ck_assert_int_eq(manifest_load_file(mpath, &m, errs, sizeof(errs)), 0);
	const struct manifest_entry *e = manifest_lookup(&m, path);
	uint64_t size = e ? e->size : UINT64_MAX;
	manifest_free(&m);
	return size;
}

/* Item 6: two writers from one base. Different paths merge; the same
 * path changed both ways fails and keeps the stage. */
START_TEST(test_two_writers)
{
	struct other b;
	other_start(&b, "state-b");
	write_new(&T, "edit.txt", "changed by A\n");           /* 13 bytes */
	write_new(&b.t, "new-by-b.txt", "made by B\n");        /* 10 bytes */
	ck_assert_int_eq(tf_req(&b.t, FUSE_UNLINK, 1, "gone.txt", 9, NULL, 0, NULL, 0), 0);
	struct config cfg = {0};
	ck_assert_int_eq(fs_writeback_at_exit(T.fs, M, &cfg, mpath, T.state, true), 0);
	ck_assert_int_eq(fs_writeback_at_exit(b.t.fs, b.m, &cfg, mpath, b.t.state, true), 0);
	/* Today the second write-back replaced the manifest with its own
	 * view: A's edit.txt was back to "before". */
	ck_assert_uint_eq(size_in_image("edit.txt"), 13);
	ck_assert_uint_eq(size_in_image("new-by-b.txt"), 10);
	ck_assert_uint_eq(size_in_image("gone.txt"), UINT64_MAX);
	ck_assert_uint_eq(size_in_image("keep.txt"), 10);
	other_stop(&b);

	/* Both change the same file: the second fails, publishes nothing,
	 * keeps its stage. */
	struct other c, d;
	other_start(&c, "state-c");
	other_start(&d, "state-d");
	write_new(&c.t, "keep.txt", "C\n");
	write_new(&d.t, "keep.txt", "DDDD\n");
	ck_assert_int_eq(fs_writeback_at_exit(c.t.fs, c.m, &cfg, mpath, c.t.state, true), 0);
	ck_assert_int_eq(fs_writeback_at_exit(d.t.fs, d.m, &cfg, mpath, d.t.state, true), -1);
	ck_assert_uint_eq(size_in_image("keep.txt"), 2);
	char p[600];
	snprintf(p, sizeof(p), "%s/pending/manifest.json", d.t.state);
	ck_assert_int_eq(access(p, F_OK), 0);
	char errs[512];
	ck_assert_int_eq(fs_writeback_push(d.t.state, NULL, errs, sizeof(errs)), -1);
	ck_assert_ptr_nonnull(strstr(errs, "image changed since this run started"));
	ck_assert_ptr_nonnull(strstr(errs, "keep.txt"));
	other_stop(&c);
	other_stop(&d);
}
END_TEST

/* Item 7: the full-copy disk is an image of the old tree; the new image
 * must not name it (today it did, and --mode full booted the old files). */
START_TEST(test_stale_disk_dropped)
{
	stop_image();
	struct manifest m = {0};
	char errs[512];
	ck_assert_int_eq(manifest_load_file(mpath, &m, errs, sizeof(errs)), 0);
	m.disk.present = true;
	m.disk.size = 4096;
	memset(m.disk.digest, 0xab, sizeof(m.disk.digest));
	ck_assert_msg(manifest_write_file(&m, mpath, false, errs, sizeof(errs)) == 0, "%s", errs);
	manifest_free(&m);
	start_from_image();
	write_new(&T, "edit.txt", "new\n");
	struct config cfg = {0};
	ck_assert_int_eq(fs_writeback_at_exit(T.fs, M, &cfg, mpath, T.state, true), 0);
	ck_assert_int_eq(manifest_load_file(mpath, &m, errs, sizeof(errs)), 0);
	ck_assert(!m.disk.present);
	ck_assert_uint_eq(manifest_lookup(&m, "edit.txt")->size, 4);
	manifest_free(&m);
}
END_TEST

/* Item 4 again: deleting a file the image fetches before boot made the
 * new manifest invalid, which sank every other change. */
START_TEST(test_deleted_boot_file)
{
	stop_image();
	struct manifest m = {0};
	char errs[512];
	ck_assert_int_eq(manifest_load_file(mpath, &m, errs, sizeof(errs)), 0);
	m.n_boot_files = 2;
	m.boot_files = calloc(2, sizeof(char *));
	m.boot_files[0] = strdup("gone.txt");
	m.boot_files[1] = strdup("keep.txt");
	ck_assert_msg(manifest_write_file(&m, mpath, false, errs, sizeof(errs)) == 0, "%s", errs);
	manifest_free(&m);
	start_from_image();
	ck_assert_int_eq(tf_req(&T, FUSE_UNLINK, 1, "gone.txt", 9, NULL, 0, NULL, 0), 0);
	write_new(&T, "edit.txt", "edited\n");
	struct config cfg = {0};
	ck_assert_int_eq(fs_writeback_at_exit(T.fs, M, &cfg, mpath, T.state, true), 0);
	ck_assert_int_eq(manifest_load_file(mpath, &m, errs, sizeof(errs)), 0);
	ck_assert_uint_eq(m.n_boot_files, 1);
	ck_assert_str_eq(m.boot_files[0], "keep.txt");
	ck_assert_uint_eq(manifest_lookup(&m, "edit.txt")->size, 7);
	manifest_free(&m);

	/* The same through a merge: B deletes a boot file after A published. */
	struct other a, b;
	other_start(&a, "state-a");
	other_start(&b, "state-b");
	write_new(&a.t, "edit.txt", "by A\n");
	ck_assert_int_eq(tf_req(&b.t, FUSE_UNLINK, 1, "keep.txt", 9, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(fs_writeback_at_exit(a.t.fs, a.m, &cfg, mpath, a.t.state, true), 0);
	ck_assert_int_eq(fs_writeback_at_exit(b.t.fs, b.m, &cfg, mpath, b.t.state, true), 0);
	ck_assert_int_eq(manifest_load_file(mpath, &m, errs, sizeof(errs)), 0);
	ck_assert_uint_eq(m.n_boot_files, 0);
	ck_assert_uint_eq(manifest_lookup(&m, "edit.txt")->size, 5);
	ck_assert_ptr_null(manifest_lookup(&m, "keep.txt"));
	manifest_free(&m);
	other_stop(&a);
	other_stop(&b);
}
END_TEST

/* Disk a blob of the image takes, in bytes. */
static uint64_t blob_disk_bytes(const char *path)
{
	struct manifest m = {0};
	char errs[512], hex[65], p[700];
	ck_assert_int_eq(manifest_load_file(mpath, &m, errs, sizeof(errs)), 0);
	const struct manifest_entry *e = manifest_lookup(&m, path);
	ck_assert_ptr_nonnull(e);
	manifest_digest_hex(manifest_blob_name(e), hex);
	manifest_free(&m);
	snprintf(p, sizeof(p), "%s/blobs/sha256/%s", img, hex);
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* Bytes of the blob itself (what a PUT of it sends), and whether the
 * entry is packed. */
static uint64_t blob_bytes(const char *path, bool *packed)
{
	struct manifest m = {0};
	char errs[512], hex[65], p[700];
	ck_assert_int_eq(manifest_load_file(mpath, &m, errs, sizeof(errs)), 0);
	const struct manifest_entry *e = manifest_lookup(&m, path);
	ck_assert_ptr_nonnull(e);
	manifest_digest_hex(manifest_blob_name(e), hex);
	*packed = e->packed;
	ck_assert_uint_eq(m.version, e->packed ? 2 : m.version);
	manifest_free(&m);
	snprintf(p, sizeof(p), "%s/blobs/sha256/%s", img, hex);
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	return (uint64_t)st.st_size;
}

/* Item 8: sparse stays sparse. A file extended with truncate (64 MiB of
 * hole), and one written with 1 MiB of explicit zeros between two bytes,
 * cost the upper layer, the stage and the local store only their data. */
START_TEST(test_sparse_stays_sparse)
{
	enum { BIG = 64 << 20, ZEROS = 1 << 20 };
	int err;
	uint64_t n = tf_create(&T, 1, "sparse.img", &err);
	ck_assert_int_eq(err, 0);
	struct fuse_setattr_in si = {.valid = FATTR_SIZE, .size = BIG};
	ck_assert_int_eq(tf_req(&T, FUSE_SETATTR, n, &si, sizeof(si), NULL, 0, NULL, 0), 0);
	uint64_t z = tf_create(&T, 1, "zeros.bin", &err);
	uint64_t fh = tf_open(&T, z, O_WRONLY, &err);
	static char zeros[ZEROS];
	ck_assert_int_eq(tf_write(&T, z, fh, 0, "A", 1), 0);
	for (uint32_t off = 0; off < ZEROS; off += 65536)
		ck_assert_int_eq(tf_write(&T, z, fh, 4096 + off, zeros, 65536), 0);
	ck_assert_int_eq(tf_write(&T, z, fh, 4096 + ZEROS, "B", 1), 0);
	tf_release(&T, z, fh, false);
	/* The upper layer: the truncated file is a hole. */
	char p[600];
	snprintf(p, sizeof(p), "%s/upper/%llu", T.state, (unsigned long long)n);
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_size, BIG);
	ck_assert_uint_lt((uint64_t)st.st_blocks * 512, 1 << 20);
	struct config cfg = {0};
	ck_assert_int_eq(fs_writeback_at_exit(T.fs, M, &cfg, mpath, T.state, true), 0);
	ck_assert_uint_eq(size_in_image("sparse.img"), BIG);
	ck_assert_uint_eq(size_in_image("zeros.bin"), 4096 + ZEROS + 1);
	/* Today: 64 MiB and 1 MiB of zeros on disk. */
	ck_assert_uint_lt(blob_disk_bytes("sparse.img"), 1 << 20);
	ck_assert_uint_lt(blob_disk_bytes("zeros.bin"), 64 << 10);
	/* And a blob that leaves the zero chunks out (packed), so an upload
	 * sends only the data: before, 64 MiB and 1 MiB. */
	bool packed = false;
	ck_assert_uint_eq(blob_bytes("sparse.img", &packed), 0);
	ck_assert(packed);
	ck_assert_uint_lt(blob_bytes("zeros.bin", &packed), 2 * 4096 + 1);
	ck_assert(packed);
	/* The content reads back right. */
	stop_image();
	rmtree(T.state);
	start_from_image();
	uint64_t r = tf_lookup(&T, 1, "zeros.bin", &err);
	fh = tf_open(&T, r, O_RDONLY, &err);
	char b[8];
	ck_assert_int_eq(tf_read(&T, r, fh, 4096 + ZEROS - 3, b, 8), 4);
	ck_assert_int_eq(memcmp(b, "\0\0\0B", 4), 0);
	ck_assert_int_eq(tf_read(&T, r, fh, 0, b, 2), 2);
	ck_assert_int_eq(memcmp(b, "A\0", 2), 0);
	ck_assert_int_eq(tf_read(&T, r, fh, 8192, b, 8), 8); /* a hole chunk */
	ck_assert_int_eq(memcmp(b, "\0\0\0\0\0\0\0\0", 8), 0);
	uint64_t sp = tf_lookup(&T, 1, "sparse.img", &err);
	uint64_t sh = tf_open(&T, sp, O_RDONLY, &err);
	memset(b, 'x', sizeof(b));
	ck_assert_int_eq(tf_read(&T, sp, sh, BIG - 8, b, 8), 8);
	ck_assert_int_eq(memcmp(b, "\0\0\0\0\0\0\0\0", 8), 0);
}
END_TEST

/* Item 8 with two writers: A writes back a sparse file (packed), B another
 * file from the same base; B's merge keeps A's entry whole, its packed
 * blob included, and a fresh read of it is right. */
START_TEST(test_merge_keeps_packed)
{
	struct other b;
	other_start(&b, "state-b");
	int err;
	uint64_t n = tf_create(&T, 1, "sparse.bin", &err);
	ck_assert_int_eq(err, 0);
	uint64_t fh = tf_open(&T, n, O_WRONLY, &err);
	ck_assert_int_eq(tf_write(&T, n, fh, 5 * 4096, "end", 3), 0); /* 5 chunks of hole */
	tf_release(&T, n, fh, false);
	write_new(&b.t, "new-by-b.txt", "made by B\n");
	struct config cfg = {0};
	ck_assert_int_eq(fs_writeback_at_exit(T.fs, M, &cfg, mpath, T.state, true), 0);
	bool packed = false;
	uint64_t before = blob_bytes("sparse.bin", &packed);
	ck_assert(packed);
	ck_assert_uint_eq(before, 3);
	ck_assert_int_eq(fs_writeback_at_exit(b.t.fs, b.m, &cfg, mpath, b.t.state, true), 0);
	ck_assert_uint_eq(size_in_image("new-by-b.txt"), 10);
	packed = false;
	ck_assert_uint_eq(blob_bytes("sparse.bin", &packed), 3); /* the same blob, by name */
	ck_assert(packed);
	other_stop(&b);
	stop_image();
	rmtree(T.state);
	start_from_image();
	uint64_t r = tf_lookup(&T, 1, "sparse.bin", &err);
	fh = tf_open(&T, r, O_RDONLY, &err);
	char buf[8];
	ck_assert_int_eq(tf_read(&T, r, fh, 5 * 4096 - 2, buf, 8), 5);
	ck_assert_int_eq(memcmp(buf, "\0\0end", 5), 0);	tf_release(&T, r, fh, false);
	/* A later run that leaves it alone writes it back as it was: packed,
	 * the same blob (it is not on the server under its digest). */
	write_new(&T, "later.txt", "later\n");
	ck_assert_int_eq(fs_writeback_at_exit(T.fs, M, &cfg, mpath, T.state, true), 0);
	packed = false;
	ck_assert_uint_eq(blob_bytes("sparse.bin", &packed), 3);
	ck_assert(packed);
}
END_TEST

static Suite *fs_writeback_suite(void)
{
	Suite *s = suite_create("fs_writeback");
	TCase *tc = tcase_create("writeback");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fetch_faults_and_verifies);
	tcase_add_test(tc, test_writeback_round_trip);
	tcase_add_test(tc, test_retry_command_path);
	tcase_add_test(tc, test_state_dir_with_quote);
	tcase_add_test(tc, test_unrepresentable_change_alone_is_lost);
	tcase_add_test(tc, test_two_writers);
	tcase_add_test(tc, test_stale_disk_dropped);
	tcase_add_test(tc, test_sparse_stays_sparse);
	tcase_add_test(tc, test_merge_keeps_packed);
	tcase_add_test(tc, test_deleted_boot_file);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(fs_writeback_suite)
