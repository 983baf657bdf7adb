/*
 * libFuzzer target: the image manifest parser (image/manifest_parse.c) on
 * bytes from the network, plain JSON or zstd-compressed. A manifest the parser
 * accepts must also survive the invariants the file-request device relies
 * on: sorted unique paths that pass manifest_check_path, each found again
 * by manifest_lookup, chunk lists that fit the sizes, and packed files
 * (version 2) whose kept chunks lie inside their blob. A violation
 * aborts, which libFuzzer reports as a crash.
 */
#include "image/manifest.h"
#include "lib/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_set_quiet(1);
	struct manifest m;
	char err[256];
	memset(&m, 0, sizeof(m));
	if (manifest_parse(data, size, &m, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < m.n_entries; i++) {
			const struct manifest_entry *e = &m.entries[i];
			if (i > 0 && strcmp(m.entries[i - 1].path, e->path) >= 0)
				abort(); /* paths must be sorted and unique */
			if (manifest_lookup(&m, e->path) != e)
				abort();
			if (e->n_chunks && e->n_chunks != manifest_chunk_count(e->size, m.chunk_size))
				abort(); /* a chunk list that does not cover the file */
			/* A packed file (version 2): a chunked regular file with
			 * a hole, whose every kept chunk lies inside its blob. */
			if (e->packed) {
				uint64_t bs = manifest_blob_size(e, m.chunk_size);
				if (m.version < 2 || e->type != MF_REG || !e->n_chunks ||
				    !manifest_hole_count(e, m.chunk_size) || bs > e->size)
					abort();
				/* The last chunk is never a hole unless full:
				 * its end is the blob's end. */
				size_t k = e->n_chunks - 1;
				uint64_t len = e->size - (uint64_t)k * m.chunk_size;
				if (!manifest_chunk_hole(e, m.chunk_size, k) &&
				    manifest_chunk_offset(e, m.chunk_size, k) + len != bs)
					abort();
			}
			char perr[128];
			if (i > 0 && manifest_check_path(e->path, perr, sizeof(perr)) < 0)
				abort(); /* the root is "", every other path must be clean */
		}
	}
	manifest_free(&m);
	return 0;
}
