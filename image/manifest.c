/*
 * The image manifest: strict JSON parser, deterministic writer, lookup.
 * The format is docs/image-format.md. Everything parsed here may come from
 * the network, so every field is type-checked and bounded, and the whole
 * manifest is checked for consistency before anyone uses it.
 */
#include "manifest.h"
#include "lib/io.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* zstd frame magic, little-endian (RFC 8878 section 3.1.1). */
static const uint8_t zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
#define MANIFEST_ZSTD_LEVEL 19
#define MANIFEST_MAX_XATTR_VALUE 65536 /* Linux XATTR_SIZE_MAX */
#define MANIFEST_MAX_CMDLINE 4096

static const char *const type_names[] = {
	[MF_REG] = "reg", [MF_DIR] = "dir", [MF_SYMLINK] = "symlink",
	[MF_HARDLINK] = "hardlink", [MF_CHR] = "chr", [MF_BLK] = "blk",
	[MF_FIFO] = "fifo", [MF_SOCK] = "sock",
};
#define N_TYPES (sizeof(type_names) / sizeof(type_names[0]))

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *manifest_type_name(enum manifest_type t)
{
	return (unsigned)t < N_TYPES ? type_names[t] : "?";
}

void manifest_digest_hex(const uint8_t d[MANIFEST_DIGEST_LEN], char out[2 * MANIFEST_DIGEST_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < MANIFEST_DIGEST_LEN; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * MANIFEST_DIGEST_LEN] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case is refused: one spelling per digest */
}

