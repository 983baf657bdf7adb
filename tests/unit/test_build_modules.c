/* image build's kernel modules: paths resolved inside an image's tree
 * (merged /usr, absolute and dangling symlinks, loops) and the module
 * tree added where /lib/modules/<version> resolves, or not at all when
 * the root has its own. */
#include "tests/unit/unit.h"

#include "image/build_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fake_entry {
	const char *path;
	enum manifest_type type;
	const char *target;
};

struct fake_tree {
	const struct fake_entry *v;
	struct manifest_entry e[16];
};

static const struct manifest_entry *fake_lookup(void *ctx, const char *path)
{
	struct fake_tree *t = ctx;
	for (size_t i = 0; t->v[i].path; i++)
		if (strcmp(t->v[i].path, path) == 0) {
			t->e[i].path = (char *)t->v[i].path;
			t->e[i].type = t->v[i].type;
			t->e[i].target = (char *)t->v[i].target;
			return &t->e[i];
		}
	return NULL;
}

static enum image_resolve resolve(const struct fake_entry *v, const char *path, bool follow,
				  char *out)
{
	struct fake_tree t = {.v = v};
	return image_resolve_path(fake_lookup, &t, path, follow, out, MANIFEST_PATH_MAX + 1);
}

START_TEST(resolve_in_tree)
{
	char out[MANIFEST_PATH_MAX + 1];
	static const struct fake_entry merged[] = {
		{"usr", MF_DIR, NULL}, {"usr/lib", MF_DIR, NULL}, {"lib", MF_SYMLINK, "usr/lib"},
		{NULL, 0, NULL}};
	ck_assert_int_eq(resolve(merged, "lib/modules/6.1", false, out), IMAGE_RESOLVE_MISSING);
	ck_assert_str_eq(out, "usr/lib/modules/6.1");
	ck_assert_int_eq(resolve(merged, "lib", false, out), IMAGE_RESOLVE_FOUND);
	ck_assert_str_eq(out, "lib");
	ck_assert_int_eq(resolve(merged, "lib", true, out), IMAGE_RESOLVE_FOUND);
	ck_assert_str_eq(out, "usr/lib");
	ck_assert_int_eq(resolve(merged, "", false, out), IMAGE_RESOLVE_FOUND);
	ck_assert_str_eq(out, "");

	/* Absolute, and ".." past the root: both stay in the image. */
	static const struct fake_entry absl[] = {
		{"usr", MF_DIR, NULL}, {"usr/lib", MF_DIR, NULL}, {"usr/lib/modules", MF_DIR, NULL},
		{"lib", MF_SYMLINK, "/usr/lib"}, {"usr/lib/modules/6.1", MF_SYMLINK, "../../../../../x/6.1"},
		{NULL, 0, NULL}};
	ck_assert_int_eq(resolve(absl, "lib/modules/6.2", false, out), IMAGE_RESOLVE_MISSING);
	ck_assert_str_eq(out, "usr/lib/modules/6.2");
	/* The last component a symlink: found as is, or followed (dangling). */
	ck_assert_int_eq(resolve(absl, "lib/modules/6.1", false, out), IMAGE_RESOLVE_FOUND);
	ck_assert_str_eq(out, "usr/lib/modules/6.1");
	ck_assert_int_eq(resolve(absl, "lib/modules/6.1", true, out), IMAGE_RESOLVE_MISSING);
	ck_assert_str_eq(out, "x/6.1");

	/* A dangling directory symlink leads to where its target would be. */
	static const struct fake_entry dangling[] = {{"lib", MF_SYMLINK, "nowhere/lib"}, {NULL, 0, NULL}};
	ck_assert_int_eq(resolve(dangling, "lib/modules/6.1", false, out), IMAGE_RESOLVE_MISSING);
	ck_assert_str_eq(out, "nowhere/lib/modules/6.1");

	/* A file on the way, and a loop: blocked. */
	static const struct fake_entry file[] = {{"lib", MF_REG, NULL}, {NULL, 0, NULL}};
	ck_assert_int_eq(resolve(file, "lib/modules/6.1", false, out), IMAGE_RESOLVE_BLOCKED);
	static const struct fake_entry loop[] = {
		{"lib", MF_SYMLINK, "a"}, {"a", MF_SYMLINK, "lib"}, {NULL, 0, NULL}};
	ck_assert_int_eq(resolve(loop, "lib/modules/6.1", false, out), IMAGE_RESOLVE_BLOCKED);
	static const struct fake_entry self[] = {{"lib", MF_SYMLINK, "./lib/"}, {NULL, 0, NULL}};
	ck_assert_int_eq(resolve(self, "lib/modules", false, out), IMAGE_RESOLVE_BLOCKED);
}
END_TEST

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static const struct bentry *find(const struct build *b, const char *path)
{
	for (size_t i = b->n; i-- > 0;)
		if (strcmp(b->v[i].e.path, path) == 0)
			return &b->v[i];
	return NULL;
}

static void build_free(struct build *b)
{
	for (size_t i = 0; i < b->n; i++)
		manifest_entry_free(&b->v[i].e);
	free(b->v);
	free(b->inodes);
}

