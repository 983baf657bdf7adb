/*
 * Bounding the work before jansson: a structural scan of the JSON text,
 * fed piece by piece as zstd produces it: nesting depth, values and
 * containers are counted outside strings, and the first limit passed stops
 * the decompression (a bomb of 33 M empty arrays is refused after 2 M,
 * having cost a few MB, instead of the 4.8 GB jansson would have taken).
 * The scan does not validate JSON; jansson does, on text that is now known
 * to be cheap enough to parse.
 */
#include "image/manifest_priv.h"

#include <stdlib.h>
#include <zstd.h>

int manifest_scan_feed(struct json_scan *sc, const char *p, size_t n, char *err, size_t errlen)
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
				manifest_seterr(err, errlen, "JSON nested deeper than %d levels (the manifest "
				       "format needs 5)", MANIFEST_MAX_DEPTH);
				return -1;
			}
			if (++sc->containers > MANIFEST_MAX_CONTAINERS) {
				manifest_seterr(err, errlen, "more than %u JSON objects and arrays (a manifest "
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
				manifest_seterr(err, errlen, "more than %u JSON values (a manifest of up to %u "
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
void *manifest_zstd_unpack(const void *buf, size_t len, size_t *outlen, char *err, size_t errlen)
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
				manifest_seterr(err, errlen, "decompressed manifest larger than %llu bytes",
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
			manifest_seterr(err, errlen, "zstd: %s", ZSTD_getErrorName(ret));
			goto fail;
		}
		if (ret != 0 && in.pos == in.size && ob.pos == 0 && before == in.pos) {
			manifest_seterr(err, errlen, "zstd: compressed manifest is truncated");
			goto fail;
		}
		if (manifest_scan_feed(&sc, out + used, ob.pos, err, errlen) < 0)
			goto fail;
		used += ob.pos;
		if (used > MANIFEST_MAX_BYTES) {
			manifest_seterr(err, errlen, "decompressed manifest larger than %llu bytes",
			       MANIFEST_MAX_BYTES);
			goto fail;
		}
	}
	ZSTD_freeDStream(ds);
	*outlen = used;
	return out;
fail_mem:
	manifest_seterr(err, errlen, "out of memory");
fail:
	ZSTD_freeDStream(ds);
	free(out);
	return NULL;
}