int manifest_hex_digest(const char *hex, uint8_t out[MANIFEST_DIGEST_LEN])
{
	for (int i = 0; i < MANIFEST_DIGEST_LEN; i++) {
		int hi = hexval(hex[2 * i]);
		int lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[2 * MANIFEST_DIGEST_LEN] == '\0' ? 0 : -1;
}

size_t manifest_chunk_count(uint64_t size, uint64_t chunk_size)
{
	if (!chunk_size || size <= chunk_size)
		return 0;
	return (size_t)((size - 1) / chunk_size + 1);
}

/* --- names as bytes: UTF-8 check and base64 (RFC 4648, padded) --- */

static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF are not
		 * UTF-8 (RFC 3629), and jansson would refuse them. */
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const uint8_t *in, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		*o++ = b64chars[v >> 18 & 63];
		*o++ = b64chars[v >> 12 & 63];
		*o++ = i + 1 < n ? b64chars[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? b64chars[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int b64val(char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;
	return p ? (int)(p - b64chars) : -1;
}

/* Strict decoding: length a multiple of 4, padding only at the end, no
 * stray bits. Returns a malloc'd buffer with a NUL after *outlen bytes. */
static uint8_t *b64_decode(const char *in, size_t n, size_t *outlen)
{
	if (n % 4)
		return NULL;
	uint8_t *out = malloc(n / 4 * 3 + 1);
	size_t o = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad || (v[k] = b64val(in[i + k])) < 0)
				goto bad;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
			goto bad;
		out[o++] = w >> 16;
		if (pad < 2)
			out[o++] = w >> 8 & 0xff;
		if (pad < 1)
			out[o++] = w & 0xff;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
bad:
	free(out);
	return NULL;
}

/* --- paths --- */

int manifest_check_path(const char *path, char *err, size_t errlen)
{
	size_t len = strlen(path);
	if (len == 0)
		return 0; /* the root */
	if (len > MANIFEST_PATH_MAX) {
		seterr(err, errlen, "path is longer than %d bytes", MANIFEST_PATH_MAX);
		return -1;
	}
	if (path[0] == '/') {
		seterr(err, errlen, "path is absolute (starts with '/')");
		return -1;
	}
	const char *p = path;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0) {
			seterr(err, errlen, "path has an empty component");
			return -1;
		}
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			seterr(err, errlen, "path has a '%.*s' component", (int)n, p);
			return -1;
		}
		if (n > MANIFEST_NAME_MAX) {
			seterr(err, errlen, "path has a component longer than %d bytes", MANIFEST_NAME_MAX);
			return -1;
		}
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

static int cmp_path(const char *a, const char *b)
{
	return strcmp(a, b); /* strcmp compares as unsigned char: bytewise */
}

long manifest_index(const struct manifest *m, const char *path)
{
	size_t lo = 0, hi = m->n_entries;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_path(m->entries[mid].path, path);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

const struct manifest_entry *manifest_lookup(const struct manifest *m, const char *path)
{
	long i = manifest_index(m, path);
	return i < 0 ? NULL : &m->entries[i];
}

static int cmp_entries(const void *a, const void *b)
{
	const struct manifest_entry *x = a, *y = b;
	return cmp_path(x->path, y->path);
}

void manifest_sort(struct manifest *m)
{
	if (m->n_entries > 1)
		qsort(m->entries, m->n_entries, sizeof(*m->entries), cmp_entries);
}

/* --- freeing --- */

void manifest_entry_free(struct manifest_entry *e)
{
	free(e->path);
	free(e->target);
	free(e->chunks);
	for (size_t i = 0; i < e->n_xattrs; i++) {
		free(e->xattrs[i].name);
		free(e->xattrs[i].value);
	}
	free(e->xattrs);
	memset(e, 0, sizeof(*e));
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void manifest_free(struct manifest *m)
{
	for (size_t i = 0; i < m->n_entries; i++)
		manifest_entry_free(&m->entries[i]);
	free(m->entries);
	free(m->name);
	free(m->blobs_url);
	free(m->cmdline);
	free_strv(m->boot_files, m->n_boot_files);
	free_strv(m->profile, m->n_profile);
	memset(m, 0, sizeof(*m));
}

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
		seterr(err, errlen, "out of memory");
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
			seterr(err, errlen, "boot file %s is listed more than once", strchr(who, '\''));
			rc = -1;
		}
	free(v);
	return rc;
}

int manifest_validate(const struct manifest *m, char *err, size_t errlen)
{
	char who[300], why[200];
	if (m->version < MANIFEST_VERSION_MIN || m->version > MANIFEST_VERSION) {
		seterr(err, errlen, "unsupported manifest version %d (this minivmm reads versions "
		       "%d to %d)", m->version, MANIFEST_VERSION_MIN, MANIFEST_VERSION);
		return -1;
	}
	if (m->chunk_size < MANIFEST_MIN_CHUNK || m->chunk_size > MANIFEST_MAX_CHUNK ||
	    (m->chunk_size & (m->chunk_size - 1))) {
		seterr(err, errlen, "chunk_size %llu is not a power of two from %llu to %llu",
		       (unsigned long long)m->chunk_size, MANIFEST_MIN_CHUNK, MANIFEST_MAX_CHUNK);
		return -1;
	}
	if (!m->blobs_url || !blobs_url_ok(m->blobs_url)) {
		seterr(err, errlen, "blobs URL is missing, absolute or leaves the image ('..')");
		return -1;
	}
	if (m->n_entries == 0 || m->entries[0].path[0] != '\0' || m->entries[0].type != MF_DIR) {
		seterr(err, errlen, "the first entry must be the root directory (path \"\")");
		return -1;
	}
	uint64_t total = 0;
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct manifest_entry *e = &m->entries[i];
		describe(e, i, who, sizeof(who));
		if (manifest_check_path(e->path, why, sizeof(why)) < 0) {
			seterr(err, errlen, "%s: %s", who, why);
			return -1;
		}
		if (i > 0 && cmp_path(m->entries[i - 1].path, e->path) >= 0) {
			seterr(err, errlen, "%s: paths are not sorted and unique "
			       "(it does not sort after the entry before it)", who);
			return -1;
		}
		if ((unsigned)e->type >= N_TYPES) {
			seterr(err, errlen, "%s: unknown type %d", who, (int)e->type);
			return -1;
		}
		if (e->mode & ~07777u) {
			seterr(err, errlen, "%s: mode %o has bits outside 07777", who, e->mode);
			return -1;
		}
		if (e->mtime_nsec >= 1000000000u) {
			seterr(err, errlen, "%s: mtime_nsec %u is not below 10^9", who, e->mtime_nsec);
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
				seterr(err, errlen, "%s: its parent directory is %s", who,
				       p ? "not a directory" : "missing");
				return -1;
			}
		}
		bool want_target = e->type == MF_SYMLINK || e->type == MF_HARDLINK;
		if (want_target != (e->target != NULL)) {
			seterr(err, errlen, "%s: a %s %s a target", who, manifest_type_name(e->type),
			       want_target ? "needs" : "has no");
			return -1;
		}
		if (e->type != MF_REG && (e->has_digest || e->n_chunks || e->packed)) {
			seterr(err, errlen, "%s: only regular files have a digest", who);
			return -1;
		}
		if (e->type != MF_CHR && e->type != MF_BLK && e->rdev) {
			seterr(err, errlen, "%s: only device nodes have rdev", who);
			return -1;
		}
		switch (e->type) {
		case MF_REG:
			if (!e->has_digest) {
				seterr(err, errlen, "%s: regular file without a digest", who);
				return -1;
			}
			if (e->size > INT64_MAX) {
				seterr(err, errlen, "%s: size too large", who);
				return -1;
			}
			if (e->n_chunks != manifest_chunk_count(e->size, m->chunk_size)) {
				seterr(err, errlen, "%s: has %zu chunk digests, size %llu needs %zu", who,
				       e->n_chunks, (unsigned long long)e->size,
				       manifest_chunk_count(e->size, m->chunk_size));
				return -1;
			}
			/* A packed blob only where it differs from the content:
			 * one form per content, so equal files stay equal. */
			if (e->packed && (!e->n_chunks || !manifest_hole_count(e, m->chunk_size))) {
				seterr(err, errlen, "%s: \"blob\" on a file with no hole chunk (store "
				       "it unpacked)", who);
				return -1;
			}
			if (total + e->size < total) {
				seterr(err, errlen, "%s: total size overflows", who);
				return -1;
			}
			total += e->size;
			break;
		case MF_SYMLINK:
			if (!e->target[0] || strlen(e->target) > MANIFEST_PATH_MAX ||
			    e->size != strlen(e->target)) {
				seterr(err, errlen, "%s: symlink target empty, too long, or size "
				       "not its length", who);
				return -1;
			}
			break;
		case MF_HARDLINK: {
			const struct manifest_entry *t = manifest_lookup(m, e->target);
			if (!t || t->type != MF_REG || t == e) {
				seterr(err, errlen, "%s: hard link target is %s", who,
				       !t ? "missing" : "not a regular file");
				return -1;
			}
			if (e->size) {
				seterr(err, errlen, "%s: a hard link has no size of its own", who);
				return -1;
			}
			break;
		}
		default:
			if (e->size) {
				seterr(err, errlen, "%s: a %s has no size", who, manifest_type_name(e->type));
				return -1;
			}
		}
		for (size_t k = 0; k < e->n_xattrs; k++) {
			const struct manifest_xattr *x = &e->xattrs[k];
			if (!x->name || !x->name[0] || strlen(x->name) > MANIFEST_NAME_MAX ||
			    x->len > MANIFEST_MAX_XATTR_VALUE ||
			    (k > 0 && strcmp(e->xattrs[k - 1].name, x->name) >= 0)) {
				seterr(err, errlen, "%s: xattr %zu is empty, too long, or not sorted "
				       "and unique", who, k);
				return -1;
			}
		}
	}
	if (total != m->total_bytes) {
		seterr(err, errlen, "total_bytes is %llu but the regular files add up to %llu",
		       (unsigned long long)m->total_bytes, (unsigned long long)total);
		return -1;
	}
	if (m->n_boot_files > MANIFEST_MAX_BOOT_FILES) {
		seterr(err, errlen, "%zu boot files, more than %d", m->n_boot_files,
		       MANIFEST_MAX_BOOT_FILES);
		return -1;
	}
	for (size_t i = 0; i < m->n_boot_files; i++) {
		const struct manifest_entry *e = manifest_lookup(m, m->boot_files[i]);
		if (!e) {
			struct manifest_entry shown = {.path = m->boot_files[i]};
			describe(&shown, i, who, sizeof(who));
			seterr(err, errlen, "boot file %s is not in the manifest", who + 6);
			return -1;
		}
	}
	if (boot_files_unique(m, err, errlen) < 0)
		return -1;
	/* The profile is a hint: paths no longer in the image (an edited
	 * image, a stale profile) are skipped by the prefetcher, not refused
	 * (image/profile.c). Only its length is bounded, at parse time. */
	if (m->cmdline && strlen(m->cmdline) >= MANIFEST_MAX_CMDLINE) {
		seterr(err, errlen, "boot cmdline longer than %d bytes", MANIFEST_MAX_CMDLINE - 1);
		return -1;
	}
	return 0;
}

