/*
 * image build's second input: a tarball, through libarchive. Owners and
 * modes come from its headers, so nothing needs root; a later member of
 * the same name wins, as when tar extracts.
 */
#include "image/build_priv.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Messages are cut to the error buffer on purpose: a long path in an error
 * is better truncated than not reported. */
#ifndef __clang__ /* clang has no -Wformat-truncation */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

/* "./a//b/" -> "a/b"; refuses ".." and names that would leave the root. */
static int tar_path(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (n == 0)
			break;
		if (n == 1 && p[0] == '.') {
			p += n;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			snprintf(err, errlen, "has a '..' component");
			return -1;
		}
		if (o + n + 2 > outlen || n > MANIFEST_NAME_MAX) {
			snprintf(err, errlen, "is too long");
			return -1;
		}
		if (o)
			out[o++] = '/';
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
	return 0;
}

int build_read_tarball(struct build *b, const char *src)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	char show[600], path[MANIFEST_PATH_MAX + 2], why[100];
	int rc = -1;
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	if (archive_read_open_filename(a, src, 1 << 16) != ARCHIVE_OK) {
		snprintf(b->err, sizeof(b->err), "rootfs %s: %s", src, archive_error_string(a));
		goto out;
	}
	bool have_root = false;
	for (;;) {
		int r = archive_read_next_header(a, &ae);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			snprintf(b->err, sizeof(b->err), "rootfs %s: %s", src, archive_error_string(a));
			goto out;
		}
		const char *name = archive_entry_pathname(ae);
		if (!name || tar_path(name, path, sizeof(path), why, sizeof(why)) < 0) {
			snprintf(b->err, sizeof(b->err), "rootfs %s: entry '%s' %s", src,
				 name ? build_shown(name, show, sizeof(show)) : "(no name)",
				 name ? why : "has no name");
			goto out;
		}
		struct bentry *be = build_add_entry(b, path);
		if (!be) {
			snprintf(b->err, sizeof(b->err), "out of memory");
			goto out;
		}
		struct manifest_entry *e = &be->e;
		const struct stat *st = archive_entry_stat(ae);
		build_set_meta(e, st);
		e->uid = (uint32_t)archive_entry_uid(ae);
		e->gid = (uint32_t)archive_entry_gid(ae);
		const char *hl = archive_entry_hardlink(ae);
		if (hl) {
			char tp[MANIFEST_PATH_MAX + 2];
			if (tar_path(hl, tp, sizeof(tp), why, sizeof(why)) < 0) {
				snprintf(b->err, sizeof(b->err), "rootfs %s: hard link target of '%s' %s",
					 src, build_shown(path, show, sizeof(show)), why);
				goto out;
			}
			/* The target came earlier; the newest entry of that name. */
			struct bentry *t = NULL;
			for (size_t i = b->n - 1; i-- > 0;)
				if (strcmp(b->v[i].e.path, tp) == 0) {
					t = &b->v[i];
					break;
				}
			be = &b->v[b->n - 1];
			e = &be->e;
			if (!t || t->e.type != MF_REG) {
				snprintf(b->err, sizeof(b->err), "rootfs %s: '%s' is a hard link to '%s', "
					 "which is %s", src, build_shown(path, show, 300), tp,
					 t ? "not a regular file" : "not in the archive before it");
				goto out;
			}
			if (!t->group)
				t->group = ++b->n_groups;
			be->group = t->group;
			e->type = MF_REG;
			/* One inode: the link has its target's metadata, as
			 * tar's link() on extraction gives it. */
			e->mode = t->e.mode, e->uid = t->e.uid, e->gid = t->e.gid;
			e->mtime_sec = t->e.mtime_sec, e->mtime_nsec = t->e.mtime_nsec;
			continue;
		}
		switch (archive_entry_filetype(ae)) {
		case AE_IFDIR:
			e->type = MF_DIR;
			if (!path[0])
				have_root = true;
			break;
		case AE_IFLNK: {
			const char *t = archive_entry_symlink(ae);
			if (!t || !*t || strlen(t) > MANIFEST_PATH_MAX) {
				snprintf(b->err, sizeof(b->err), "rootfs %s: symlink '%s' has no usable target",
					 src, build_shown(path, show, sizeof(show)));
				goto out;
			}
			e->type = MF_SYMLINK;
			e->target = strdup(t);
			e->size = strlen(t);
			e->mode = 0777;
			break;
		}
		case AE_IFCHR: e->type = MF_CHR; e->rdev = archive_entry_rdev(ae); break;
		case AE_IFBLK: e->type = MF_BLK; e->rdev = archive_entry_rdev(ae); break;
		case AE_IFIFO: e->type = MF_FIFO; break;
		case AE_IFSOCK: e->type = MF_SOCK; break;
		case AE_IFREG: {
			e->type = MF_REG;
			char what[700];
			snprintf(what, sizeof(what), "rootfs %s: '%s'", src, build_shown(path, show, sizeof(show)));
			struct image_blob_writer *w = image_blob_begin_packed(b->out, b->chunk, b->err,
									      sizeof(b->err));
			if (!w)
				goto out;
			uint64_t pos = 0, size = (uint64_t)archive_entry_size(ae);
			const void *buf;
			size_t len;
			la_int64_t off;
			/* Blocks come with their offsets: a gap is a hole. */
			while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
				if (off < 0 || (uint64_t)off < pos || (uint64_t)off + len > size) {
					snprintf(b->err, sizeof(b->err), "%s: data block outside the file", what);
					image_blob_abort(w);
					goto out;
				}
				if ((uint64_t)off > pos && image_blob_hole(w, (uint64_t)off - pos) < 0)
					goto blob_fail;
				if (image_blob_write(w, buf, len) < 0)
					goto blob_fail;
				pos = (uint64_t)off + len;
			}
			if (r != ARCHIVE_EOF) {
				snprintf(b->err, sizeof(b->err), "%s: %s (truncated archive?)", what,
					 archive_error_string(a));
				image_blob_abort(w);
				goto out;
			}
			if (pos < size && image_blob_hole(w, size - pos) < 0)
				goto blob_fail;
			if (image_blob_commit(w, e, &be->data_bytes, b->err, sizeof(b->err)) < 0)
				goto out;
			break;
		blob_fail:
			snprintf(b->err, sizeof(b->err), "%s: cannot write its blob", what);
			image_blob_abort(w);
			goto out;
		}
		default:
			snprintf(b->err, sizeof(b->err), "rootfs %s: '%s' has an unknown file type", src,
				 build_shown(path, show, sizeof(show)));
			goto out;
		}
	}
	if (!have_root) {
		struct bentry *root = build_add_entry(b, "");
		if (!root)
			goto out;
		root->e.type = MF_DIR;
		root->e.mode = 0755;
	}
	rc = 0;
out:
	archive_read_free(a);
	return rc;
}