START_TEST(modules_added_or_kept)
{
	char tmpl[] = "/tmp/minivmm-unit.XXXXXX", p[4200];
	char *d = mkdtemp(tmpl);
	ck_assert_ptr_nonnull(d);
	snprintf(p, sizeof(p), "%s/mods", d);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/mods/kernel", d);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/mods/kernel/a.ko", d);
	write_file(p, "ko");
	chmod(p, 0600);
	snprintf(p, sizeof(p), "%s/mods/modules.dep", d);
	write_file(p, "kernel/a.ko:\n");
	snprintf(p, sizeof(p), "%s/mods/build", d);
	ck_assert_int_eq(symlink("/usr/src/nowhere", p), 0);
	snprintf(p, sizeof(p), "%s/out", d);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	char out[4200], mods[4200];
	snprintf(out, sizeof(out), "%s/out", d);
	snprintf(mods, sizeof(mods), "%s/mods", d);

	/* A merged-/usr root: the tree goes under usr/lib. */
	struct build b = {.out = out, .chunk = MANIFEST_DEFAULT_CHUNK};
	struct bentry *e = build_add_entry(&b, "");
	e->e.type = MF_DIR;
	e = build_add_entry(&b, "lib");
	e->e.type = MF_SYMLINK;
	e->e.target = strdup("usr/lib");
	struct build_modules r;
	ck_assert_int_eq(build_add_modules(&b, mods, "6.1.0-test", &r), 0);
	ck_assert_int_eq(r.how, BUILD_MODULES_ADDED);
	ck_assert_str_eq(r.where, "usr/lib/modules/6.1.0-test");
	ck_assert_uint_eq(r.n_files, 2);
	ck_assert_uint_eq(r.n_symlinks, 1);
	ck_assert_uint_eq(r.bytes, 2 + strlen("kernel/a.ko:\n"));
	const struct bentry *ko = find(&b, "usr/lib/modules/6.1.0-test/kernel/a.ko");
	ck_assert_ptr_nonnull(ko);
	ck_assert_int_eq(ko->e.type, MF_REG);
	ck_assert_uint_eq(ko->e.mode, 0644);
	ck_assert_uint_eq(ko->e.uid, 0);
	ck_assert_uint_eq(ko->e.size, 2);
	const struct bentry *dir = find(&b, "usr/lib/modules/6.1.0-test/kernel");
	ck_assert_ptr_nonnull(dir);
	ck_assert_uint_eq(dir->e.mode, 0755);
	const struct bentry *ln = find(&b, "usr/lib/modules/6.1.0-test/build");
	ck_assert_ptr_nonnull(ln);
	ck_assert_int_eq(ln->e.type, MF_SYMLINK);
	ck_assert_str_eq(ln->e.target, "/usr/src/nowhere");
	const struct bentry *mk = find(&b, "usr/lib/modules/6.1.0-test/" IMAGE_MODULES_MARKER);
	ck_assert_ptr_nonnull(mk);
	ck_assert_int_eq(mk->e.type, MF_REG);
	/* Its blob says where from. */
	char hex[65], blob[4400], text[200] = {0};
	manifest_digest_hex(mk->e.digest, hex);
	snprintf(blob, sizeof(blob), "%s/blobs/sha256/%s", out, hex);
	FILE *f = fopen(blob, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(text, sizeof(text), f));
	fclose(f);
	char want[4400];
	snprintf(want, sizeof(want), IMAGE_MODULES_MARKER_TEXT "%s\n", mods);
	ck_assert_str_eq(text, want);
	build_free(&b);

	/* A root with its own: nothing added. */
	struct build b2 = {.out = out, .chunk = MANIFEST_DEFAULT_CHUNK};
	const char *own[] = {"", "lib", "lib/modules", "lib/modules/6.1.0-test"};
	for (size_t i = 0; i < 4; i++)
		build_add_entry(&b2, own[i])->e.type = MF_DIR;
	ck_assert_int_eq(build_add_modules(&b2, mods, "6.1.0-test", &r), 0);
	ck_assert_int_eq(r.how, BUILD_MODULES_OWN);
	ck_assert_uint_eq(b2.n, 4);
	/* No module directory for the version: a warning, nothing added. */
	snprintf(p, sizeof(p), "%s/none", d);
	ck_assert_int_eq(build_add_modules(&b2, p, "6.2.0-other", &r), 0);
	ck_assert_int_eq(r.how, BUILD_MODULES_SKIPPED);
	ck_assert_uint_eq(b2.n, 4);
	ck_assert_uint_ge(b2.warnings, 1);
	build_free(&b2);

	/* A tarball that lists a module but not its directories: the root's own. */
	struct build b3 = {.out = out, .chunk = MANIFEST_DEFAULT_CHUNK};
	build_add_entry(&b3, "")->e.type = MF_DIR;
	build_add_entry(&b3, "lib/modules/6.1.0-test/kernel/own.ko")->e.type = MF_REG;
	ck_assert_int_eq(build_add_modules(&b3, mods, "6.1.0-test", &r), 0);
	ck_assert_int_eq(r.how, BUILD_MODULES_OWN);
	ck_assert_uint_eq(b3.n, 2);
	build_free(&b3);

	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *build_modules_suite(void)
{
	Suite *s = suite_create("build_modules");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, resolve_in_tree);
	tcase_add_test(tc, modules_added_or_kept);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(build_modules_suite)
