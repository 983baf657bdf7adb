/* lib/: the clock, iovec slices and copies, whole writes, mkdir -p and the
 * ELF checks the kernel loaders share. */
#include "tests/unit/unit.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/elffile.h"
#include "lib/io.h"
#include "lib/iov.h"
#include "lib/mkdir_p.h"
#include "lib/rmtree.h"

static char dir[256];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s/lib.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	ck_assert_int_eq(rmtree(dir), 0);
}

/* --- clock --- */

START_TEST(test_clock)
{
	uint64_t a = clock_now_ns();
	usleep(20000);
	uint64_t b = clock_now_ns();
	ck_assert_uint_ge(b - a, 20 * CLOCK_NS_PER_MS);
	ck_assert_uint_lt(b - a, 5 * CLOCK_NS_PER_S); /* a unit slip (us, ms) shows */
	double s = clock_now_s();
	ck_assert((uint64_t)(s * 1e9) >= b);
	ck_assert((uint64_t)(s * 1e9) - b < 5 * CLOCK_NS_PER_S);
}
END_TEST

/* --- iov --- */

static char b0[4] = "abcd", b1[1] = "e", b2[6] = "fghijk";
static struct iovec three[3] = {{b0, 4}, {b1, 1}, {b2, 6}};

START_TEST(test_iov_slice)
{
	struct iovec out[3];
	/* Across all three, starting inside the first. */
	ck_assert_int_eq(iov_slice(three, 3, 2, 6, out, 3), 3);
	ck_assert_ptr_eq(out[0].iov_base, b0 + 2);
	ck_assert_uint_eq(out[0].iov_len, 2);
	ck_assert_ptr_eq(out[1].iov_base, b1);
	ck_assert_uint_eq(out[1].iov_len, 1);
	ck_assert_ptr_eq(out[2].iov_base, b2);
	ck_assert_uint_eq(out[2].iov_len, 3);
	/* Inside one entry. */
	ck_assert_int_eq(iov_slice(three, 3, 6, 4, out, 1), 1);
	ck_assert_ptr_eq(out[0].iov_base, b2 + 1);
	ck_assert_uint_eq(out[0].iov_len, 4);
	/* Up to the very end, and an empty slice. */
	ck_assert_int_eq(iov_slice(three, 3, 0, 11, out, 3), 3);
	ck_assert_int_eq(iov_slice(three, 3, 11, 0, out, 3), 0);
	/* One byte past the end, an offset past it, too few entries. */
	ck_assert_int_eq(iov_slice(three, 3, 0, 12, out, 3), -1);
	ck_assert_int_eq(iov_slice(three, 3, 11, 1, out, 3), -1);
	ck_assert_int_eq(iov_slice(three, 3, UINT64_MAX, 1, out, 3), -1);
	ck_assert_int_eq(iov_slice(three, 3, 2, 6, out, 2), -1);
}
END_TEST

START_TEST(test_iov_copy)
{
	char got[16] = {0};
	ck_assert_uint_eq(iov_copy_from(three, 3, 3, got, 4), 4);
	ck_assert_str_eq(got, "defg");
	/* Short at the end: what is there, and says so. */
	memset(got, 0, sizeof(got));
	ck_assert_uint_eq(iov_copy_from(three, 3, 8, got, 10), 3);
	ck_assert_str_eq(got, "ijk");
	ck_assert_uint_eq(iov_copy_from(three, 3, 11, got, 1), 0);

	char d0[2], d1[3];
	struct iovec dst[2] = {{d0, 2}, {d1, 3}};
	ck_assert_uint_eq(iov_copy_to(dst, 2, 1, "WXYZ!", 5), 4);
	ck_assert_mem_eq(d0 + 1, "W", 1);
	ck_assert_mem_eq(d1, "XYZ", 3);
}
END_TEST

/* --- write_all --- */

static void on_alarm(int sig)
{
	(void)sig;
}

struct drain {
	int fd;
	size_t got;
	unsigned char *buf;
	size_t cap;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* the writer takes the signals */
	for (;;) {
		size_t want = d->cap - d->got < 4096 ? d->cap - d->got : 4096;
		ssize_t n = want ? read(d->fd, d->buf + d->got, want) : 0;
		if (n <= 0)
			return NULL;
		d->got += (size_t)n;
		usleep(50); /* slower than the writer: it blocks, and signals cut it */
	}
}