/* --- parsing --- */

struct pctx {
	char *err;
	size_t errlen;
	char where[300]; /* "entry 5" or "boot" */
};

static int perr(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct pctx *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->where[0])
		seterr(c->err, c->errlen, "%s: %s", c->where, msg);
	else
		seterr(c->err, c->errlen, "%s", msg);
	return -1;
}

/* Every key of obj must be one of allowed (NULL-terminated). */
static int check_keys(struct pctx *c, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				ok = true;
		if (!ok)
			return perr(c, "unknown key \"%.60s\"", key);
	}
	return 0;
}

static int get_u64(struct pctx *c, json_t *obj, const char *key, bool required,
		   uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v) {
		if (required)
			return perr(c, "missing \"%s\"", key);
		*out = 0;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return perr(c, "\"%s\" is not an integer from 0 to %llu", key,
			    (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_str(struct pctx *c, json_t *obj, const char *key, bool required, char **out)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v) {
		if (required)
			return perr(c, "missing \"%s\"", key);
		return 0;
	}
	if (!json_is_string(v))
		return perr(c, "\"%s\" is not a string", key);
	if (!(*out = strdup(json_string_value(v))))
		return perr(c, "out of memory");
	return 0;
}

/* A byte string stored as "key" (UTF-8 text) or "key_b64" (base64 of the
 * bytes, for names that are not UTF-8): exactly one of them, no NUL. */
static int get_bytes_str(struct pctx *c, json_t *obj, const char *key, bool required, char **out)
{
	char bkey[64];
	snprintf(bkey, sizeof(bkey), "%s_b64", key);
	json_t *t = json_object_get(obj, key), *b = json_object_get(obj, bkey);
	*out = NULL;
	if (t && b)
		return perr(c, "both \"%s\" and \"%s\"", key, bkey);
	if (!t && !b)
		return required ? perr(c, "missing \"%s\"", key) : 0;
	if (t)
		return get_str(c, obj, key, true, out);
	if (!json_is_string(b))
		return perr(c, "\"%s\" is not a string", bkey);
	size_t n;
	uint8_t *d = b64_decode(json_string_value(b), json_string_length(b), &n);
	if (!d)
		return perr(c, "\"%s\" is not valid base64", bkey);
	if (memchr(d, '\0', n)) {
		free(d);
		return perr(c, "\"%s\" holds a NUL byte", bkey);
	}
	*out = (char *)d;
	return 0;
}

static int get_digest(struct pctx *c, json_t *v, const char *what, uint8_t out[MANIFEST_DIGEST_LEN])
{
	if (!json_is_string(v) || json_string_length(v) != 2 * MANIFEST_DIGEST_LEN ||
	    manifest_hex_digest(json_string_value(v), out) < 0)
		return perr(c, "%s is not 64 lowercase hex digits", what);
	return 0;
}

static int parse_blob_ref(struct pctx *c, json_t *obj, const char *key, struct manifest_blob_ref *r)
{
	static const char *const keys[] = {"digest", "size", NULL};
	json_t *v = json_object_get(obj, key);
	memset(r, 0, sizeof(*r));
	if (!v || json_is_null(v))
		return 0;
	char saved[sizeof(c->where)];
	memcpy(saved, c->where, sizeof(saved));
	snprintf(c->where, sizeof(c->where), "%.200s.%.60s", saved, key);
	int rc = -1;
	if (!json_is_object(v)) {
		perr(c, "not an object");
		goto out;
	}
	if (check_keys(c, v, keys) < 0 || get_u64(c, v, "size", true, INT64_MAX, &r->size) < 0)
		goto out;
	json_t *d = json_object_get(v, "digest");
	if (!d) {
		perr(c, "missing \"digest\"");
		goto out;
	}
	if (get_digest(c, d, "\"digest\"", r->digest) < 0)
		goto out;
	r->present = true;
	rc = 0;
out:
	memcpy(c->where, saved, sizeof(saved));
	return rc;
}

/* At most max strings are kept; the rest are ignored (a hint list such as
 * the profile must not cost unbounded memory). */
static int parse_strv(struct pctx *c, json_t *obj, const char *key, size_t max, char ***out,
		      size_t *n)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	*n = 0;
	if (!v)
		return 0;
	if (!json_is_array(v))
		return perr(c, "\"%s\" is not an array", key);
	size_t len = json_array_size(v);
	if (len > max)
		len = max;
	if (!len)
		return 0;
	if (!(*out = calloc(len, sizeof(char *))))
		return perr(c, "out of memory");
	for (size_t i = 0; i < len; i++) {
		json_t *s = json_array_get(v, i);
		const char *txt = NULL;
		char *bytes = NULL;
		if (json_is_string(s)) {
			txt = json_string_value(s);
		} else if (json_is_object(s) && json_is_string(json_object_get(s, "b64"))) {
			json_t *b = json_object_get(s, "b64");
			size_t bl;
			bytes = (char *)b64_decode(json_string_value(b), json_string_length(b), &bl);
			if (!bytes || memchr(bytes, '\0', bl)) {
				free(bytes);
				return perr(c, "\"%s\"[%zu] is not valid base64 of a path", key, i);
			}
		} else {
			return perr(c, "\"%s\"[%zu] is not a path", key, i);
		}
		(*out)[i] = bytes ? bytes : strdup(txt);
		if (!(*out)[i])
			return perr(c, "out of memory");
		(*n)++;
	}
	return 0;
}

