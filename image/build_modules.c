/*
 * image build's kernel modules: a root filesystem without
 * /lib/modules/<version of the kernel> gets the kernel's module tree
 * there (--modules DIR, default /lib/modules/<version>), so that modprobe
 * and systemd in a stock root find them. They become ordinary entries:
 * fetched lazily like any file, and on the full-mode disk, which is built
 * from the same entries. A root with its own modules keeps them.
 */
#include "image/build_priv.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODULES_FILE_MODE 0644
#define MODULES_DIR_MODE 0755
/* What modprobe (kmod) looks a module name up in; depmod writes it. */
#define MODULES_DEP "modules.dep"

/* The entries are not sorted yet and a tarball may name a path twice:
 * the last one wins, as it will in finish_entries. A tarball may also
 * leave a directory out and list what is in it: the directory exists
 * (finish_entries makes it), and modules under it are the root's own. */
static const struct manifest_entry *lookup_collected(void *ctx, const char *path)
{
	static const struct manifest_entry implied_dir = {.type = MF_DIR};
	struct build *b = ctx;
	for (size_t i = b->n; i-- > 0;)
		if (strcmp(b->v[i].e.path, path) == 0)
			return &b->v[i].e;
	size_t len = strlen(path);
	for (size_t i = 0; i < b->n; i++)
		if (strncmp(b->v[i].e.path, path, len) == 0 && b->v[i].e.path[len] == '/')
			return &implied_dir;
	return NULL;
}

/* A small file of the image, made by the build. */
static int add_text_file(struct build *b, const char *path, const char *text, int64_t mtime)
{
	struct bentry *be = build_add_entry(b, path);
	if (!be) {
		snprintf(b->err, sizeof(b->err), "out of memory");
		return -1;
	}
	be->e.type = MF_REG;
	be->e.mode = MODULES_FILE_MODE;
	be->e.mtime_sec = mtime;
	struct image_blob_writer *w = image_blob_begin(b->out, b->chunk, b->err, sizeof(b->err));
	if (!w)
		return -1;
	if (image_blob_write(w, text, strlen(text)) < 0) {
		image_blob_abort(w);
		snprintf(b->err, sizeof(b->err), "%.900s: cannot store it", path);
		return -1;
	}
	return image_blob_commit(w, &be->e, &be->data_bytes, b->err, sizeof(b->err));
}

int build_add_modules(struct build *b, const char *moddir, const char *ver,
		      struct build_modules *r)
{
	char want[MANIFEST_PATH_MAX + 1], show[600], src[600];
	memset(r, 0, sizeof(*r));
	r->how = BUILD_MODULES_SKIPPED;
	if (strcmp(ver, ".") == 0 || strcmp(ver, "..") == 0) {
		log_warn("image build: the kernel's version '%s' names no directory: no kernel "
			 "modules added", ver);
		b->warnings++;
		return 0;
	}
	snprintf(want, sizeof(want), "lib/modules/%s", ver);
	enum image_resolve how = image_resolve_path(lookup_collected, b, want, false, r->where,
						    sizeof(r->where));
	if (how == IMAGE_RESOLVE_FOUND) {
		r->how = BUILD_MODULES_OWN;
		return 0;
	}
	if (how == IMAGE_RESOLVE_BLOCKED || !r->where[0]) {
		log_warn("image build: /%s cannot be made in the image (a file or a symlink loop "
			 "on the way): no kernel modules added", want);
		b->warnings++;
		return 0;
	}
	/* The machine's kernel may not be the image's: no modules for it
	 * here is not an error, the image just has none. */
	int fd = open(moddir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_warn("image build: no kernel modules added to /%s (%s: %s): modprobe in the "
			 "guest will find none", build_shown(r->where, show, sizeof(show)),
			 build_shown(moddir, src, sizeof(src)), strerror(errno));
		b->warnings++;
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (faccessat(fd, MODULES_DEP, F_OK, 0) < 0) {
		log_warn("image build: %s has no %s: modprobe in the guest will not find modules "
			 "by name (depmod -b makes it)", build_shown(moddir, src, sizeof(src)),
			 MODULES_DEP);
		b->warnings++;
	}
	size_t n0 = b->n;
	struct bentry *top = build_add_entry(b, r->where);
	if (!top) {
		close(fd);
		snprintf(b->err, sizeof(b->err), "out of memory");
		return -1;
	}
	top->e.type = MF_DIR;
	build_set_meta(&top->e, &st);
	dev_t saved = b->root_dev;
	b->root_dev = st.st_dev;
	/* Symlinks are kept as they are (Debian's build and source point at
	 * /usr/src, dangling without the headers, as in Debian itself). */
	int rc = build_walk_dir(b, fd, r->where, moddir);
	b->root_dev = saved;
	close(fd);
	if (rc < 0)
		return -1;
	/* The modules belong to the image's root whoever built it. */
	for (size_t i = n0; i < b->n; i++) {
		struct manifest_entry *e = &b->v[i].e;
		e->uid = e->gid = 0;
		switch (e->type) {
		case MF_DIR: e->mode = MODULES_DIR_MODE; break;
		case MF_SYMLINK: r->n_symlinks++; break;
		case MF_REG:
			r->n_files++;
			r->bytes += e->size;
			e->mode = MODULES_FILE_MODE;
			break;
		default: e->mode = MODULES_FILE_MODE; break;
		}
	}
	char marker[MANIFEST_PATH_MAX + 2], text[4400];
	int len = snprintf(marker, sizeof(marker), "%s/%s", r->where, IMAGE_MODULES_MARKER);
	if (len < 0 || (size_t)len > MANIFEST_PATH_MAX) {
		snprintf(b->err, sizeof(b->err), "/%s: path too long", build_shown(r->where, show, sizeof(show)));
		return -1;
	}
	/* Where from, absolute: the image outlives the build's directory. */
	char abs[4096];
	snprintf(text, sizeof(text), "%s%s\n", IMAGE_MODULES_MARKER_TEXT,
		 realpath(moddir, abs) ? abs : moddir);
	if (add_text_file(b, marker, text, st.st_mtim.tv_sec) < 0)
		return -1;
	r->how = BUILD_MODULES_ADDED;
	return 0;
}
