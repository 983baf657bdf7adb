/*
 * Prefetch profiles (image/manifest.h): reading and writing the text form,
 * resolving one against a manifest, and `minivmm image profile DIR --from
 * FILE`, which stores one in a local image's manifest.
 *
 * A profile is a hint. It may be stale (files since removed), hostile or
 * huge; none of that may stop a boot. So unknown paths are skipped and
 * counted, repeats are dropped, and the length is bounded twice: by
 * MANIFEST_MAX_PROFILE when read, and by the number of entries once
 * resolved.
 */
#include "image/manifest.h"
#include "image/image.h"
#include "lib/cli.h"
#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void manifest_profile_free(char **paths, size_t n)
{
	if (!paths)
		return;
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

int manifest_profile_read(const char *file, char ***paths, size_t *n, size_t *bad,
			  char *err, size_t errlen)
{
	*paths = NULL;
	*n = 0;
	if (bad)
		*bad = 0;
	FILE *f = fopen(file, "re");
	if (!f) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0, vcap = 0;
	ssize_t len;
	char **v = NULL;
	int rc = 0;
	while (*n < MANIFEST_MAX_PROFILE && (len = getline(&line, &cap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		const char *p = line;
		while (*p == '/')
			p++;
		if (!line[0] || line[0] == '#')
			continue;
		char why[128];
		if (!*p || (size_t)len != strlen(line) || manifest_check_path(p, why, sizeof(why)) < 0) {
			if (bad)
				(*bad)++; /* an embedded NUL, "..", an over-long name ... */
			continue;
		}
		if (*n == vcap) {
			size_t nc = vcap ? vcap * 2 : 256;
			char **t = realloc(v, nc * sizeof(*v));
			if (!t) {
				rc = -1;
				break;
			}
			v = t;
			vcap = nc;
		}
		if (!(v[*n] = strdup(p))) {
			rc = -1;
			break;
		}
		(*n)++;
	}
	bool ioerr = ferror(f);
	free(line);
	fclose(f);
	if (rc < 0 || ioerr) {
		snprintf(err, errlen, "%s: %s", file, rc < 0 ? "out of memory" : "read error");
		manifest_profile_free(v, *n);
		*n = 0;
		return -1;
	}
	*paths = v;
	return 0;
}

size_t manifest_profile_resolve(const struct manifest *m, char *const *paths, size_t n,
				size_t *idx, size_t *skipped)
{
	size_t got = 0, skip = 0;
	uint8_t *seen = calloc(m->n_entries ? (m->n_entries + 7) / 8 : 1, 1);
	for (size_t i = 0; i < n; i++) {
		long k = seen ? manifest_index(m, paths[i]) : -1;
		if (k >= 0 && m->entries[k].type == MF_HARDLINK)
			k = manifest_index(m, m->entries[k].target);
		if (k < 0 || m->entries[k].type != MF_REG) {
			skip++;
			continue;
		}
		if (seen[k / 8] & (1u << (k % 8)))
			continue; /* a repeat is not an error: the first place counts */
		seen[k / 8] |= (uint8_t)(1u << (k % 8));
		idx[got++] = (size_t)k;
	}
	free(seen);
	if (skipped)
		*skipped = skip;
	return got;
}

int manifest_profile_set(struct manifest *m, char *const *paths, size_t n, size_t *kept,
			 size_t *skipped, char *err, size_t errlen)
{
	size_t cap = n < m->n_entries ? n : m->n_entries;
	size_t *idx = malloc((cap ? cap : 1) * sizeof(*idx));
	char **v = calloc(cap ? cap : 1, sizeof(*v));
	if (!idx || !v) {
		free(idx);
		free(v);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t got = manifest_profile_resolve(m, paths, n, idx, skipped);
	for (size_t i = 0; i < got; i++) {
		if (!(v[i] = strdup(m->entries[idx[i]].path))) {
			manifest_profile_free(v, i);
			free(idx);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	free(idx);
	manifest_profile_free(m->profile, m->n_profile);
	m->profile = got ? v : NULL;
	m->n_profile = got;
	if (!got)
		free(v);
	if (kept)
		*kept = got;
	return 0;
}

int manifest_profile_write(const char *file, char *const *paths, size_t n, char *err,
			   size_t errlen)
{
	char tmp[4200];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", file, (int)getpid()) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "%s: name too long", file);
		return -1;
	}
	FILE *f = fopen(tmp, "we");
	if (!f) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	fprintf(f, "# minivmm prefetch profile: files in first-read order\n");
	for (size_t i = 0; i < n; i++)
		if (!strchr(paths[i], '\n') && paths[i][0] != '#')
			fprintf(f, "%s\n", paths[i]);
	bool ok = fflush(f) == 0 && !ferror(f) && fsync(fileno(f)) == 0;
	int saved = errno;
	if (fclose(f) != 0 && ok)
		ok = false, saved = errno;
	if (!ok || rename(tmp, file) < 0) {
		snprintf(err, errlen, "%s: %s", file, strerror(ok ? errno : saved));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* --- `minivmm image profile DIR --from FILE` --- */

static int profile_main(const struct config *cfg)
{
	const char *from = config_get(cfg, "from");
	if (cfg->n_args != 1 || !from) {
		return cli_usage_error("image profile", "give one image directory DIR and --from FILE");
	}
	const char *dir = cfg->args[0];
	char err[1024];
	char **paths = NULL;
	size_t n = 0, bad = 0;
	if (strcmp(from, "-") != 0 && strcmp(from, "none") != 0 &&
	    manifest_profile_read(from, &paths, &n, &bad, err, sizeof(err)) < 0) {
		log_error("image profile: %s", err);
		return EXIT_USAGE;
	}
	/* Every manifest form the image has gets the same profile, so that
	 * `image verify` still finds them in agreement. */
	static const struct { const char *name; bool zst; } forms[] = {
		{MANIFEST_FILE, false}, {MANIFEST_FILE_ZST, true},
	};
	int status = EXIT_OK, done = 0;
	size_t kept = 0, skipped = 0;
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]) && status == EXIT_OK; i++) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", dir, forms[i].name);
		struct stat st;
		if (stat(path, &st) < 0)
			continue;
		struct manifest m = {0};
		if (manifest_load_file(path, &m, err, sizeof(err)) < 0 ||
		    manifest_profile_set(&m, paths, n, &kept, &skipped, err, sizeof(err)) < 0 ||
		    manifest_write_file(&m, path, forms[i].zst, err, sizeof(err)) < 0) {
			log_error("image profile: %s", err);
			status = EXIT_FAILURE_IO;
		}
		manifest_free(&m);
		done++;
	}
	manifest_profile_free(paths, n);
	if (status == EXIT_OK && !done) {
		log_error("image profile: %s has no %s or %s", dir, MANIFEST_FILE,
			MANIFEST_FILE_ZST);
		return EXIT_USAGE;
	}
	if (status == EXIT_OK)
		printf("profile of %s: %zu files kept, %zu paths skipped (not regular files of "
		       "the image), %zu lines not paths\n", dir, kept, skipped, bad);
	return status;
}

CLI_COMMAND(.name = "image profile", .usage = "DIR",
	    .summary = "store a prefetch profile (from `run --record-profile`) in a local image",
	    .main = profile_main)
CLI_OPTION(.command = "image profile", .name = "from", .argname = "FILE",
	   .help = "the profile: one path per line ('none' clears the image's profile)")
