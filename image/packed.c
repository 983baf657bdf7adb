/*
 * Packed files (image/manifest.h, docs/image-format.md "Packed files"):
 * which chunks of an entry are holes, and where the others are in its
 * blob. A hole is known by its digest alone, so the mapping needs no
 * list of its own in the manifest and cannot disagree with the chunks.
 */
#include "image/manifest.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#define ZERO_PIECE (64u << 10)

/* One digest per chunk size (2^12 .. 2^30), filled on first use. */
#define MIN_SHIFT 12
#define MAX_SHIFT 30
static pthread_mutex_t zero_lock = PTHREAD_MUTEX_INITIALIZER;
static bool zero_known[MAX_SHIFT + 1];
static uint8_t zero_digest[MAX_SHIFT + 1][MANIFEST_DIGEST_LEN];

const uint8_t *manifest_zero_chunk(uint64_t chunk_size)
{
	if (chunk_size < MANIFEST_MIN_CHUNK || chunk_size > MANIFEST_MAX_CHUNK ||
	    (chunk_size & (chunk_size - 1)))
		return NULL;
	unsigned shift = (unsigned)__builtin_ctzll(chunk_size);
	if (shift < MIN_SHIFT || shift > MAX_SHIFT)
		return NULL;
	pthread_mutex_lock(&zero_lock);
	if (!zero_known[shift]) {
		static const uint8_t zeros[ZERO_PIECE];
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned dl = 0;
		bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
		for (uint64_t done = 0; ok && done < chunk_size;) {
			size_t n = chunk_size - done < ZERO_PIECE ? (size_t)(chunk_size - done) : ZERO_PIECE;
			ok = EVP_DigestUpdate(md, zeros, n) == 1;
			done += n;
		}
		ok = ok && EVP_DigestFinal_ex(md, zero_digest[shift], &dl) == 1 &&
		     dl == MANIFEST_DIGEST_LEN;
		EVP_MD_CTX_free(md);
		zero_known[shift] = ok;
	}
	const uint8_t *r = zero_known[shift] ? zero_digest[shift] : NULL;
	pthread_mutex_unlock(&zero_lock);
	return r;
}

/* A full-length chunk (every chunk but a short last one). */
static bool chunk_full(const struct manifest_entry *e, uint64_t chunk_size, size_t i)
{
	return i + 1 < e->n_chunks || e->size % chunk_size == 0;
}

bool manifest_chunk_hole(const struct manifest_entry *e, uint64_t chunk_size, size_t i)
{
	if (e->type != MF_REG || i >= e->n_chunks || !chunk_full(e, chunk_size, i))
		return false;
	const uint8_t *z = manifest_zero_chunk(chunk_size);
	return z && memcmp(e->chunks[i], z, MANIFEST_DIGEST_LEN) == 0;
}

/* Holes among chunks [0, end). */
static size_t holes_before(const struct manifest_entry *e, uint64_t chunk_size, size_t end)
{
	const uint8_t *z = manifest_zero_chunk(chunk_size);
	size_t n = 0;
	if (!z || e->type != MF_REG)
		return 0;
	if (end > e->n_chunks)
		end = e->n_chunks;
	for (size_t i = 0; i < end; i++)
		n += memcmp(e->chunks[i], z, MANIFEST_DIGEST_LEN) == 0 && chunk_full(e, chunk_size, i);
	return n;
}

size_t manifest_hole_count(const struct manifest_entry *e, uint64_t chunk_size)
{
	return holes_before(e, chunk_size, e->n_chunks);
}

uint64_t manifest_chunk_offset(const struct manifest_entry *e, uint64_t chunk_size, size_t i)
{
	/* A linear count: a fault costs a compare per chunk before it (a
	 * 64 GiB file of 1 MiB chunks: 64 Ki compares of 32 bytes, tens of
	 * microseconds), against a table of its own per entry. */
	uint64_t k = e->packed ? i - holes_before(e, chunk_size, i) : i;
	return k * chunk_size;
}

const uint8_t *manifest_blob_name(const struct manifest_entry *e)
{
	return e->packed ? e->blob : e->digest;
}

uint64_t manifest_blob_size(const struct manifest_entry *e, uint64_t chunk_size)
{
	if (!e->packed)
		return e->size;
	return e->size - (uint64_t)manifest_hole_count(e, chunk_size) * chunk_size;
}

bool manifest_has_packed(const struct manifest *m)
{
	for (size_t i = 0; i < m->n_entries; i++)
		if (m->entries[i].packed)
			return true;
	return false;
}
