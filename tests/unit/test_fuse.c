/* The FUSE server (fs/) driven with real FUSE request bytes. */
#include "tests/unit/unit.h"
#include "tests/unit/test_fuse_harness.h"

#include <pthread.h>
#include <time.h>

/* lower/: hello.txt, hl (hard link to it), link -> hello.txt, empty,
 * sub/inner.txt */
static void make_lower(struct tf *t)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/hello.txt", t->lower);
	tf_write_file(p, "hello world\n");
	char q[400];
	snprintf(q, sizeof(q), "%s/hl", t->lower);
	ck_assert_int_eq(link(p, q), 0);
	snprintf(q, sizeof(q), "%s/link", t->lower);
	ck_assert_int_eq(symlink("hello.txt", q), 0);
	snprintf(q, sizeof(q), "%s/empty", t->lower);
	tf_write_file(q, "");
	snprintf(q, sizeof(q), "%s/sub", t->lower);
	ck_assert_int_eq(mkdir(q, 0750), 0);
	snprintf(q, sizeof(q), "%s/sub/inner.txt", t->lower);
	tf_write_file(q, "inner\n");
}

static struct tf T;

static void setup(void)
{
	tf_setup_dirs(&T);
	make_lower(&T);
	tf_start(&T, NULL, NULL);
}

static void teardown(void)
{
	tf_stop(&T);
}