/* boot.files: bounded, not cut (each is fetched before boot). */
static int parse_boot_files(struct pctx *c, json_t *boot, struct manifest *m)
{
	json_t *v = json_object_get(boot, "files");
	if (json_is_array(v) && json_array_size(v) > MANIFEST_MAX_BOOT_FILES)
		return perr(c, "\"files\" lists %zu paths, more than %d", json_array_size(v),
			    MANIFEST_MAX_BOOT_FILES);
	return parse_strv(c, boot, "files", MANIFEST_MAX_BOOT_FILES, &m->boot_files,
			  &m->n_boot_files);
}

static int parse_type(const char *s, enum manifest_type *t)
{
	for (size_t i = 0; i < N_TYPES; i++)
		if (strcmp(s, type_names[i]) == 0) {
			*t = (enum manifest_type)i;
			return 0;
		}
	return -1;
}

static int parse_entry(struct pctx *c, json_t *o, const struct manifest *m,
		       struct manifest_entry *e)
{
	static const char *const keys[] = {
		"path", "path_b64", "type", "mode", "uid", "gid", "mtime", "mtime_nsec",
		"size", "target", "target_b64", "rdev", "digest", "chunks", "xattrs", "blob", NULL};
	if (!json_is_object(o))
		return perr(c, "not an object");
	/* Unknown keys: count the known ones present (one hash lookup each)
	 * rather than comparing every key with the list; the slow check only
	 * runs to name the culprit. 100,000 entries make this worth it. */
	size_t known = 0;
	for (const char *const *k = keys; *k; k++)
		known += json_object_get(o, *k) != NULL;
	if (known != json_object_size(o) && check_keys(c, o, keys) < 0)
		return -1;
	if (get_bytes_str(c, o, "path", true, &e->path) < 0)
		return -1;
	json_t *t = json_object_get(o, "type");
	if (!json_is_string(t) || parse_type(json_string_value(t), &e->type) < 0)
		return perr(c, "\"type\" is missing or not one of reg, dir, symlink, hardlink, "
			    "chr, blk, fifo, sock");
	uint64_t v;
	if (get_u64(c, o, "mode", true, 07777, &v) < 0)
		return -1;
	e->mode = (uint32_t)v;
	if (get_u64(c, o, "uid", true, UINT32_MAX, &v) < 0)
		return -1;
	e->uid = (uint32_t)v;
	if (get_u64(c, o, "gid", true, UINT32_MAX, &v) < 0)
		return -1;
	e->gid = (uint32_t)v;
	json_t *mt = json_object_get(o, "mtime");
	if (!json_is_integer(mt))
		return perr(c, "\"mtime\" is missing or not an integer");
	e->mtime_sec = json_integer_value(mt);
	if (get_u64(c, o, "mtime_nsec", false, 999999999, &v) < 0)
		return -1;
	e->mtime_nsec = (uint32_t)v;
	if (get_u64(c, o, "size", e->type == MF_REG, INT64_MAX, &e->size) < 0 ||
	    get_u64(c, o, "rdev", false, UINT64_MAX >> 1, &e->rdev) < 0 ||
	    get_bytes_str(c, o, "target", false, &e->target) < 0)
		return -1;
	json_t *d = json_object_get(o, "digest");
	if (d) {
		if (get_digest(c, d, "\"digest\"", e->digest) < 0)
			return -1;
		e->has_digest = true;
	}
	json_t *ch = json_object_get(o, "chunks");
	if (ch) {
		if (!json_is_array(ch))
			return perr(c, "\"chunks\" is not an array");
		size_t n = json_array_size(ch);
		/* Checked against the size before allocating, so a forged
		 * list cannot make us allocate more than the file needs. */
		if (e->type != MF_REG || n != manifest_chunk_count(e->size, m->chunk_size))
			return perr(c, "\"chunks\" has %zu digests, size %llu needs %zu", n,
				    (unsigned long long)e->size,
				    e->type == MF_REG ? manifest_chunk_count(e->size, m->chunk_size) : 0);
		if (n && !(e->chunks = malloc(n * sizeof(*e->chunks))))
			return perr(c, "out of memory");
		for (size_t i = 0; i < n; i++) {
			char what[48];
			snprintf(what, sizeof(what), "chunk %zu", i);
			if (get_digest(c, json_array_get(ch, i), what, e->chunks[i]) < 0)
				return -1;
		}
		e->n_chunks = n;
	}
	json_t *pb = json_object_get(o, "blob");
	if (pb) {
		/* A key of version 2: a version 1 reader would not know it. */
		if (m->version < MANIFEST_VERSION_PACKED)
			return perr(c, "unknown key \"blob\" (packed files need manifest version %d)",
				    MANIFEST_VERSION_PACKED);
		if (e->type != MF_REG || !e->n_chunks)
			return perr(c, "\"blob\" on an entry that is not a chunked regular file");
		if (get_digest(c, pb, "\"blob\"", e->blob) < 0)
			return -1;
		e->packed = true;
	}
	json_t *xs = json_object_get(o, "xattrs");
	if (xs) {
		static const char *const xkeys[] = {"name", "value_b64", NULL};
		if (!json_is_array(xs))
			return perr(c, "\"xattrs\" is not an array");
		size_t n = json_array_size(xs);
		if (n && !(e->xattrs = calloc(n, sizeof(*e->xattrs))))
			return perr(c, "out of memory");
		for (size_t i = 0; i < n; i++) {
			json_t *x = json_array_get(xs, i), *val;
			struct manifest_xattr *mx = &e->xattrs[i];
			e->n_xattrs = i + 1;
			if (!json_is_object(x) || check_keys(c, x, xkeys) < 0 ||
			    get_str(c, x, "name", true, &mx->name) < 0)
				return perr(c, "xattr %zu is not {\"name\", \"value_b64\"}", i);
			val = json_object_get(x, "value_b64");
			if (!json_is_string(val) ||
			    !(mx->value = b64_decode(json_string_value(val), json_string_length(val), &mx->len)))
				return perr(c, "xattr %zu: \"value_b64\" is not valid base64", i);
		}
	}
	return 0;
}

