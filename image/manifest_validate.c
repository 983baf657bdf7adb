/*
 * The manifest's rules (manifest_validate): what a whole manifest must be
 * before anyone uses it, checked after parsing and before writing
 * (docs/image-format.md).
 */
#include "image/manifest_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MANIFEST_MAX_XATTR_VALUE 65536 /* Linux XATTR_SIZE_MAX */
#define MANIFEST_MAX_CMDLINE 4096

/* --- validation of the whole manifest (shared by parse and write) --- */

/* "entry 12 'etc/passwd'" for messages; paths are shown with C escapes so
 * that a newline in a name cannot forge a line of output. */
static void describe(const struct manifest_entry *e, size_t i, char *out, size_t outlen)
{
	size_t o = 0;
	int n = snprintf(out, outlen, "entry %zu '", i);
	o = n > 0 ? (size_t)n : 0;
	for (const unsigned char *p = (const unsigned char *)(e->path ? e->path : "");
	     *p && o + 6 < outlen; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\' && *p != '\'')
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", *p);
		if (o > 200 && o + 4 < outlen) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
	}
	snprintf(out + o, outlen - o, "'");
}

static bool blobs_url_ok(const char *u)
{
	if (!*u)
		return false;
	if (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0 ||
	    strncmp(u, "file://", 7) == 0)
		return true;
	/* Relative: no absolute path, no way out of the image's URL. */
	if (u[0] == '/' || strstr(u, "://"))
		return false;
	char tmp[1024];
	size_t n = strlen(u);
	if (n >= sizeof(tmp))
		return false;
	memcpy(tmp, u, n + 1);
	if (n && tmp[n - 1] == '/')
		tmp[n - 1] = '\0';
	return manifest_check_path(tmp, NULL, 0) == 0;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Each boot file once: a path repeated millions of times is work (and a
 * line of output) for nothing. */
static int boot_files_unique(const struct manifest *m, char *err, size_t errlen)
{
	if (m->n_boot_files < 2)
		return 0;
	char **v = malloc(m->n_boot_files * sizeof(*v));
	if (!v) {
		manifest_seterr(err, errlen, "out of memory");
		return -1;
	}
	memcpy(v, m->boot_files, m->n_boot_files * sizeof(*v));
	qsort(v, m->n_boot_files, sizeof(*v), cmp_strp);
	int rc = 0;
	for (size_t i = 1; i < m->n_boot_files && rc == 0; i++)
		if (strcmp(v[i - 1], v[i]) == 0) {
			char who[300];
			struct manifest_entry shown = {.path = v[i]};
			describe(&shown, i, who, sizeof(who));
			manifest_seterr(err, errlen, "boot file %s is listed more than once", strchr(who, '\''));
			rc = -1;
		}
	free(v);
	return rc;
}

int manifest_validate(const struct manifest *m, char *err, size_t errlen)
{
	char who[300], why[200];
	if (m->version < MANIFEST_VERSION_MIN || m->version > MANIFEST_VERSION) {
		manifest_seterr(err, errlen, "unsupported manifest version %d (this minivmm reads versions "
		       "%d to %d)", m->version, MANIFEST_VERSION_MIN, MANIFEST_VERSION);
		return -1;
	}
	if (m->chunk_size < MANIFEST_MIN_CHUNK || m->chunk_size > MANIFEST_MAX_CHUNK ||
	    (m->chunk_size & (m->chunk_size - 1))) {
		manifest_seterr(err, errlen, "chunk_size %llu is not a power of two from %llu to %llu",
		       (unsigned long long)m->chunk_size, MANIFEST_MIN_CHUNK, MANIFEST_MAX_CHUNK);
		return -1;
	}
	if (!m->blobs_url || !blobs_url_ok(m->blobs_url)) {
		manifest_seterr(err, errlen, "blobs URL is missing, absolute or leaves the image ('..')");
		return -1;
	}
	if (m->n_entries == 0 || m->entries[0].path[0] != '\0' || m->entries[0].type != MF_DIR) {
		manifest_seterr(err, errlen, "the first entry must be the root directory (path \"\")");
		return -1;
	}
	uint64_t total = 0;
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct manifest_entry *e = &m->entries[i];
		describe(e, i, who, sizeof(who));
		if (manifest_check_path(e->path, why, sizeof(why)) < 0) {
			manifest_seterr(err, errlen, "%s: %s", who, why);
			return -1;
		}
		if (i > 0 && manifest_cmp_path(m->entries[i - 1].path, e->path) >= 0) {
			manifest_seterr(err, errlen, "%s: paths are not sorted and unique "
			       "(it does not sort after the entry before it)", who);
			return -1;
		}
		if ((unsigned)e->type >= manifest_n_types) {
			manifest_seterr(err, errlen, "%s: unknown type %d", who, (int)e->type);
			return -1;
		}
		if (e->mode & ~07777u) {
			manifest_seterr(err, errlen, "%s: mode %o has bits outside 07777", who, e->mode);
			return -1;
		}
		if (e->mtime_nsec >= 1000000000u) {
			manifest_seterr(err, errlen, "%s: mtime_nsec %u is not below 10^9", who, e->mtime_nsec);
			return -1;
		}
		if (i > 0) {
			/* The parent precedes its children and must be a directory. */
			const char *slash = strrchr(e->path, '/');
			size_t plen = slash ? (size_t)(slash - e->path) : 0;
			char parent[MANIFEST_PATH_MAX + 1];
			memcpy(parent, e->path, plen);
			parent[plen] = '\0';
			const struct manifest_entry *p = manifest_lookup(m, parent);
			if (!p || p->type != MF_DIR) {
				manifest_seterr(err, errlen, "%s: its parent directory is %s", who,
				       p ? "not a directory" : "missing");
				return -1;
			}
		}
		bool want_target = e->type == MF_SYMLINK || e->type == MF_HARDLINK;
		if (want_target != (e->target != NULL)) {
			manifest_seterr(err, errlen, "%s: a %s %s a target", who, manifest_type_name(e->type),
			       want_target ? "needs" : "has no");
			return -1;
		}
		if (e->type != MF_REG && (e->has_digest || e->n_chunks || e->packed)) {
			manifest_seterr(err, errlen, "%s: only regular files have a digest", who);
			return -1;
		}
		if (e->type != MF_CHR && e->type != MF_BLK && e->rdev) {
			manifest_seterr(err, errlen, "%s: only device nodes have rdev", who);
			return -1;
		}
		switch (e->type) {
		case MF_REG:
			if (!e->has_digest) {
				manifest_seterr(err, errlen, "%s: regular file without a digest", who);
				return -1;
			}
			if (e->size > INT64_MAX) {
				manifest_seterr(err, errlen, "%s: size too large", who);
				return -1;
			}
			if (e->n_chunks != manifest_chunk_count(e->size, m->chunk_size)) {
				manifest_seterr(err, errlen, "%s: has %zu chunk digests, size %llu needs %zu", who,
				       e->n_chunks, (unsigned long long)e->size,
				       manifest_chunk_count(e->size, m->chunk_size));
				return -1;
			}
			/* A packed blob only where it differs from the content:
			 * one form per content, so equal files stay equal. */
			if (e->packed && (!e->n_chunks || !manifest_hole_count(e, m->chunk_size))) {
				manifest_seterr(err, errlen, "%s: \"blob\" on a file with no hole chunk (store "
				       "it unpacked)", who);
				return -1;
			}
			if (total + e->size < total) {
				manifest_seterr(err, errlen, "%s: total size overflows", who);
				return -1;
			}
			total += e->size;
			break;
		case MF_SYMLINK:
			if (!e->target[0] || strlen(e->target) > MANIFEST_PATH_MAX ||
			    e->size != strlen(e->target)) {
				manifest_seterr(err, errlen, "%s: symlink target empty, too long, or size "
				       "not its length", who);
				return -1;
			}
			break;
		case MF_HARDLINK: {
			const struct manifest_entry *t = manifest_lookup(m, e->target);
			if (!t || t->type != MF_REG || t == e) {
				manifest_seterr(err, errlen, "%s: hard link target is %s", who,
				       !t ? "missing" : "not a regular file");
				return -1;
			}
			if (e->size) {
				manifest_seterr(err, errlen, "%s: a hard link has no size of its own", who);
				return -1;
			}
			break;
		}
		default:
			if (e->size) {
				manifest_seterr(err, errlen, "%s: a %s has no size", who, manifest_type_name(e->type));
				return -1;
			}
		}
		for (size_t k = 0; k < e->n_xattrs; k++) {
			const struct manifest_xattr *x = &e->xattrs[k];
			if (!x->name || !x->name[0] || strlen(x->name) > MANIFEST_NAME_MAX ||
			    x->len > MANIFEST_MAX_XATTR_VALUE ||
			    (k > 0 && strcmp(e->xattrs[k - 1].name, x->name) >= 0)) {
				manifest_seterr(err, errlen, "%s: xattr %zu is empty, too long, or not sorted "
				       "and unique", who, k);
				return -1;
			}
		}
	}
	if (total != m->total_bytes) {
		manifest_seterr(err, errlen, "total_bytes is %llu but the regular files add up to %llu",
		       (unsigned long long)m->total_bytes, (unsigned long long)total);
		return -1;
	}
	if (m->n_boot_files > MANIFEST_MAX_BOOT_FILES) {
		manifest_seterr(err, errlen, "%zu boot files, more than %d", m->n_boot_files,
		       MANIFEST_MAX_BOOT_FILES);
		return -1;
	}
	for (size_t i = 0; i < m->n_boot_files; i++) {
		const struct manifest_entry *e = manifest_lookup(m, m->boot_files[i]);
		if (!e) {
			struct manifest_entry shown = {.path = m->boot_files[i]};
			describe(&shown, i, who, sizeof(who));
			manifest_seterr(err, errlen, "boot file %s is not in the manifest", who + 6);
			return -1;
		}
	}
	if (boot_files_unique(m, err, errlen) < 0)
		return -1;
	/* The profile is a hint: paths no longer in the image (an edited
	 * image, a stale profile) are skipped by the prefetcher, not refused
	 * (image/profile.c). Only its length is bounded, at parse time. */
	if (m->cmdline && strlen(m->cmdline) >= MANIFEST_MAX_CMDLINE) {
		manifest_seterr(err, errlen, "boot cmdline longer than %d bytes", MANIFEST_MAX_CMDLINE - 1);
		return -1;
	}
	return 0;
}