START_TEST(test_lookup_getattr_readlink)
{
	int err;
	uint64_t h = tf_lookup(&T, 1, "hello.txt", &err);
	ck_assert_int_eq(err, 0);
	struct fuse_entry_out *e = tf_body(&T);
	ck_assert_uint_eq(e->attr.size, 12);
	ck_assert_uint_eq(e->attr.mode & S_IFMT, S_IFREG);
	ck_assert_uint_eq(e->attr.nlink, 2);
	ck_assert_uint_eq(tf_lookup(&T, 1, "hl", NULL), h); /* one inode, two names */
	struct fuse_attr a = tf_getattr(&T, 1, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_uint_eq(a.mode & S_IFMT, S_IFDIR);
	ck_assert_uint_eq(a.nlink, 3); /* ., .., sub/.. */
	uint64_t l = tf_lookup(&T, 1, "link", &err);
	ck_assert_int_eq(tf_req(&T, FUSE_READLINK, l, NULL, 0, NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(tf_body_len(&T), 9);
	ck_assert_int_eq(memcmp(tf_body(&T), "hello.txt", 9), 0);
	ck_assert_int_eq(tf_req(&T, FUSE_READLINK, h, NULL, 0, NULL, 0, NULL, 0), -EINVAL);
	tf_lookup(&T, 1, "nope", &err);
	ck_assert_int_eq(err, -ENOENT);
	tf_lookup(&T, h, "x", &err);
	ck_assert_int_eq(err, -ENOTDIR);
	uint64_t sub = tf_lookup(&T, 1, "sub", &err);
	a = tf_getattr(&T, sub, &err);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0750);
	ck_assert_uint_ne(tf_lookup(&T, sub, "inner.txt", &err), 0);
}
END_TEST

START_TEST(test_read)
{
	uint64_t h = tf_lookup(&T, 1, "hello.txt", NULL);
	int err;
	uint64_t fh = tf_open(&T, h, O_RDONLY, &err);
	ck_assert_int_eq(err, 0);
	char buf[64];
	ck_assert_int_eq(tf_read(&T, h, fh, 0, buf, sizeof(buf)), 12);
	ck_assert_int_eq(memcmp(buf, "hello world\n", 12), 0);
	ck_assert_int_eq(tf_read(&T, h, fh, 6, buf, 3), 3);
	ck_assert_int_eq(memcmp(buf, "wor", 3), 0);
	ck_assert_int_eq(tf_read(&T, h, fh, 12, buf, 10), 0);
	ck_assert_int_eq(tf_read(&T, h, fh, ~0ull, buf, 10), 0);
	/* Another node's id with this handle, a handle never given: EBADF. */
	uint64_t e = tf_lookup(&T, 1, "empty", NULL);
	ck_assert_int_eq(tf_read(&T, e, fh, 0, buf, 10), -EBADF);
	ck_assert_int_eq(tf_read(&T, h, fh + 100, 0, buf, 10), -EBADF);
	ck_assert_int_eq(tf_read(&T, h, 0, 0, buf, 10), -EBADF);
	ck_assert_int_eq(tf_release(&T, h, fh, false), 0);
	ck_assert_int_eq(tf_release(&T, h, fh, false), -EBADF);
	ck_assert_int_eq(tf_read(&T, h, fh, 0, buf, 10), -EBADF);
	/* Reading in pieces spread over several out buffers. */
	fh = tf_open(&T, h, O_RDONLY, &err);
	struct fuse_read_in ri = {.fh = fh, .offset = 0, .size = 12};
	uint8_t req[sizeof(struct fuse_in_header) + sizeof(ri)];
	struct fuse_in_header ih = {.len = sizeof(req), .opcode = FUSE_READ, .unique = 77, .nodeid = h};
	memcpy(req, &ih, sizeof(ih));
	memcpy(req + sizeof(ih), &ri, sizeof(ri));
	struct iovec in[2] = {{req, 10}, {req + 10, sizeof(req) - 10}}; /* header split */
	uint8_t o1[5], o2[13], o3[100];
	struct iovec out[3] = {{o1, 5}, {o2, 13}, {o3, 100}};
	ck_assert_uint_eq(fs_handle(T.fs, in, 2, out, 3), 16 + 12);
	uint8_t all[28];
	memcpy(all, o1, 5);
	memcpy(all + 5, o2, 13);
	memcpy(all + 18, o3, 10);
	ck_assert_int_eq(((struct fuse_out_header *)all)->error, 0);
	ck_assert_int_eq(memcmp(all + 16, "hello world\n", 12), 0);
}
END_TEST

START_TEST(test_readdir)
{
	/* Manifest order; hard links (second names) come last. */
	char names[512];
	tf_list(&T, 1, names, sizeof(names), 4096);
	ck_assert_str_eq(names, ".,..,empty,hello.txt,link,sub,hl");
	/* A buffer that holds one entry at a time gives the same listing. */
	tf_list(&T, 1, names, sizeof(names), 40);
	ck_assert_str_eq(names, ".,..,empty,hello.txt,link,sub,hl");
	/* READDIRPLUS: entries carry attributes and count as lookups. */
	struct fuse_open_in oi = {0};
	ck_assert_int_eq(tf_req(&T, FUSE_OPENDIR, 1, &oi, sizeof(oi), NULL, 0, NULL, 0), 0);
	uint64_t fh = ((struct fuse_open_out *)tf_body(&T))->fh;
	struct fuse_read_in ri = {.fh = fh, .size = 4096};
	ck_assert_int_eq(tf_req(&T, FUSE_READDIRPLUS, 1, &ri, sizeof(ri), NULL, 0, NULL, 0), 0);
	uint8_t *b = tf_body(&T);
	size_t p = 0, n = 0;
	bool saw_hello = false;
	while (p < tf_body_len(&T)) {
		struct fuse_direntplus *d = (struct fuse_direntplus *)(b + p);
		if (d->dirent.namelen == 9 && !memcmp(d->dirent.name, "hello.txt", 9)) {
			saw_hello = true;
			ck_assert_uint_eq(d->entry_out.attr.size, 12);
			ck_assert_uint_ne(d->entry_out.nodeid, 0);
		}
		p += FUSE_DIRENTPLUS_SIZE(d);
		n++;
	}
	ck_assert(saw_hello);
	ck_assert_uint_eq(n, 7);
	/* READDIR with a file's handle, OPENDIR of a file: refused. */
	uint64_t h = tf_lookup(&T, 1, "hello.txt", NULL);
	ck_assert_int_eq(tf_req(&T, FUSE_OPENDIR, h, &oi, sizeof(oi), NULL, 0, NULL, 0), -ENOTDIR);
	ck_assert_int_eq(tf_release(&T, 1, fh, false), -EBADF); /* RELEASE of a dir handle */
	ck_assert_int_eq(tf_release(&T, 1, fh, true), 0);
}
END_TEST

START_TEST(test_write_copy_up)
{
	uint64_t h = tf_lookup(&T, 1, "hello.txt", NULL);
	int err;
	uint64_t rfh = tf_open(&T, h, O_RDONLY, &err); /* opened before the copy-up */
	uint64_t fh = tf_open(&T, h, O_RDWR, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(tf_write(&T, h, fh, 0, "HELLO", 5), 0);
	ck_assert_int_eq(tf_write(&T, h, fh, 12, "more\n", 5), 0);
	char buf[64];
	ck_assert_int_eq(tf_read(&T, h, fh, 0, buf, 64), 17);
	ck_assert_int_eq(memcmp(buf, "HELLO world\nmore\n", 17), 0);
	ck_assert_int_eq(tf_read(&T, h, rfh, 0, buf, 64), 17); /* the merged view */
	uint64_t hl = tf_lookup(&T, 1, "hl", NULL);
	ck_assert_uint_eq(hl, h);
	ck_assert_uint_eq(tf_getattr(&T, hl, &err).size, 17);
	/* The lower directory is never written. */
	char p[400];
	snprintf(p, sizeof(p), "%s/hello.txt", T.lower);
	FILE *f = fopen(p, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	ck_assert_str_eq(buf, "hello world\n");
	/* Writing through a read-only handle: EBADF. */
	ck_assert_int_eq(tf_write(&T, h, rfh, 0, "x", 1), -EBADF);
	/* O_TRUNC open empties it. */
	uint64_t tfh = tf_open(&T, h, O_WRONLY | O_TRUNC, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_uint_eq(tf_getattr(&T, h, &err).size, 0);
	tf_release(&T, h, tfh, false);
	struct fs_stats st;
	fs_get_stats(T.fs, &st);
	ck_assert_uint_eq(st.copy_ups, 1);
	ck_assert_uint_eq(st.bytes_written, 10);
	ck_assert(fs_is_dirty(T.fs));
}
END_TEST

static uint64_t do_create(struct tf *t, uint64_t dir, const char *name, uint32_t mode, uint64_t *fh, int *err)
{
	struct fuse_create_in ci = {.flags = O_RDWR | O_CREAT, .mode = S_IFREG | mode};
	*err = tf_req(t, FUSE_CREATE, dir, &ci, sizeof(ci), name, strlen(name) + 1, NULL, 0);
	if (*err)
		return 0;
	struct fuse_entry_out *e = tf_body(t);
	*fh = ((struct fuse_open_out *)(e + 1))->fh;
	return e->nodeid;
}

static int do_mkdir(struct tf *t, uint64_t dir, const char *name, uint64_t *id)
{
	struct fuse_mkdir_in mi = {.mode = 0755};
	int e = tf_req(t, FUSE_MKDIR, dir, &mi, sizeof(mi), name, strlen(name) + 1, NULL, 0);
	if (!e && id)
		*id = ((struct fuse_entry_out *)tf_body(t))->nodeid;
	return e;
}

static int do_rename(struct tf *t, uint64_t od, const char *on, uint64_t nd, const char *nn, uint32_t flags)
{
	struct fuse_rename2_in ri = {.newdir = nd, .flags = flags};
	return tf_req(t, FUSE_RENAME2, od, &ri, sizeof(ri), on, strlen(on) + 1, nn, strlen(nn) + 1);
}

START_TEST(test_namespace_ops)
{
	int err;
	uint64_t fh = 0;
	uint64_t n = do_create(&T, 1, "new.txt", 0640, &fh, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(tf_write(&T, n, fh, 0, "abc", 3), 0);
	do_create(&T, 1, "new.txt", 0640, &fh, &err);
	ck_assert_int_eq(err, -EEXIST);
	uint64_t d;
	ck_assert_int_eq(do_mkdir(&T, 1, "d", &d), 0);
	ck_assert_int_eq(do_mkdir(&T, 1, "d", NULL), -EEXIST);
	ck_assert_int_eq(do_rename(&T, 1, "new.txt", d, "moved.txt", 0), 0);
	tf_lookup(&T, 1, "new.txt", &err);
	ck_assert_int_eq(err, -ENOENT);
	ck_assert_uint_eq(tf_lookup(&T, d, "moved.txt", &err), n);
	char buf[8];
	ck_assert_int_eq(tf_read(&T, n, fh, 0, buf, 8), 3);
	/* A directory cannot move into itself or below itself. */
	uint64_t dd;
	ck_assert_int_eq(do_mkdir(&T, d, "dd", &dd), 0);
	ck_assert_int_eq(do_rename(&T, 1, "d", dd, "x", 0), -EINVAL);
	ck_assert_int_eq(do_rename(&T, 1, "d", d, "x", 0), -EINVAL);
	/* rmdir of a non-empty directory, rmdir of a file, unlink of a dir. */
	ck_assert_int_eq(tf_req(&T, FUSE_RMDIR, 1, "d", 2, NULL, 0, NULL, 0), -ENOTEMPTY);
	ck_assert_int_eq(tf_req(&T, FUSE_RMDIR, 1, "hello.txt", 10, NULL, 0, NULL, 0), -ENOTDIR);
	ck_assert_int_eq(tf_req(&T, FUSE_UNLINK, 1, "d", 2, NULL, 0, NULL, 0), -EISDIR);
	/* Rename a lower directory with its content. */
	uint64_t sub = tf_lookup(&T, 1, "sub", NULL);
	ck_assert_int_eq(do_rename(&T, 1, "sub", d, "sub2", 0), 0);
	uint64_t inner = tf_lookup(&T, sub, "inner.txt", &err);
	ck_assert_int_eq(err, 0);
	uint64_t rfh = tf_open(&T, inner, O_RDONLY, &err);
	ck_assert_int_eq(tf_read(&T, inner, rfh, 0, buf, 8), 6);
	ck_assert_int_eq(memcmp(buf, "inner\n", 6), 0);
	char names[256];
	tf_list(&T, d, names, sizeof(names), 4096);
	ck_assert_str_eq(names, ".,..,moved.txt,dd,sub2");
	tf_list(&T, 1, names, sizeof(names), 4096);
	ck_assert_str_eq(names, ".,..,empty,hello.txt,link,hl,d");
	ck_assert_uint_eq(tf_getattr(&T, d, &err).nlink, 4);
	/* Unlink a lower file (a whiteout), then rmdir. */
	ck_assert_int_eq(tf_req(&T, FUSE_UNLINK, sub, "inner.txt", 10, NULL, 0, NULL, 0), 0);
	tf_lookup(&T, sub, "inner.txt", &err);
	ck_assert_int_eq(err, -ENOENT);
	ck_assert_int_eq(tf_read(&T, inner, rfh, 0, buf, 8), 6); /* open file survives */
	ck_assert_int_eq(tf_req(&T, FUSE_RMDIR, d, "sub2", 5, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(tf_req(&T, FUSE_RMDIR, d, "dd", 3, NULL, 0, NULL, 0), 0);
	/* Nothing may be created in a removed directory. */
	ck_assert_int_eq(do_mkdir(&T, dd, "zombie", NULL), -ENOENT);
	/* Symlink, mknod (fifo). */
	ck_assert_int_eq(tf_req(&T, FUSE_SYMLINK, 1, "sl", 3, "d/moved.txt", 12, NULL, 0), 0);
	uint64_t sl = ((struct fuse_entry_out *)tf_body(&T))->nodeid;
	ck_assert_int_eq(tf_req(&T, FUSE_READLINK, sl, NULL, 0, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(memcmp(tf_body(&T), "d/moved.txt", 11), 0);
	struct fuse_mknod_in mi = {.mode = S_IFIFO | 0600};
	ck_assert_int_eq(tf_req(&T, FUSE_MKNOD, 1, &mi, sizeof(mi), "fifo", 5, NULL, 0), 0);
	ck_assert_uint_eq(((struct fuse_entry_out *)tf_body(&T))->attr.mode, S_IFIFO | 0600);
	mi.mode = S_IFDIR | 0700;
	ck_assert_int_eq(tf_req(&T, FUSE_MKNOD, 1, &mi, sizeof(mi), "notdir", 7, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_rename_flags_and_links)
{
	int err;
	ck_assert_int_eq(do_rename(&T, 1, "hello.txt", 1, "empty", RENAME_NOREPLACE), -EEXIST);
	uint64_t h = tf_lookup(&T, 1, "hello.txt", NULL), e = tf_lookup(&T, 1, "empty", NULL);
	ck_assert_int_eq(do_rename(&T, 1, "hello.txt", 1, "empty", RENAME_EXCHANGE), 0);
	ck_assert_uint_eq(tf_lookup(&T, 1, "empty", NULL), h);
	ck_assert_uint_eq(tf_lookup(&T, 1, "hello.txt", NULL), e);
	ck_assert_int_eq(do_rename(&T, 1, "hello.txt", 1, "x", RENAME_WHITEOUT), -EINVAL);
	ck_assert_int_eq(do_rename(&T, 1, "hello.txt", 1, "x", 0x80), -EINVAL);
	/* Replace a file by rename: the old target's node goes away. */
	ck_assert_int_eq(do_rename(&T, 1, "hello.txt", 1, "empty", 0), 0);
	ck_assert_uint_eq(tf_lookup(&T, 1, "empty", NULL), e);
	ck_assert_uint_eq(tf_getattr(&T, h, &err).nlink, 1); /* still "hl" */
	/* Hard links. */
	struct fuse_link_in li = {.oldnodeid = h};
	ck_assert_int_eq(tf_req(&T, FUSE_LINK, 1, &li, sizeof(li), "hl2", 4, NULL, 0), 0);
	ck_assert_uint_eq(((struct fuse_entry_out *)tf_body(&T))->attr.nlink, 2);
	ck_assert_int_eq(tf_req(&T, FUSE_LINK, 1, &li, sizeof(li), "hl2", 4, NULL, 0), -EEXIST);
	li.oldnodeid = 1;
	ck_assert_int_eq(tf_req(&T, FUSE_LINK, 1, &li, sizeof(li), "rootlink", 9, NULL, 0), -EPERM);
	ck_assert_int_eq(tf_req(&T, FUSE_UNLINK, 1, "hl", 3, NULL, 0, NULL, 0), 0);
	uint64_t fh = tf_open(&T, h, O_RDONLY, &err);
	char buf[32];
	ck_assert_int_eq(tf_read(&T, h, fh, 0, buf, 32), 12);
}
END_TEST

START_TEST(test_setattr)
{
	int err;
	uint64_t h = tf_lookup(&T, 1, "hello.txt", NULL);
	struct fuse_setattr_in si = {.valid = FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_MTIME,
				     .mode = 0600, .uid = 1000, .gid = 100, .mtime = 1234567890, .mtimensec = 5};
	ck_assert_int_eq(tf_req(&T, FUSE_SETATTR, h, &si, sizeof(si), NULL, 0, NULL, 0), 0);
	struct fuse_attr a = ((struct fuse_attr_out *)tf_body(&T))->attr;
	ck_assert_uint_eq(a.mode, S_IFREG | 0600);
	ck_assert_uint_eq(a.uid, 1000);
	ck_assert_uint_eq(a.gid, 100);
	ck_assert_uint_eq(a.mtime, 1234567890);
	ck_assert_uint_eq(a.mtimensec, 5);
	struct fs_stats st;
	fs_get_stats(T.fs, &st);
	ck_assert_uint_eq(st.copy_ups, 0); /* metadata does not copy content up */
	si = (struct fuse_setattr_in){.valid = FATTR_SIZE, .size = 5};
	ck_assert_int_eq(tf_req(&T, FUSE_SETATTR, h, &si, sizeof(si), NULL, 0, NULL, 0), 0);
	uint64_t fh = tf_open(&T, h, O_RDONLY, &err);
	char buf[32];
	ck_assert_int_eq(tf_read(&T, h, fh, 0, buf, 32), 5);
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	si.size = 1ull << 62;
	ck_assert_int_eq(tf_req(&T, FUSE_SETATTR, h, &si, sizeof(si), NULL, 0, NULL, 0), -EFBIG);
	si = (struct fuse_setattr_in){.valid = FATTR_SIZE | FATTR_FH, .size = 1, .fh = 999};
	ck_assert_int_eq(tf_req(&T, FUSE_SETATTR, h, &si, sizeof(si), NULL, 0, NULL, 0), -EBADF);
	si = (struct fuse_setattr_in){.valid = FATTR_SIZE, .size = 1};
	ck_assert_int_eq(tf_req(&T, FUSE_SETATTR, 1, &si, sizeof(si), NULL, 0, NULL, 0), -EISDIR);
}
END_TEST

START_TEST(test_hostile_names)
{
	int err;
	const char *bad[] = {"a/b", "..", ".", "/", "", "x/"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tf_lookup(&T, 1, bad[i], &err);
		ck_assert_int_eq(err, -EINVAL);
		ck_assert_int_eq(do_mkdir(&T, 1, bad[i], NULL), -EINVAL);
		ck_assert_int_eq(do_rename(&T, 1, "hello.txt", 1, bad[i], 0), -EINVAL);
	}
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[256] = 0; /* 256 bytes: one too many */
	ck_assert_int_eq(do_mkdir(&T, 1, longname, NULL), -ENAMETOOLONG);
	longname[255] = 0;
	ck_assert_int_eq(do_mkdir(&T, 1, longname, NULL), 0);
	/* A name without its NUL. */
	ck_assert_int_eq(tf_req(&T, FUSE_LOOKUP, 1, "hello.txt", 9, NULL, 0, NULL, 0), -EINVAL);
	struct fuse_mkdir_in mi = {.mode = 0755};
	ck_assert_int_eq(tf_req(&T, FUSE_MKDIR, 1, &mi, sizeof(mi), "abc", 3, NULL, 0), -EINVAL);
	/* A symlink whose target is too long; the second name missing. */
	char *target = malloc(5000);
	memset(target, 'x', 4999);
	target[4999] = 0;
	ck_assert_int_eq(tf_req(&T, FUSE_SYMLINK, 1, "s", 2, target, 5000, NULL, 0), -EINVAL);
	target[4096] = 0;
	ck_assert_int_eq(tf_req(&T, FUSE_SYMLINK, 1, "s", 2, target, 4097, NULL, 0), -ENAMETOOLONG);
	free(target);
	ck_assert_int_eq(tf_req(&T, FUSE_SYMLINK, 1, "s", 2, NULL, 0, NULL, 0), -EINVAL);
	struct fuse_rename_in ri = {.newdir = 1};
	ck_assert_int_eq(tf_req(&T, FUSE_RENAME, 1, &ri, sizeof(ri), "hello.txt", 10, NULL, 0), -EINVAL);
	/* Nothing was created on the host but inode-numbered upper files. */
	char p[400];
	snprintf(p, sizeof(p), "%s/a", T.state);
	ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

START_TEST(test_hostile_ids_and_lengths)
{
	int err;
	tf_getattr(&T, 0, &err);
	ck_assert_int_eq(err, -ENOENT);
	tf_getattr(&T, 999999, &err);
	ck_assert_int_eq(err, -ENOENT);
	tf_getattr(&T, ~0ull, &err);
	ck_assert_int_eq(err, -ENOENT);
	/* A real node the kernel was never told about: unknown. */
	tf_getattr(&T, 3, &err);
	ck_assert_int_eq(err, -ENOENT);
	/* Header length larger than the buffer, smaller than a header. */
	struct fuse_in_header h = {.len = 1000, .opcode = FUSE_GETATTR, .unique = 5, .nodeid = 1};
	uint8_t out[256];
	struct iovec in = {&h, sizeof(h)}, o = {out, sizeof(out)};
	ck_assert_uint_eq(fs_handle(T.fs, &in, 1, &o, 1), 16);
	ck_assert_int_eq(((struct fuse_out_header *)out)->error, -EINVAL);
	h.len = 8;
	ck_assert_uint_eq(fs_handle(T.fs, &in, 1, &o, 1), 16);
	ck_assert_int_eq(((struct fuse_out_header *)out)->error, -EINVAL);
	/* Shorter than a header, or no room for a reply: no answer at all. */
	in.iov_len = 20;
	ck_assert_uint_eq(fs_handle(T.fs, &in, 1, &o, 1), 0);
	in.iov_len = sizeof(h);
	h.len = sizeof(h);
	o.iov_len = 15;
	ck_assert_uint_eq(fs_handle(T.fs, &in, 1, &o, 1), 0);
	ck_assert_uint_eq(fs_handle(T.fs, &in, 1, NULL, 0), 0);
	/* A reply that does not fit: an error header instead. */
	o.iov_len = 20;
	ck_assert_uint_eq(fs_handle(T.fs, &in, 1, &o, 1), 16);
	ck_assert_int_eq(((struct fuse_out_header *)out)->error, -EINVAL);
	/* Bodies too short for their op. */
	ck_assert_int_eq(tf_req(&T, FUSE_OPEN, 1, "x", 1, NULL, 0, NULL, 0), -EINVAL);
	ck_assert_int_eq(tf_req(&T, FUSE_READ, 1, "x", 1, NULL, 0, NULL, 0), -EINVAL);
	ck_assert_int_eq(tf_req(&T, FUSE_SETATTR, 1, "xx", 2, NULL, 0, NULL, 0), -EINVAL);
	/* WRITE claiming more data than it carries. */
	uint64_t fh = 0;
	uint64_t n = do_create(&T, 1, "w", 0644, &fh, &err);
	struct fuse_write_in wi = {.fh = fh, .offset = 0, .size = 100};
	ck_assert_int_eq(tf_req(&T, FUSE_WRITE, n, &wi, sizeof(wi), "abc", 3, NULL, 0), -EINVAL);
	wi.size = 3;
	wi.offset = ~0ull - 1;
	ck_assert_int_eq(tf_req(&T, FUSE_WRITE, n, &wi, sizeof(wi), "abc", 3, NULL, 0), -EFBIG);
	/* Unknown opcodes, xattrs. */
	ck_assert_int_eq(tf_req(&T, 9999, 1, NULL, 0, NULL, 0, NULL, 0), -ENOSYS);
	ck_assert_int_eq(tf_req(&T, FUSE_IOCTL, 1, NULL, 0, NULL, 0, NULL, 0), -ENOSYS);
	struct fuse_getxattr_in gi = {.size = 100};
	ck_assert_int_eq(tf_req(&T, FUSE_GETXATTR, 1, &gi, sizeof(gi), "user.x", 7, NULL, 0), -ENODATA);
	/* FORGET / BATCH_FORGET never answer, even with lying counts. */
	struct fuse_batch_forget_in bi = {.count = 1000000};
	struct fuse_forget_one one = {.nodeid = 1, .nlookup = 5};
	ck_assert_int_eq(tf_req(&T, FUSE_BATCH_FORGET, 0, &bi, sizeof(bi), &one, sizeof(one), NULL, 0), 1);
	tf_getattr(&T, 1, &err); /* the root cannot be forgotten */
	ck_assert_int_eq(err, 0);
}
END_TEST

START_TEST(test_forget)
{
	int err;
	uint64_t n = tf_lookup(&T, 1, "empty", NULL);
	tf_lookup(&T, 1, "empty", NULL);
	struct fuse_forget_in fi = {.nlookup = 1};
	tf_req(&T, FUSE_FORGET, n, &fi, sizeof(fi), NULL, 0, NULL, 0);
	tf_getattr(&T, n, &err);
	ck_assert_int_eq(err, 0);
	tf_req(&T, FUSE_FORGET, n, &fi, sizeof(fi), NULL, 0, NULL, 0);
	tf_getattr(&T, n, &err);
	ck_assert_int_eq(err, -ENOENT); /* forgotten: unknown again */
	ck_assert_uint_eq(tf_lookup(&T, 1, "empty", NULL), n); /* still in the tree */
	/* An unlinked, forgotten file is gone for good. */
	ck_assert_int_eq(tf_req(&T, FUSE_UNLINK, 1, "empty", 6, NULL, 0, NULL, 0), 0);
	fi.nlookup = 1;
	tf_req(&T, FUSE_FORGET, n, &fi, sizeof(fi), NULL, 0, NULL, 0);
	tf_getattr(&T, n, &err);
	ck_assert_int_eq(err, -ENOENT);
}
END_TEST

START_TEST(test_before_init_and_misc)
{
	/* A fresh server answers EIO before INIT. */
	char err[256];
	struct fs_options o = {.manifest = T.mf, .backend = &fs_backend_dir,
			       .backend_ctx = fs_backend_dir_open(T.lower), .state_dir = T.state};
	struct fs *fs2 = fs_create(&o, err, sizeof(err));
	ck_assert_ptr_nonnull(fs2);
	struct fs *keep = T.fs;
	T.fs = fs2;
	int e;
	tf_getattr(&T, 1, &e);
	ck_assert_int_eq(e, -EIO);
	/* INIT from a newer major: we answer with ours. */
	struct fuse_init_in in = {.major = 8, .minor = 0};
	ck_assert_int_eq(tf_req(&T, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(tf_body_len(&T), 8);
	in.major = 6;
	ck_assert_int_eq(tf_req(&T, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, NULL, 0), -EPROTO);
	T.fs = keep;
	fs_destroy(fs2);
	/* STATFS, ACCESS, LSEEK, FSYNC, FLUSH, FALLOCATE. */
	ck_assert_int_eq(tf_req(&T, FUSE_STATFS, 1, NULL, 0, NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(((struct fuse_statfs_out *)tf_body(&T))->st.namelen, 255);
	struct fuse_access_in ai = {.mask = X_OK};
	uint64_t h = tf_lookup(&T, 1, "hello.txt", NULL);
	ck_assert_int_eq(tf_req(&T, FUSE_ACCESS, h, &ai, sizeof(ai), NULL, 0, NULL, 0), -EACCES);
	ai.mask = R_OK | W_OK;
	ck_assert_int_eq(tf_req(&T, FUSE_ACCESS, h, &ai, sizeof(ai), NULL, 0, NULL, 0), 0);
	uint64_t fh = tf_open(&T, h, O_RDWR, &e);
	struct fuse_lseek_in li = {.fh = fh, .offset = 3, .whence = SEEK_DATA};
	ck_assert_int_eq(tf_req(&T, FUSE_LSEEK, h, &li, sizeof(li), NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(((struct fuse_lseek_out *)tf_body(&T))->offset, 3);
	li.whence = SEEK_HOLE;
	ck_assert_int_eq(tf_req(&T, FUSE_LSEEK, h, &li, sizeof(li), NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(((struct fuse_lseek_out *)tf_body(&T))->offset, 12);
	li.offset = 100;
	ck_assert_int_eq(tf_req(&T, FUSE_LSEEK, h, &li, sizeof(li), NULL, 0, NULL, 0), -ENXIO);
	struct fuse_fallocate_in fa = {.fh = fh, .offset = 0, .length = 4096};
	ck_assert_int_eq(tf_req(&T, FUSE_FALLOCATE, h, &fa, sizeof(fa), NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(tf_getattr(&T, h, &e).size, 4096);
	/* Past the size cap, wrapping, or an unknown mode: refused before
	 * the host sees it, the file unchanged. */
	fa = (struct fuse_fallocate_in){.fh = fh, .offset = FS_DEFAULT_MAX_FILE_SIZE - 10, .length = 11};
	ck_assert_int_eq(tf_req(&T, FUSE_FALLOCATE, h, &fa, sizeof(fa), NULL, 0, NULL, 0), -EFBIG);
	fa = (struct fuse_fallocate_in){.fh = fh, .offset = ~0ull - 5, .length = 10};
	ck_assert_int_eq(tf_req(&T, FUSE_FALLOCATE, h, &fa, sizeof(fa), NULL, 0, NULL, 0), -EFBIG);
	fa = (struct fuse_fallocate_in){.fh = fh, .offset = 10, .length = ~0ull - 5};
	ck_assert_int_eq(tf_req(&T, FUSE_FALLOCATE, h, &fa, sizeof(fa), NULL, 0, NULL, 0), -EFBIG);
	fa = (struct fuse_fallocate_in){.fh = fh, .offset = 0, .length = 8192, .mode = 0x80000000u};
	ck_assert_int_eq(tf_req(&T, FUSE_FALLOCATE, h, &fa, sizeof(fa), NULL, 0, NULL, 0), -EOPNOTSUPP);
	ck_assert_uint_eq(tf_getattr(&T, h, &e).size, 4096);
	struct fuse_setattr_in big = {.valid = FATTR_SIZE, .size = FS_DEFAULT_MAX_FILE_SIZE + 1};
	ck_assert_int_eq(tf_req(&T, FUSE_SETATTR, h, &big, sizeof(big), NULL, 0, NULL, 0), -EFBIG);
	struct fuse_write_in capw = {.fh = fh, .offset = FS_DEFAULT_MAX_FILE_SIZE - 2, .size = 3};
	ck_assert_int_eq(tf_req(&T, FUSE_WRITE, h, &capw, sizeof(capw), "abc", 3, NULL, 0), -EFBIG);
	struct fuse_fsync_in fs_in = {.fh = fh};
	ck_assert_int_eq(tf_req(&T, FUSE_FSYNC, h, &fs_in, sizeof(fs_in), NULL, 0, NULL, 0), 0);
	struct fuse_flush_in fl = {.fh = fh};
	ck_assert_int_eq(tf_req(&T, FUSE_FLUSH, h, &fl, sizeof(fl), NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(tf_req(&T, FUSE_DESTROY, 1, NULL, 0, NULL, 0, NULL, 0), 0);
}
END_TEST

/* Random requests: must never crash (ASan/UBSan in make asan) and every
 * reply must be well-formed. */
START_TEST(test_garbage)
{
	srand(42);
	uint8_t buf[600];
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)(rand() % (int)sizeof(buf));
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)rand();
		if (len >= sizeof(struct fuse_in_header)) {
			struct fuse_in_header *h = (struct fuse_in_header *)buf;
			if (rand() % 2)
				h->len = (uint32_t)len;
			h->opcode = (uint32_t)(rand() % 52);
			if (rand() % 2)
				h->nodeid = (uint64_t)(rand() % 20);
		}
		struct iovec in = {buf, len};
		uint8_t out[512];
		struct iovec o = {out, (size_t)(rand() % (int)sizeof(out))};
		size_t r = fs_handle(T.fs, &in, 1, &o, 1);
		ck_assert_uint_le(r, o.iov_len);
		if (r)
			ck_assert_uint_eq(((struct fuse_out_header *)out)->len, r);
	}
	int err;
	tf_getattr(&T, 1, &err);
	ck_assert_int_eq(err, 0);
}
END_TEST

/* Several threads at once on one small namespace (as the device's
 * workers do): creates, writes, reads, renames, unlinks, mkdir/rmdir,
 * lookups and forgets race. Nothing may crash (ASan/TSan builds) and the
 * server must still answer. */
struct racer {
	struct fs *fs;
	unsigned seed;
};

static int race_req(struct fs *fs, uint32_t op, uint64_t node, const void *a, size_t al,
		    const void *b, size_t bl, const void *c, size_t cl, uint8_t *out, size_t outlen)
{
	uint8_t buf[1024];
	size_t len = sizeof(struct fuse_in_header) + al + bl + cl;
	struct fuse_in_header h = {.len = (uint32_t)len, .opcode = op, .unique = 1, .nodeid = node};
	memcpy(buf, &h, sizeof(h));
	if (al)
		memcpy(buf + sizeof(h), a, al);
	if (bl)
		memcpy(buf + sizeof(h) + al, b, bl);
	if (cl)
		memcpy(buf + sizeof(h) + al + bl, c, cl);
	struct iovec in = {buf, len}, o = {out, outlen};
	size_t r = fs_handle(fs, &in, 1, &o, 1);
	return r ? ((struct fuse_out_header *)out)->error : 1;
}

static void *racer_main(void *arg)
{
	struct racer *rc = arg;
	uint8_t out[8192];
	char n1[8], n2[8];
	for (int i = 0; i < 3000; i++) {
		unsigned r = (unsigned)rand_r(&rc->seed);
		snprintf(n1, sizeof(n1), "n%u", r % 8);
		snprintf(n2, sizeof(n2), "n%u", (r >> 8) % 8);
		uint64_t node = 1 + (r >> 16) % 40;
		switch (r % 11) {
		case 0: {
			struct fuse_create_in ci = {.flags = O_RDWR, .mode = S_IFREG | 0644};
			if (race_req(rc->fs, FUSE_CREATE, 1, &ci, sizeof(ci), n1, strlen(n1) + 1, NULL, 0, out, sizeof(out)) == 0) {
				struct fuse_entry_out *e = (void *)(out + 16);
				struct fuse_open_out *oo = (void *)(e + 1);
				struct fuse_write_in wi = {.fh = oo->fh, .size = 5};
				race_req(rc->fs, FUSE_WRITE, e->nodeid, &wi, sizeof(wi), "hello", 5, NULL, 0, out, sizeof(out));
				struct fuse_release_in ri = {.fh = oo->fh};
				race_req(rc->fs, FUSE_RELEASE, e->nodeid, &ri, sizeof(ri), NULL, 0, NULL, 0, out, sizeof(out));
			}
			break;
		}
		case 1: race_req(rc->fs, FUSE_UNLINK, 1, n1, strlen(n1) + 1, NULL, 0, NULL, 0, out, sizeof(out)); break;
		case 2: {
			struct fuse_rename_in ri = {.newdir = 1};
			race_req(rc->fs, FUSE_RENAME, 1, &ri, sizeof(ri), n1, strlen(n1) + 1, n2, strlen(n2) + 1, out, sizeof(out));
			break;
		}
		case 3: {
			struct fuse_mkdir_in mi = {.mode = 0755};
			race_req(rc->fs, FUSE_MKDIR, 1, &mi, sizeof(mi), n1, strlen(n1) + 1, NULL, 0, out, sizeof(out));
			break;
		}
		case 4: race_req(rc->fs, FUSE_RMDIR, 1, n1, strlen(n1) + 1, NULL, 0, NULL, 0, out, sizeof(out)); break;
		case 5: race_req(rc->fs, FUSE_LOOKUP, 1, n1, strlen(n1) + 1, NULL, 0, NULL, 0, out, sizeof(out)); break;
		case 6: {
			struct fuse_forget_in fi = {.nlookup = 1};
			race_req(rc->fs, FUSE_FORGET, node, &fi, sizeof(fi), NULL, 0, NULL, 0, out, sizeof(out));
			break;
		}
		case 7: {
			struct fuse_open_in oi = {.flags = (r & 1) ? O_RDWR : O_RDONLY};
			if (race_req(rc->fs, FUSE_OPEN, node, &oi, sizeof(oi), NULL, 0, NULL, 0, out, sizeof(out)) == 0) {
				uint64_t fh = ((struct fuse_open_out *)(out + 16))->fh;
				struct fuse_read_in ri = {.fh = fh, .size = 4096};
				race_req(rc->fs, FUSE_READ, node, &ri, sizeof(ri), NULL, 0, NULL, 0, out, sizeof(out));
				struct fuse_release_in rel = {.fh = fh};
				race_req(rc->fs, FUSE_RELEASE, node, &rel, sizeof(rel), NULL, 0, NULL, 0, out, sizeof(out));
			}
			break;
		}
		case 8: {
			struct fuse_setattr_in si = {.valid = FATTR_SIZE, .size = r % 100};
			race_req(rc->fs, FUSE_SETATTR, node, &si, sizeof(si), NULL, 0, NULL, 0, out, sizeof(out));
			break;
		}
		case 9: {
			struct fuse_link_in li = {.oldnodeid = node};
			race_req(rc->fs, FUSE_LINK, 1, &li, sizeof(li), n1, strlen(n1) + 1, NULL, 0, out, sizeof(out));
			break;
		}
		default: {
			struct fuse_open_in oi = {0};
			if (race_req(rc->fs, FUSE_OPENDIR, 1, &oi, sizeof(oi), NULL, 0, NULL, 0, out, sizeof(out)) == 0) {
				uint64_t fh = ((struct fuse_open_out *)(out + 16))->fh;
				struct fuse_read_in ri = {.fh = fh, .size = 4096};
				race_req(rc->fs, FUSE_READDIRPLUS, 1, &ri, sizeof(ri), NULL, 0, NULL, 0, out, sizeof(out));
				struct fuse_release_in rel = {.fh = fh};
				race_req(rc->fs, FUSE_RELEASEDIR, 1, &rel, sizeof(rel), NULL, 0, NULL, 0, out, sizeof(out));
			}
		}
		}
	}
	return NULL;
}

START_TEST(test_concurrent_random)
{
	pthread_t th[4];
	struct racer rc[4];
	for (int i = 0; i < 4; i++) {
		rc[i] = (struct racer){.fs = T.fs, .seed = 1234u + (unsigned)i};
		pthread_create(&th[i], NULL, racer_main, &rc[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	int err;
	tf_getattr(&T, 1, &err);
	ck_assert_int_eq(err, 0);
	char names[1024];
	tf_list(&T, 1, names, sizeof(names), 4096); /* the listing is still well-formed */
	ck_assert(strncmp(names, ".,..", 4) == 0);
}
END_TEST

/* Item 4: a name whose path from the root would pass MANIFEST_PATH_MAX
 * (4,095 bytes) cannot be written back; it is refused when made, with
 * ENAMETOOLONG, by every request that makes a name. */
#define SEG 100 /* bytes of one directory name below */
START_TEST(test_path_too_long_refused)
{
	char seg[SEG + 1];
	memset(seg, 'd', SEG);
	seg[SEG] = 0;
	int err;
	/* A chain of directories: "top/ddd.../ddd.../..." */
	uint64_t top = tf_mkdir(&T, 1, "top", &err), dir = top;
	ck_assert_int_eq(err, 0);
	size_t len = 3; /* "top" */
	int levels = 0;
	for (int guard = 0; guard < 1000; guard++) { /* today's code refused none */
		uint64_t n = tf_mkdir(&T, dir, seg, &err);
		if (!n)
			break;
		dir = n;
		len += 1 + SEG;
		levels++;
	}
	ck_assert_int_eq(err, -ENAMETOOLONG);
	ck_assert_uint_le(len, MANIFEST_PATH_MAX);
	ck_assert_uint_gt(len + 1 + SEG, MANIFEST_PATH_MAX);
	ck_assert_int_eq(levels, (MANIFEST_PATH_MAX - 3) / (SEG + 1));
	/* A file name that ends exactly at the limit fits, one byte more not. */
	size_t room = MANIFEST_PATH_MAX - len - 1;
	char name[300];
	memset(name, 'f', sizeof(name));
	name[room + 1] = 0;
	ck_assert_uint_eq(tf_create(&T, dir, name, &err), 0);
	ck_assert_int_eq(err, -ENAMETOOLONG);
	name[room] = 0;
	uint64_t f = tf_create(&T, dir, name, &err);
	ck_assert_int_eq(err, 0);
	/* SYMLINK, MKNOD and LINK make names too. */
	name[room] = 'g';
	name[room + 1] = 0;
	ck_assert_int_eq(tf_req(&T, FUSE_SYMLINK, dir, name, room + 2, "x", 2, NULL, 0),
			 -ENAMETOOLONG);
	struct fuse_mknod_in mi = {.mode = S_IFIFO | 0644};
	ck_assert_int_eq(tf_req(&T, FUSE_MKNOD, dir, &mi, sizeof(mi), name, room + 2, NULL, 0),
			 -ENAMETOOLONG);
	struct fuse_link_in li = {.oldnodeid = f};
	ck_assert_int_eq(tf_req(&T, FUSE_LINK, dir, &li, sizeof(li), name, room + 2, NULL, 0),
			 -ENAMETOOLONG);
	/* RENAME of a file to a name past the limit. */
	struct fuse_rename_in rn = {.newdir = dir};
	char req[600];
	size_t rl = (size_t)snprintf(req, sizeof(req), "%.*s", (int)room, name) + 1;
	memcpy(req + rl, name, room + 2);
	ck_assert_int_eq(tf_req(&T, FUSE_RENAME, dir, &rn, sizeof(rn), req, rl + room + 2, NULL, 0),
			 -ENAMETOOLONG);
	/* RENAME of the directory holding the chain: a longer name, or a
	 * move one level down, would push its deepest path past the limit. */
	rn.newdir = 1;
	ck_assert_int_eq(tf_req(&T, FUSE_RENAME, 1, &rn, sizeof(rn), "top\0top2", 9, NULL, 0),
			 -ENAMETOOLONG);
	uint64_t sub = tf_lookup(&T, 1, "sub", &err);
	rn.newdir = sub;
	ck_assert_int_eq(tf_req(&T, FUSE_RENAME, 1, &rn, sizeof(rn), "top\0top", 8, NULL, 0),
			 -ENAMETOOLONG);
	struct fuse_rename2_in r2 = {.newdir = 1, .flags = RENAME_EXCHANGE};
	ck_assert_int_eq(tf_req(&T, FUSE_RENAME2, 1, &r2, sizeof(r2), "top\0hello.txt", 14, NULL,
				0), -ENAMETOOLONG); /* top would get a longer name */
	tf_mkdir(&T, 1, "abc", &err);
	ck_assert_int_eq(tf_req(&T, FUSE_RENAME2, 1, &r2, sizeof(r2), "top\0abc", 8, NULL, 0), 0);
	ck_assert_int_eq(tf_req(&T, FUSE_RENAME2, 1, &r2, sizeof(r2), "abc\0top", 8, NULL, 0), 0);
	uint64_t dir1 = tf_mkdir(&T, 1, "x", &err);
	ck_assert_int_eq(err, 0);
	r2.newdir = dir1;
	ck_assert_int_eq(tf_lookup(&T, dir1, "top", &err), 0);
	tf_mkdir(&T, dir1, "yy", &err);
	ck_assert_int_eq(tf_req(&T, FUSE_RENAME2, 1, &r2, sizeof(r2), "top\0yy", 7, NULL, 0),
			 -ENAMETOOLONG);
	/* A same-length rename is fine, and the paths below follow it: the
	 * deepest directory still has no room for one more level. */
	rn.newdir = 1;
	ck_assert_int_eq(tf_req(&T, FUSE_RENAME, 1, &rn, sizeof(rn), "top\0TOP", 8, NULL, 0), 0);
	ck_assert_uint_eq(tf_mkdir(&T, dir, seg, &err), 0);
	ck_assert_int_eq(err, -ENAMETOOLONG);
	/* Moved to a shorter name, the chain has room for one more level. */
	ck_assert_int_eq(tf_req(&T, FUSE_RENAME, 1, &rn, sizeof(rn), "TOP\0T", 6, NULL, 0), 0);
	size_t slack = MANIFEST_PATH_MAX - (len - 2);
	if (slack >= 1 + SEG) {
		tf_mkdir(&T, dir, seg, &err);
		ck_assert_int_eq(err, 0);
	} else {
		name[slack - 1] = 0;
		tf_create(&T, dir, name, &err);
		ck_assert_int_eq(err, 0);
	}
}
END_TEST

/* The bound on what the guest adds to the table (--fs-max-files). */
START_TEST(test_max_files)
{
	tf_stop(&T);
	tf_setup_dirs(&T);
	make_lower(&T);
	T.max_files = 5;
	tf_start(&T, NULL, NULL);
	int err;
	char name[32];
	uint64_t f[4];
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		f[i] = tf_create(&T, 1, name, &err);
		ck_assert_int_eq(err, 0);
	}
	uint64_t d = tf_mkdir(&T, 1, "dir", &err);
	ck_assert_int_eq(err, 0);
	tf_create(&T, d, "one-too-many", &err);
	ck_assert_int_eq(err, -ENOSPC);
	tf_mkdir(&T, d, "one-too-many", &err);
	ck_assert_int_eq(err, -ENOSPC);
	ck_assert_int_eq(tf_req(&T, FUSE_SYMLINK, 1, "l2", 3, "x", 2, NULL, 0), -ENOSPC);
	uint64_t h = tf_lookup(&T, 1, "hello.txt", &err);
	struct fuse_link_in li = {.oldnodeid = h};
	ck_assert_int_eq(tf_req(&T, FUSE_LINK, 1, &li, sizeof(li), "hl2", 4, NULL, 0), -ENOSPC);
	/* Deleting makes room once the node is gone (the guest forgot it);
	 * image files count too: they are the base. */
	ck_assert_int_eq(tf_req(&T, FUSE_UNLINK, 1, "f0", 3, NULL, 0, NULL, 0), 0);
	struct fuse_forget_in fi = {.nlookup = 1};
	tf_req(&T, FUSE_FORGET, f[0], &fi, sizeof(fi), NULL, 0, NULL, 0);
	tf_create(&T, d, "now-fits", &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(tf_req(&T, FUSE_UNLINK, 1, "hello.txt", 10, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(tf_req(&T, FUSE_UNLINK, 1, "hl", 3, NULL, 0, NULL, 0), 0);
	tf_create(&T, d, "still-full", &err); /* the guest holds a lookup of it */
	ck_assert_int_eq(err, -ENOSPC);
	tf_req(&T, FUSE_FORGET, h, &fi, sizeof(fi), NULL, 0, NULL, 0);
	tf_create(&T, d, "fits-too", &err);
	ck_assert_int_eq(err, 0);
}
END_TEST

static Suite *fuse_suite(void)
{
	Suite *s = suite_create("fuse");
	TCase *tc = tcase_create("ops");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lookup_getattr_readlink);
	tcase_add_test(tc, test_path_too_long_refused);
	tcase_add_test(tc, test_max_files);
	tcase_add_test(tc, test_read);
	tcase_add_test(tc, test_readdir);
	tcase_add_test(tc, test_write_copy_up);
	tcase_add_test(tc, test_namespace_ops);
	tcase_add_test(tc, test_rename_flags_and_links);
	tcase_add_test(tc, test_setattr);
	tcase_add_test(tc, test_hostile_names);
	tcase_add_test(tc, test_hostile_ids_and_lengths);
	tcase_add_test(tc, test_forget);
	tcase_add_test(tc, test_before_init_and_misc);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_concurrent_random);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(fuse_suite)
