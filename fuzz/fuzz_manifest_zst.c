/*
 * libFuzzer target: the manifest parser's compressed path. The input is
 * the JSON text; it is zstd-compressed here and handed to manifest_parse,
 * so that mutations explore the structure (depth, counts, bombs of empty
 * arrays) through the streaming decompression and its structural scan,
 * which random bytes after a zstd magic would almost never reach. Whatever
 * the text, the parse must stay within the limits of image/manifest.h
 * (libFuzzer's -rss_limit_mb catches one that does not) and agree with the
 * parse of the same text uncompressed.
 */
#include "image/manifest.h"
#include "lib/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define FUZZ_ZSTD_LEVEL 1

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_set_quiet(1);
	size_t cap = ZSTD_compressBound(size);
	void *z = malloc(cap);
	if (!z)
		return 0;
	size_t zlen = ZSTD_compress(z, cap, data, size, FUZZ_ZSTD_LEVEL);
	if (ZSTD_isError(zlen)) {
		free(z);
		return 0;
	}
	struct manifest mz, mp;
	char err[256];
	int rz = manifest_parse(z, zlen, &mz, err, sizeof(err));
	free(z);
	/* Plain text starting with the zstd magic would be taken as zstd. */
	int rp = size >= 4 && !memcmp(data, "\x28\xb5\x2f\xfd", 4) ? rz
		 : manifest_parse(data, size, &mp, err, sizeof(err));
	if (rz != rp)
		abort(); /* compressed or not, the same text gets the same answer */
	if (rz == 0) {
		if (mz.n_entries > MANIFEST_MAX_ENTRIES || mz.n_boot_files > MANIFEST_MAX_BOOT_FILES ||
		    mz.n_entries != mp.n_entries)
			abort();
		manifest_free(&mp);
	}
	manifest_free(&mz);
	return 0;
}
