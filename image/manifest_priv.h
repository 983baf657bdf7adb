/*
 * What the manifest's files share (image/manifest.c: names, lookup,
 * freeing; manifest_validate.c; manifest_parse.c; manifest_bound.c: the
 * scan that bounds parsing work; manifest_write.c). Private to
 * image/manifest*.c; the contract for everyone else is manifest.h.
 * err/errlen are as in manifest.h: err may be NULL.
 */
#ifndef MINIVMM_IMAGE_MANIFEST_PRIV_H
#define MINIVMM_IMAGE_MANIFEST_PRIV_H

#include "image/manifest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "reg", "dir", ... indexed by enum manifest_type; manifest_n_types long. */
extern const char *const manifest_type_names[];
extern const size_t manifest_n_types;

/* printf into err (if any), truncating. */
void manifest_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Names are bytes: valid UTF-8 is written as is, anything else as base64
 * (RFC 4648, padded). decode returns a NUL-terminated malloc'd buffer of
 * *outlen bytes, or NULL if in is not valid base64. */
bool manifest_utf8_valid(const unsigned char *s, size_t n);
char *manifest_b64_encode(const uint8_t *in, size_t n);
uint8_t *manifest_b64_decode(const char *in, size_t n, size_t *outlen);

/* The order of entries: bytewise on paths. */
int manifest_cmp_path(const char *a, const char *b);

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

/* Scan n more bytes of JSON text; -1 (err set) at the first limit passed. */
int manifest_scan_feed(struct json_scan *sc, const char *p, size_t n, char *err, size_t errlen);
/* Decompress a zstd manifest, scanning as it goes; stops at
 * MANIFEST_MAX_BYTES or the first structural limit. malloc'd, or NULL. */
void *manifest_zstd_unpack(const void *buf, size_t len, size_t *outlen, char *err, size_t errlen);

#endif
