/*
 * image build's boot files: what the guest's init needs before anything
 * else, every symlink on the way resolved inside the image.
 */
#include "image/build_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUILD_MAX_SYMLINK_HOPS 16

static void add_boot_file(struct manifest *m, const char *path)
{
	for (size_t i = 0; i < m->n_boot_files; i++)
		if (strcmp(m->boot_files[i], path) == 0)
			return;
	char **p = realloc(m->boot_files, (m->n_boot_files + 1) * sizeof(char *));
	if (!p)
		return;
	m->boot_files = p;
	if ((p[m->n_boot_files] = strdup(path)))
		m->n_boot_files++;
}

/* Resolve abs (a path in the image) component by component through
 * symlinks, as the guest's kernel will, adding every entry it passes to
 * the boot files; a script's interpreter is followed too. Best effort:
 * boot files are a prefetch hint. */
void build_add_boot_chain(struct manifest *m, const char *out, const char *abs, int depth)
{
	char path[MANIFEST_PATH_MAX + 1], done[MANIFEST_PATH_MAX + 1], next[MANIFEST_PATH_MAX + 1];
	image_join_path("", abs, path, sizeof(path));
	int hops = 0;
	size_t pos = 0; /* path[0..pos) is resolved and has no symlinks */
	while (depth < 4) {
		size_t end = pos + (path[pos] == '/');
		end += strcspn(path + end, "/");
		snprintf(done, sizeof(done), "%.*s", (int)end, path);
		const struct manifest_entry *e = manifest_lookup(m, done);
		if (!e)
			return;
		if (e->type == MF_SYMLINK) {
			if (++hops > BUILD_MAX_SYMLINK_HOPS)
				return;
			add_boot_file(m, done);
			const char *slash = strrchr(done, '/');
			char parent[MANIFEST_PATH_MAX + 1];
			snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - done) : 0, done);
			char rest[MANIFEST_PATH_MAX + 1];
			snprintf(rest, sizeof(rest), "%s", path + end);
			char joined[2 * MANIFEST_PATH_MAX + 2];
			snprintf(joined, sizeof(joined), "%s%s", e->target, rest);
			image_join_path(parent, joined, next, sizeof(next));
			snprintf(path, sizeof(path), "%s", next);
			pos = 0;
			continue;
		}
		if (path[end] == '/') {
			if (e->type != MF_DIR)
				return;
			pos = end;
			continue;
		}
		/* The last component: the file itself. */
		add_boot_file(m, done);
		if (e->type == MF_HARDLINK)
			e = manifest_lookup(m, e->target);
		if (!e || e->type != MF_REG)
			return;
		char blob[4300], line[256] = {0};
		/* A packed file starts with its first chunk unless that is a
		 * hole (zeros: no "#!"). */
		if (manifest_chunk_hole(e, m->chunk_size, 0))
			return;
		image_blob_path(out, manifest_blob_name(e), blob, sizeof(blob));
		FILE *f = fopen(blob, "r");
		if (!f)
			return;
		bool got = fgets(line, sizeof(line), f) != NULL;
		fclose(f);
		if (got && line[0] == '#' && line[1] == '!') {
			char *interp = line + 2;
			interp += strspn(interp, " \t");
			interp[strcspn(interp, " \t\n")] = '\0';
			if (interp[0] == '/')
				build_add_boot_chain(m, out, interp, depth + 1);
		}
		return;
	}
}

