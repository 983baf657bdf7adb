/*
 * Paths resolved inside an image's tree, symlinks followed the way the
 * guest's kernel follows them (path_resolution(7)) but never out of the
 * image: image build places the kernel's modules where the root's
 * /lib/modules really is (/lib may be a symlink to usr/lib), image
 * inspect finds them there.
 */
#include "image/image.h"

#include <stdio.h>
#include <string.h>

/* As the kernel's MAXSYMLINKS (include/linux/namei.h): 40 links per lookup. */
#define RESOLVE_MAX_SYMLINKS 40

void image_join_path(const char *base, const char *rel, char *out, size_t outlen)
{
	char tmp[2 * MANIFEST_PATH_MAX + 4];
	snprintf(tmp, sizeof(tmp), "%s/%s", rel[0] == '/' ? "" : base, rel);
	size_t o = 0;
	out[0] = '\0';
	for (char *save = NULL, *c = strtok_r(tmp, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			char *slash = strrchr(out, '/');
			o = slash ? (size_t)(slash - out) : 0;
			out[o] = '\0';
			continue;
		}
		int n = snprintf(out + o, outlen - o, "%s%s", o ? "/" : "", c);
		if (n < 0 || (size_t)n >= outlen - o)
			return;
		o += (size_t)n;
	}
}

enum image_resolve image_resolve_path(image_lookup_fn lookup, void *ctx, const char *path,
				      bool follow_last, char *out, size_t outlen)
{
	char cur[MANIFEST_PATH_MAX + 1], done[MANIFEST_PATH_MAX + 1];
	char joined[2 * MANIFEST_PATH_MAX + 2];
	image_join_path("", path, cur, sizeof(cur));
	size_t pos = 0; /* cur[0..pos) is made of directories, no symlinks */
	for (int hops = 0;;) {
		if (!cur[pos]) {
			snprintf(out, outlen, "%s", cur);
			return IMAGE_RESOLVE_FOUND; /* the root, or a directory */
		}
		size_t end = pos + (cur[pos] == '/');
		end += strcspn(cur + end, "/");
		bool last = cur[end] == '\0';
		snprintf(done, sizeof(done), "%.*s", (int)end, cur);
		const struct manifest_entry *e = lookup(ctx, done);
		if (!e) {
			snprintf(out, outlen, "%s", cur);
			return IMAGE_RESOLVE_MISSING;
		}
		if (e->type == MF_SYMLINK && (!last || follow_last)) {
			if (++hops > RESOLVE_MAX_SYMLINKS)
				return IMAGE_RESOLVE_BLOCKED;
			/* The target replaces the link's name, relative to its
			 * directory; the rest of the path follows it. */
			snprintf(joined, sizeof(joined), "%s%s", e->target, cur + end);
			char parent[MANIFEST_PATH_MAX + 1];
			snprintf(parent, sizeof(parent), "%.*s", (int)pos, cur);
			image_join_path(parent, joined, cur, sizeof(cur));
			pos = 0;
			continue;
		}
		if (last) {
			snprintf(out, outlen, "%s", cur);
			return IMAGE_RESOLVE_FOUND;
		}
		if (e->type != MF_DIR)
			return IMAGE_RESOLVE_BLOCKED;
		pos = end;
	}
}