/* --- bounding the work before jansson ---
 * A structural scan of the JSON text, fed piece by piece as zstd produces
 * it: nesting depth, values and containers are counted outside strings,
 * and the first limit passed stops the decompression (a bomb of 33 M empty
 * arrays is refused after 2 M, having cost a few MB, instead of the 4.8 GB
 * jansson would have taken). The scan does not validate JSON; jansson does,
 * on text that is now known to be cheap enough to parse. */
struct json_scan {
	unsigned depth;
	uint32_t objects;  /* bit d: the container at depth d is an object */
	uint64_t elements, containers;
	bool in_string, escape;
};

static int json_scan_feed(struct json_scan *sc, const char *p, size_t n, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (sc->in_string) {
			if (sc->escape)
				sc->escape = false;
			else if (ch == '\\')
				sc->escape = true;
			else if (ch == '"')
				sc->in_string = false;
			continue;
		}
		switch (ch) {
		case '"':
			sc->in_string = true;
			break;
		case '{':
		case '[':
			if (++sc->depth > MANIFEST_MAX_DEPTH) {
				seterr(err, errlen, "JSON nested deeper than %d levels (the manifest "
				       "format needs 5)", MANIFEST_MAX_DEPTH);
				return -1;
			}
			if (++sc->containers > MANIFEST_MAX_CONTAINERS) {
				seterr(err, errlen, "more than %u JSON objects and arrays (a manifest "
				       "of up to %u entries needs fewer)", MANIFEST_MAX_CONTAINERS,
				       MANIFEST_MAX_ENTRIES);
				return -1;
			}
			if (ch == '{')
				sc->objects |= 1u << sc->depth;
			else
				sc->objects &= ~(1u << sc->depth);
			break;
		case '}':
		case ']':
			if (sc->depth)
				sc->depth--;
			break;
		case ',': /* one more value in an array */
			if (sc->depth && (sc->objects >> sc->depth & 1))
				break;
			/* fall through */
		case ':': /* one more member of an object */
			if (++sc->elements > MANIFEST_MAX_ELEMENTS) {
				seterr(err, errlen, "more than %u JSON values (a manifest of up to %u "
				       "entries needs fewer)", MANIFEST_MAX_ELEMENTS, MANIFEST_MAX_ENTRIES);
				return -1;
			}
			break;
		default:
			break;
		}
	}
	return 0;
}

#define ZSTD_PIECE (1u << 20) /* decompressed bytes scanned at a time */

/* Decompress buf, scanning as it goes; stops at MANIFEST_MAX_BYTES or the
 * first structural limit. */
