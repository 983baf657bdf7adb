/*
 * What image build's files share (image/build.c: the entries and the
 * command; build_dir.c, build_tar.c: the two inputs; build_boot.c: the
 * boot files; build_disk.c: the ext4 disk; build_modules.c: the kernel's
 * modules in the tree). Private to image/build*.c.
 * Functions that can fail return 0 or -1 with the message in b->err (or
 * err), every name in it shown with build_shown.
 */
#ifndef MINIVMM_IMAGE_BUILD_PRIV_H
#define MINIVMM_IMAGE_BUILD_PRIV_H

#include "image/image.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct bentry {
	struct manifest_entry e;
	size_t group;        /* hard-link group, 0 if none */
	size_t seq;          /* order of appearance (tarball: last one wins) */
	uint64_t data_bytes; /* non-hole bytes, for sizing the disk */
};

struct build {
	const char *out;
	uint64_t chunk;
	struct bentry *v;
	size_t n, cap;
	size_t n_groups;
	/* dir walk: (dev, ino) of multiply-linked files -> group */
	struct { dev_t dev; ino_t ino; size_t group; } *inodes;
	size_t n_inodes, cap_inodes;
	dev_t root_dev;
	unsigned warnings;
	char err[1024];
};

/* A new zeroed entry for path at the end of b->v; NULL when out of memory. */
struct bentry *build_add_entry(struct build *b, const char *path);
/* s with C escapes into buf: a newline in a file name must not forge a
 * line of output. Returns buf. */
const char *build_shown(const char *s, char *buf, size_t len);
/* Mode, owner and mtime of st into e. */
void build_set_meta(struct manifest_entry *e, const struct stat *st);

/* The entries of the directory tree src (lstat, never follows a symlink),
 * or of the tarball src (owners and modes from its headers). */
int build_read_dir(struct build *b, const char *src);
int build_read_tarball(struct build *b, const char *src);
/* The entries under the directory open at dirfd, named rel/... in the
 * image (src names the directory in messages); b->root_dev is the
 * filesystem a directory must be on to be walked into. */
int build_walk_dir(struct build *b, int dirfd, const char *rel, const char *src);

/* What build_add_modules did, for the build's summary. */
struct build_modules {
	enum { BUILD_MODULES_ADDED, BUILD_MODULES_OWN, BUILD_MODULES_SKIPPED } how;
	char where[MANIFEST_PATH_MAX + 1]; /* the module directory in the image */
	size_t n_files, n_symlinks;
	uint64_t bytes;
};
/* The kernel's module tree moddir added to the collected entries at
 * lib/modules/<ver> (where it resolves inside the image) unless the root
 * has its own there: owned by root, files 0644, directories 0755,
 * symlinks kept as they are, plus IMAGE_MODULES_MARKER. A missing
 * moddir, or a path that cannot be made, is a warning. Call before
 * finish_entries (it makes the missing parents). 0, or -1 with b->err. */
int build_add_modules(struct build *b, const char *moddir, const char *ver,
		      struct build_modules *r);

/* Add abs (a path in the image) to m's boot files, with every symlink on
 * the way to it resolved and added too. */
void build_add_boot_chain(struct manifest *m, const char *out, const char *abs, int depth);

/* The ext4 disk image of m's tree into m->disk: reproducible from seed
 * (UUID, hash seed) and fixed_time (every time mkfs writes). */
int build_disk(struct build *b, struct manifest *m, const uint8_t seed[MANIFEST_DIGEST_LEN],
	       int64_t fixed_time, char *err, size_t errlen);

#endif
