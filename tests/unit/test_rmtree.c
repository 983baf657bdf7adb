/* lib/rmtree.c: removes like rm -rf, with no shell, no recursion and no
 * symlink followed. */
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/rmtree.h"

static char dir[256];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s/rmtree.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	ck_assert_int_eq(rmtree(dir), 0);
	ck_assert_int_ne(access(dir, F_OK), 0);
}

static void touch_at(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
}

/* The name that made `rm -rf -- '%s'` delete a sibling directory. */
START_TEST(test_quote_in_name)
{
	char victim[300], odd[700], p[800];
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	ck_assert_int_eq(mkdir(victim, 0755), 0);
	snprintf(p, sizeof(p), "%s/keep", victim);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(odd, sizeof(odd), "%s/victim' '$(touch pwned)", dir);
	ck_assert_int_eq(mkdir(odd, 0755), 0);
	snprintf(p, sizeof(p), "%s/f", odd);
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(rmtree(odd), 0);
	ck_assert_int_ne(access(odd, F_OK), 0);
	snprintf(p, sizeof(p), "%s/keep", victim);
	ck_assert_int_eq(access(p, F_OK), 0);
	snprintf(p, sizeof(p), "%s/pwned", dir);
	ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

/* A link to a directory outside is removed, its target left alone. */
START_TEST(test_symlink_not_followed)
{
	char out[300], tree[300], p[400];
	snprintf(out, sizeof(out), "%s/outside", dir);
	snprintf(tree, sizeof(tree), "%s/tree", dir);
	ck_assert_int_eq(mkdir(out, 0755), 0);
	ck_assert_int_eq(mkdir(tree, 0755), 0);
	snprintf(p, sizeof(p), "%s/precious", out);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(p, sizeof(p), "%s/link", tree);
	ck_assert_int_eq(symlink(out, p), 0);
	ck_assert_int_eq(rmtree(tree), 0);
	ck_assert_int_ne(access(tree, F_OK), 0);
	snprintf(p, sizeof(p), "%s/precious", out);
	ck_assert_int_eq(access(p, F_OK), 0);
	/* path itself a symlink: the link goes, not what it names */
	snprintf(p, sizeof(p), "%s/link2", dir);
	ck_assert_int_eq(symlink(out, p), 0);
	ck_assert_int_eq(rmtree(p), 0);
	snprintf(p, sizeof(p), "%s/precious", out);
	ck_assert_int_eq(access(p, F_OK), 0);
	/* missing: success */
	snprintf(p, sizeof(p), "%s/nothing", dir);
	ck_assert_int_eq(rmtree(p), 0);
}
END_TEST

/* Deeper than PATH_MAX, with files at every level. */
START_TEST(test_deep_tree)
{
	char top[300];
	snprintf(top, sizeof(top), "%s/deep", dir);
	ck_assert_int_eq(mkdir(top, 0755), 0);
	int fd = open(top, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	enum { DEPTH = 3000 }; /* "dir_/" x 3000: 15,000 bytes of path */
	for (int i = 0; i < DEPTH; i++) {
		touch_at(fd, "f");
		ck_assert_int_eq(mkdirat(fd, "dir_", 0755), 0);
		int nfd = openat(fd, "dir_", O_RDONLY | O_DIRECTORY);
		ck_assert_int_ge(nfd, 0);
		close(fd);
		fd = nfd;
	}
	close(fd);
	ck_assert_int_eq(rmtree(top), 0);
	ck_assert_int_ne(access(top, F_OK), 0);
}
END_TEST

static Suite *rmtree_suite(void)
{
	Suite *s = suite_create("rmtree");
	TCase *tc = tcase_create("rmtree");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_quote_in_name);
	tcase_add_test(tc, test_symlink_not_followed);
	tcase_add_test(tc, test_deep_tree);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(rmtree_suite)
