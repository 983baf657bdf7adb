/*
 * What image build's files share (image/build.c: the entries and the
 * command; build_dir.c, build_tar.c: the two inputs; build_boot.c: the
 * boot files; build_disk.c: the ext4 disk). Private to image/build*.c.
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

/* Add abs (a path in the image) to m's boot files, with every symlink on
 * the way to it resolved and added too. */
void build_add_boot_chain(struct manifest *m, const char *out, const char *abs, int depth);

/* The ext4 disk image of m's tree into m->disk: reproducible from seed
 * (UUID, hash seed) and fixed_time (every time mkfs writes). */
int build_disk(struct build *b, struct manifest *m, const uint8_t seed[MANIFEST_DIGEST_LEN],
	       int64_t fixed_time, char *err, size_t errlen);

#endif
