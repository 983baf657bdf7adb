/*
 * The image manifest's common part: type names, digests in hex, names as
 * bytes (UTF-8 check, base64), paths, lookup, sorting and freeing. The
 * format is docs/image-format.md; the parser is manifest_parse.c (bounded
 * by manifest_bound.c), the rules manifest_validate.c, the writer and the
 * tree digest manifest_write.c.
 */
#include "image/manifest_priv.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const manifest_type_names[] = {
	[MF_REG] = "reg", [MF_DIR] = "dir", [MF_SYMLINK] = "symlink",
	[MF_HARDLINK] = "hardlink", [MF_CHR] = "chr", [MF_BLK] = "blk",
	[MF_FIFO] = "fifo", [MF_SOCK] = "sock",
};
const size_t manifest_n_types = sizeof(manifest_type_names) / sizeof(manifest_type_names[0]);

void manifest_seterr(char *err, size_t errlen, const char *fmt, ...)
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
	return (unsigned)t < manifest_n_types ? manifest_type_names[t] : "?";
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

bool manifest_utf8_valid(const unsigned char *s, size_t n)
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

char *manifest_b64_encode(const uint8_t *in, size_t n)
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
uint8_t *manifest_b64_decode(const char *in, size_t n, size_t *outlen)
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
		manifest_seterr(err, errlen, "path is longer than %d bytes", MANIFEST_PATH_MAX);
		return -1;
	}
	if (path[0] == '/') {
		manifest_seterr(err, errlen, "path is absolute (starts with '/')");
		return -1;
	}
	const char *p = path;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0) {
			manifest_seterr(err, errlen, "path has an empty component");
			return -1;
		}
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			manifest_seterr(err, errlen, "path has a '%.*s' component", (int)n, p);
			return -1;
		}
		if (n > MANIFEST_NAME_MAX) {
			manifest_seterr(err, errlen, "path has a component longer than %d bytes", MANIFEST_NAME_MAX);
			return -1;
		}
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

int manifest_cmp_path(const char *a, const char *b)
{
	return strcmp(a, b); /* strcmp compares as unsigned char: bytewise */
}

long manifest_index(const struct manifest *m, const char *path)
{
	size_t lo = 0, hi = m->n_entries;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = manifest_cmp_path(m->entries[mid].path, path);
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
	return manifest_cmp_path(x->path, y->path);
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