static void *zstd_unpack(const void *buf, size_t len, size_t *outlen, char *err, size_t errlen)
{
	ZSTD_DStream *ds = ZSTD_createDStream();
	size_t cap = ZSTD_PIECE, used = 0;
	char *out = malloc(cap);
	struct json_scan sc = {0};
	if (!ds || !out)
		goto fail_mem;
	ZSTD_initDStream(ds);
	ZSTD_inBuffer in = {buf, len, 0};
	size_t ret = 1;
	while (in.pos < in.size || ret != 0) {
		if (cap - used < ZSTD_PIECE) {
			if (cap >= MANIFEST_MAX_BYTES) {
				seterr(err, errlen, "decompressed manifest larger than %llu bytes",
				       MANIFEST_MAX_BYTES);
				goto fail;
			}
			char *p = realloc(out, cap * 2);
			if (!p)
				goto fail_mem;
			out = p, cap *= 2;
		}
		/* One piece at a time, so that the scan sees it before the
		 * next is produced. */
		ZSTD_outBuffer ob = {out + used, ZSTD_PIECE, 0};
		size_t before = in.pos;
		ret = ZSTD_decompressStream(ds, &ob, &in);
		if (ZSTD_isError(ret)) {
			seterr(err, errlen, "zstd: %s", ZSTD_getErrorName(ret));
			goto fail;
		}
		if (ret != 0 && in.pos == in.size && ob.pos == 0 && before == in.pos) {
			seterr(err, errlen, "zstd: compressed manifest is truncated");
			goto fail;
		}
		if (json_scan_feed(&sc, out + used, ob.pos, err, errlen) < 0)
			goto fail;
		used += ob.pos;
		if (used > MANIFEST_MAX_BYTES) {
			seterr(err, errlen, "decompressed manifest larger than %llu bytes",
			       MANIFEST_MAX_BYTES);
			goto fail;
		}
	}
	ZSTD_freeDStream(ds);
	*outlen = used;
	return out;
fail_mem:
	seterr(err, errlen, "out of memory");
fail:
	ZSTD_freeDStream(ds);
	free(out);
	return NULL;
}

static int parse_json(json_t *root, struct manifest *m, char *err, size_t errlen)
{
	static const char *const keys[] = {"version", "name", "chunk_size", "blobs", "total_bytes",
					   "boot", "disk", "entries", NULL};
	static const char *const boot_keys[] = {"kernel", "initrd_lazy", "initrd_full", "cmdline",
						"files", "profile", NULL};
	struct pctx c = {err, errlen, ""};
	uint64_t v;
	if (!json_is_object(root))
		return perr(&c, "the manifest is not a JSON object");
	json_t *ver = json_object_get(root, "version");
	if (!json_is_integer(ver))
		return perr(&c, "missing or non-integer \"version\"");
	if (json_integer_value(ver) < MANIFEST_VERSION_MIN ||
	    json_integer_value(ver) > MANIFEST_VERSION)
		return perr(&c, "unsupported manifest version %lld (this minivmm reads versions %d "
			    "to %d)", (long long)json_integer_value(ver), MANIFEST_VERSION_MIN,
			    MANIFEST_VERSION);
	m->version = (int)json_integer_value(ver);
	if (check_keys(&c, root, keys) < 0 || get_str(&c, root, "name", false, &m->name) < 0 ||
	    get_u64(&c, root, "chunk_size", true, MANIFEST_MAX_CHUNK, &m->chunk_size) < 0 ||
	    get_str(&c, root, "blobs", true, &m->blobs_url) < 0 ||
	    get_u64(&c, root, "total_bytes", true, UINT64_MAX >> 1, &v) < 0)
		return -1;
	m->total_bytes = v;
	if (m->chunk_size < MANIFEST_MIN_CHUNK || (m->chunk_size & (m->chunk_size - 1)))
		return perr(&c, "chunk_size %llu is not a power of two from %llu to %llu",
			    (unsigned long long)m->chunk_size, MANIFEST_MIN_CHUNK, MANIFEST_MAX_CHUNK);

	json_t *boot = json_object_get(root, "boot");
	if (boot) {
		snprintf(c.where, sizeof(c.where), "boot");
		if (!json_is_object(boot))
			return perr(&c, "not an object");
		if (check_keys(&c, boot, boot_keys) < 0 ||
		    parse_blob_ref(&c, boot, "kernel", &m->kernel) < 0 ||
		    parse_blob_ref(&c, boot, "initrd_lazy", &m->initrd_lazy) < 0 ||
		    parse_blob_ref(&c, boot, "initrd_full", &m->initrd_full) < 0 ||
		    get_str(&c, boot, "cmdline", false, &m->cmdline) < 0 ||
		    parse_boot_files(&c, boot, m) < 0 ||
		    parse_strv(&c, boot, "profile", MANIFEST_MAX_PROFILE, &m->profile,
			       &m->n_profile) < 0)
			return -1;
		c.where[0] = '\0';
	}
	json_t *disk = json_object_get(root, "disk");
	if (disk) {
		static const char *const dkeys[] = {"digest", "size", "format", "tree", NULL};
		snprintf(c.where, sizeof(c.where), "disk");
		json_t *fmt = json_object_get(disk, "format");
		if (!json_is_object(disk) || check_keys(&c, disk, dkeys) < 0)
			return perr(&c, "not an object with digest, size, format");
		if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "ext4") != 0)
			return perr(&c, "\"format\" is not \"ext4\"");
		if (get_u64(&c, disk, "size", true, INT64_MAX, &m->disk.size) < 0 ||
		    get_digest(&c, json_object_get(disk, "digest"), "\"digest\"", m->disk.digest) < 0)
			return -1;
		json_t *tree = json_object_get(disk, "tree");
		if (tree && get_digest(&c, tree, "\"tree\"", m->disk_tree) < 0)
			return -1;
		m->disk_tree_present = tree != NULL;
		m->disk.present = true;
		c.where[0] = '\0';
	}

	json_t *entries = json_object_get(root, "entries");
	if (!json_is_array(entries))
		return perr(&c, "missing \"entries\" array");
	size_t n = json_array_size(entries);
	if (!n)
		return perr(&c, "\"entries\" is empty (the root directory is missing)");
	if (n > MANIFEST_MAX_ENTRIES)
		return perr(&c, "%zu entries, more than the %u an image may have", n,
			    MANIFEST_MAX_ENTRIES);
	if (!(m->entries = calloc(n, sizeof(*m->entries))))
		return perr(&c, "out of memory");
	for (size_t i = 0; i < n; i++) {
		snprintf(c.where, sizeof(c.where), "entry %zu", i);
		m->n_entries = i + 1;
		if (parse_entry(&c, json_array_get(entries, i), m, &m->entries[i]) < 0)
			return -1;
	}
	return manifest_validate(m, err, errlen);
}