/* A pipe read slowly while a 1 kHz timer interrupts the writer without
 * SA_RESTART: write(2) returns short counts and EINTR, and every byte
 * must still arrive once, in order. */
START_TEST(test_write_all_interrupted)
{
	const size_t len = 4u << 20;
	unsigned char *src = malloc(len);
	struct drain d = {.buf = malloc(len + 1), .cap = len + 1};
	ck_assert(src && d.buf);
	for (size_t i = 0; i < len; i++)
		src[i] = (unsigned char)(i * 131 + (i >> 12));
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	d.fd = p[0];
	struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, drain_main, &d), 0);
	struct itimerval tick = {{0, 1000}, {0, 1000}}, off = {{0, 0}, {0, 0}};
	ck_assert_int_eq(setitimer(ITIMER_REAL, &tick, NULL), 0);
	int rc = write_all(p[1], src, len);
	setitimer(ITIMER_REAL, &off, NULL);
	close(p[1]);
	pthread_join(th, NULL);
	close(p[0]);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(d.got, len);
	ck_assert(memcmp(d.buf, src, len) == 0);
	free(src);
	free(d.buf);
}
END_TEST

START_TEST(test_pwrite_all)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/f", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write_all(fd, "0123456789", 10), 0);
	ck_assert_int_eq(pwrite_all(fd, "ab", 2, 3), 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 10); /* the file offset stays */
	ck_assert_int_eq(pwrite_all(fd, "zz", 2, 12), 0);
	char got[16] = {0};
	ck_assert_int_eq(pread(fd, got, sizeof(got), 0), 14);
	ck_assert_mem_eq(got, "012ab56789\0\0zz", 14);
	errno = 0;
	ck_assert_int_eq(pwrite_all(fd, "x", 1, -1), -1);
	ck_assert_int_eq(errno, EINVAL);
	close(fd);
	ck_assert_int_eq(write_all(fd, "x", 1), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(write_all(-1, "", 0), 0); /* nothing to write, nothing tried */
}
END_TEST

/* --- mkdir_p --- */

START_TEST(test_mkdir_p)
{
	char p[PATH_MAX + 100];
	struct stat st;
	snprintf(p, sizeof(p), "%s/a/b//c/", dir);
	ck_assert_int_eq(mkdir_p(p, 0750), 0);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(mkdir_p(p, 0750), 0); /* already there */
	/* A file in the way, as a parent and as the leaf. */
	snprintf(p, sizeof(p), "%s/a/file", dir);
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(mkdir_p(p, 0750), -1);
	ck_assert_int_eq(errno, EEXIST);
	snprintf(p, sizeof(p), "%s/a/file/sub", dir);
	ck_assert_int_eq(mkdir_p(p, 0750), -1);
	ck_assert_int_eq(errno, EEXIST);
	/* A symlink to a directory is a directory. */
	char target[300];
	snprintf(target, sizeof(target), "%s/a/b", dir);
	snprintf(p, sizeof(p), "%s/link", dir);
	ck_assert_int_eq(symlink(target, p), 0);
	snprintf(p, sizeof(p), "%s/link/new", dir);
	ck_assert_int_eq(mkdir_p(p, 0750), 0);
	snprintf(p, sizeof(p), "%s/a/b/new", dir);
	ck_assert_int_eq(stat(p, &st), 0);
	/* Past PATH_MAX. */
	memset(p, 'x', sizeof(p) - 1);
	p[sizeof(p) - 1] = '\0';
	ck_assert_int_eq(mkdir_p(p, 0750), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

/* --- elffile --- */

/* A minimal x86-64 executable: the header, one PT_NOTE and one PT_LOAD
 * whose 16 file bytes follow the program headers. */
struct tiny_elf {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	uint8_t code[16];
};

static void tiny_elf(struct tiny_elf *t)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->eh.e_ident, ELFMAG, SELFMAG);
	t->eh.e_ident[EI_CLASS] = ELFCLASS64;
	t->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	t->eh.e_ident[EI_VERSION] = EV_CURRENT;
	t->eh.e_type = ET_EXEC;
	t->eh.e_machine = EM_X86_64;
	t->eh.e_version = EV_CURRENT;
	t->eh.e_entry = 0x100000;
	t->eh.e_phoff = offsetof(struct tiny_elf, ph);
	t->eh.e_ehsize = sizeof(Elf64_Ehdr);
	t->eh.e_phentsize = sizeof(Elf64_Phdr);
	t->eh.e_phnum = 2;
	t->ph[0] = (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = offsetof(struct tiny_elf, code)};
	t->ph[1] = (Elf64_Phdr){.p_type = PT_LOAD, .p_offset = offsetof(struct tiny_elf, code),
				.p_paddr = 0x100000, .p_vaddr = 0x100000,
				.p_filesz = sizeof(t->code), .p_memsz = 4096};
}