int manifest_parse(const void *buf, size_t len, struct manifest *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	void *plain = NULL;
	if (len >= 4 && memcmp(buf, zstd_magic, 4) == 0) {
		if (!(plain = zstd_unpack(buf, len, &len, err, errlen)))
			return -1;
		buf = plain;
	} else {
		struct json_scan sc = {0};
		if (len > MANIFEST_MAX_BYTES) {
			seterr(err, errlen, "manifest larger than %llu bytes", MANIFEST_MAX_BYTES);
			return -1;
		}
		if (json_scan_feed(&sc, buf, len, err, errlen) < 0)
			return -1;
	}
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(plain);
	if (!root) {
		seterr(err, errlen, "not valid JSON (truncated or damaged?): %s at line %d column %d",
		       jerr.text, jerr.line, jerr.column);
		return -1;
	}
	int rc = parse_json(root, m, err, errlen);
	json_decref(root);
	if (rc < 0)
		manifest_free(m);
	return rc;
}

static int read_whole(const char *path, void **out, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MANIFEST_MAX_BYTES) {
		seterr(err, errlen, "%s: not a regular file, or larger than %llu bytes", path,
		       MANIFEST_MAX_BYTES);
		close(fd);
		return -1;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		seterr(err, errlen, "%s: short read", path);
		free(buf);
		return -1;
	}
	*out = buf;
	*len = got;
	return 0;
}

int manifest_load_file(const char *path, struct manifest *m, char *err, size_t errlen)
{
	void *buf;
	size_t len;
	memset(m, 0, sizeof(*m));
	if (read_whole(path, &buf, &len, err, errlen) < 0)
		return -1;
	char why[512];
	int rc = manifest_parse(buf, len, m, why, sizeof(why));
	free(buf);
	if (rc < 0)
		seterr(err, errlen, "%s: %s", path, why);
	return rc;
}

/* --- writing --- */

static int set_bytes_str(json_t *o, const char *key, const char *s)
{
	size_t n = strlen(s);
	if (utf8_valid((const unsigned char *)s, n))
		return json_object_set_new(o, key, json_stringn(s, n));
	char bkey[64];
	snprintf(bkey, sizeof(bkey), "%s_b64", key);
	char *b = b64_encode((const uint8_t *)s, n);
	if (!b)
		return -1;
	int rc = json_object_set_new(o, bkey, json_string(b));
	free(b);
	return rc;
}

static json_t *path_value(const char *s)
{
	size_t n = strlen(s);
	if (utf8_valid((const unsigned char *)s, n))
		return json_stringn(s, n);
	char *b = b64_encode((const uint8_t *)s, n);
	json_t *o = json_object();
	json_object_set_new(o, "b64", json_string(b ? b : ""));
	free(b);
	return o;
}

static json_t *digest_value(const uint8_t d[MANIFEST_DIGEST_LEN])
{
	char hex[2 * MANIFEST_DIGEST_LEN + 1];
	manifest_digest_hex(d, hex);
	return json_string(hex);
}

static json_t *blob_ref_value(const struct manifest_blob_ref *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "digest", digest_value(r->digest));
	json_object_set_new(o, "size", json_integer((json_int_t)r->size));
	return o;
}