START_TEST(test_elffile)
{
	struct tiny_elf t;
	struct elffile f;
	GElf_Phdr ph;
	char err[256];
	tiny_elf(&t);
	ck_assert_int_eq(elffile_open(&f, &t, sizeof(t), ELFCLASS64, EM_X86_64, err, sizeof(err)), 0);
	ck_assert_uint_eq(f.phnum, 2);
	ck_assert_uint_eq(f.eh.e_entry, 0x100000);
	ck_assert_int_eq(elffile_segment(&f, 0, &ph, err, sizeof(err)), 0); /* a note: skipped */
	ck_assert_int_eq(elffile_segment(&f, 1, &ph, err, sizeof(err)), 1);
	ck_assert_uint_eq(ph.p_paddr, 0x100000);
	ck_assert_uint_eq(ph.p_filesz, 16);
	elffile_close(&f);

	/* A segment whose bytes run one past the file. */
	t.ph[1].p_filesz = sizeof(t.code) + 1;
	ck_assert_int_eq(elffile_open(&f, &t, sizeof(t), ELFCLASS64, EM_X86_64, err, sizeof(err)), 0);
	ck_assert_int_eq(elffile_segment(&f, 1, &ph, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "outside the file"));
	/* More file bytes than memory. */
	t.ph[1].p_filesz = 16;
	t.ph[1].p_memsz = 8;
	elffile_close(&f);
	ck_assert_int_eq(elffile_open(&f, &t, sizeof(t), ELFCLASS64, EM_X86_64, err, sizeof(err)), 0);
	ck_assert_int_eq(elffile_segment(&f, 1, &ph, err, sizeof(err)), -1);
	elffile_close(&f);

	/* The wrong class, machine, type; no program headers; not ELF. */
	tiny_elf(&t);
	ck_assert_int_eq(elffile_open(&f, &t, sizeof(t), ELFCLASS32, EM_386, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not an ELF32 file"));
	ck_assert_int_eq(elffile_open(&f, &t, sizeof(t), ELFCLASS64, EM_AARCH64, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "machine 62"));
	t.eh.e_type = ET_DYN;
	ck_assert_int_eq(elffile_open(&f, &t, sizeof(t), ELFCLASS64, EM_X86_64, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not an x86-64 executable"));
	tiny_elf(&t);
	t.eh.e_phnum = 0;
	ck_assert_int_eq(elffile_open(&f, &t, sizeof(t), ELFCLASS64, EM_X86_64, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "no program headers"));
	/* Cut inside the program headers. */
	tiny_elf(&t);
	ck_assert_int_eq(elffile_open(&f, &t, sizeof(Elf64_Ehdr) + 8, ELFCLASS64, EM_X86_64, err,
				      sizeof(err)), -1);
	static const char text[] = "just text, no ELF at all";
	ck_assert_int_eq(elffile_open(&f, text, sizeof(text), ELFCLASS64, EM_X86_64, err, sizeof(err)), -1);
}
END_TEST

static Suite *lib_suite(void)
{
	Suite *s = suite_create("lib");
	TCase *tc = tcase_create("lib");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_clock);
	tcase_add_test(tc, test_iov_slice);
	tcase_add_test(tc, test_iov_copy);
	tcase_add_test(tc, test_write_all_interrupted);
	tcase_add_test(tc, test_pwrite_all);
	tcase_add_test(tc, test_mkdir_p);
	tcase_add_test(tc, test_elffile);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(lib_suite)