static json_t *entry_value(const struct manifest_entry *e)
{
	json_t *o = json_object();
	set_bytes_str(o, "path", e->path);
	json_object_set_new(o, "type", json_string(manifest_type_name(e->type)));
	json_object_set_new(o, "mode", json_integer(e->mode));
	json_object_set_new(o, "uid", json_integer(e->uid));
	json_object_set_new(o, "gid", json_integer(e->gid));
	json_object_set_new(o, "mtime", json_integer(e->mtime_sec));
	if (e->mtime_nsec)
		json_object_set_new(o, "mtime_nsec", json_integer(e->mtime_nsec));
	if (e->type == MF_REG || e->type == MF_SYMLINK)
		json_object_set_new(o, "size", json_integer((json_int_t)e->size));
	if (e->target)
		set_bytes_str(o, "target", e->target);
	if (e->type == MF_CHR || e->type == MF_BLK)
		json_object_set_new(o, "rdev", json_integer((json_int_t)e->rdev));
	if (e->has_digest)
		json_object_set_new(o, "digest", digest_value(e->digest));
	if (e->n_chunks) {
		json_t *a = json_array();
		for (size_t i = 0; i < e->n_chunks; i++)
			json_array_append_new(a, digest_value(e->chunks[i]));
		json_object_set_new(o, "chunks", a);
	}
	if (e->packed)
		json_object_set_new(o, "blob", digest_value(e->blob));
	if (e->n_xattrs) {
		json_t *a = json_array();
		for (size_t i = 0; i < e->n_xattrs; i++) {
			json_t *x = json_object();
			char *b = b64_encode(e->xattrs[i].value, e->xattrs[i].len);
			json_object_set_new(x, "name", json_string(e->xattrs[i].name));
			json_object_set_new(x, "value_b64", json_string(b ? b : ""));
			free(b);
			json_array_append_new(a, x);
		}
		json_object_set_new(o, "xattrs", a);
	}
	return o;
}

int manifest_tree_digest(const struct manifest *m, uint8_t out[MANIFEST_DIGEST_LEN])
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < m->n_entries; i++)
		if (json_array_append_new(a, entry_value(&m->entries[i])) < 0)
			break;
	char *js = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	unsigned dl = 0;
	int rc = js && EVP_Digest(js, strlen(js), out, &dl, EVP_sha256(), NULL) == 1 ? 0 : -1;
	free(js);
	json_decref(a);
	return rc;
}

int manifest_write(const struct manifest *m, bool compress, void **out, size_t *outlen,
		   char *err, size_t errlen)
{
	char why[512];
	if (manifest_validate(m, why, sizeof(why)) < 0) {
		seterr(err, errlen, "refusing to write an invalid manifest: %s", why);
		return -1;
	}
	json_t *root = json_object();
	/* The version the content needs: an image without packed files
	 * stays readable by a minivmm that knows version 1 only. */
	json_object_set_new(root, "version", json_integer(manifest_has_packed(m) ?
							  MANIFEST_VERSION_PACKED : MANIFEST_VERSION_MIN));
	if (m->name)
		json_object_set_new(root, "name", json_string(m->name));
	json_object_set_new(root, "chunk_size", json_integer((json_int_t)m->chunk_size));
	json_object_set_new(root, "blobs", json_string(m->blobs_url));
	json_object_set_new(root, "total_bytes", json_integer((json_int_t)m->total_bytes));
	json_t *boot = json_object();
	if (m->kernel.present)
		json_object_set_new(boot, "kernel", blob_ref_value(&m->kernel));
	if (m->initrd_lazy.present)
		json_object_set_new(boot, "initrd_lazy", blob_ref_value(&m->initrd_lazy));
	if (m->initrd_full.present)
		json_object_set_new(boot, "initrd_full", blob_ref_value(&m->initrd_full));
	if (m->cmdline)
		json_object_set_new(boot, "cmdline", json_string(m->cmdline));
	json_t *files = json_array(), *prof = json_array();
	for (size_t i = 0; i < m->n_boot_files; i++)
		json_array_append_new(files, path_value(m->boot_files[i]));
	for (size_t i = 0; i < m->n_profile; i++)
		json_array_append_new(prof, path_value(m->profile[i]));
	json_object_set_new(boot, "files", files);
	json_object_set_new(boot, "profile", prof);
	json_object_set_new(root, "boot", boot);
	if (m->disk.present) {
		json_t *d = blob_ref_value(&m->disk);
		if (m->disk_tree_present)
			json_object_set_new(d, "tree", digest_value(m->disk_tree));
		json_object_set_new(d, "format", json_string("ext4"));
		json_object_set_new(root, "disk", d);
	}
	json_t *entries = json_array();
	for (size_t i = 0; i < m->n_entries; i++)
		json_array_append_new(entries, entry_value(&m->entries[i]));
	json_object_set_new(root, "entries", entries);

	/* Compact: the manifest travels before boot; jq pretty-prints it. */
	char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text) {
		seterr(err, errlen, "out of memory writing the manifest");
		return -1;
	}
	size_t len = strlen(text);
	if (!compress) {
		*out = text;
		*outlen = len;
		return 0;
	}
	size_t cap = ZSTD_compressBound(len);
	void *z = malloc(cap);
	size_t zlen = z ? ZSTD_compress(z, cap, text, len, MANIFEST_ZSTD_LEVEL) : 0;
	free(text);
	if (!z || ZSTD_isError(zlen)) {
		free(z);
		seterr(err, errlen, "zstd compression of the manifest failed");
		return -1;
	}
	*out = z;
	*outlen = zlen;
	return 0;
}

int manifest_write_file(const struct manifest *m, const char *path, bool compress,
			char *err, size_t errlen)
{
	void *buf;
	size_t len;
	if (manifest_write(m, compress, &buf, &len, err, errlen) < 0)
		return -1;
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	bool ok = fd >= 0 && write_all(fd, buf, len) == 0 && fsync(fd) == 0;
	int saved = errno;
	free(buf);
	if (fd >= 0 && close(fd) < 0 && ok)
		ok = false, saved = errno;
	if (ok && rename(tmp, path) < 0)
		ok = false, saved = errno;
	if (!ok) {
		seterr(err, errlen, "%s: %s", path, saved ? strerror(saved) : "short write");
		unlink(tmp);
		return -1;
	}
	return 0;
}
