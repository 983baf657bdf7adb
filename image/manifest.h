/*
 * The image manifest in memory: the contract between the image format
 * (image/manifest*.c parse and write it, docs/image-format.md defines the
 * JSON), the file-request device (fs/, which serves the guest's root from
 * it) and write-back (which produces a new one).
 *
 * Paths are relative to the image root, without a leading '/', components
 * separated by single '/', never "." or ".." or empty; the root itself is
 * the entry with path "". Entries are sorted by path (bytewise), so a
 * directory precedes its children and lookups can bisect.
 *
 * Content is addressed by SHA-256. A regular file larger than the image's
 * chunk_size also lists the SHA-256 of each chunk_size piece, so that a
 * piece fetched by HTTP Range can be verified on its own.
 *
 * Version 2 adds packed files: a chunked file whose content has whole
 * chunks of zeros (holes) may be stored as a blob of its other chunks
 * only, named by that blob's own SHA-256 (entry->blob). Version 1
 * manifests are read unchanged; a manifest is written as version 2 only
 * when it has a packed entry (image/packed.c, docs/image-format.md).
 */
#ifndef MINIVMM_MANIFEST_H
#define MINIVMM_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MANIFEST_VERSION 2        /* the newest version read and written */
#define MANIFEST_VERSION_MIN 1    /* the oldest version read */
#define MANIFEST_VERSION_PACKED 2 /* the first with packed entries ("blob") */
#define MANIFEST_DIGEST_LEN 32

enum manifest_type {
	MF_REG,      /* regular file: size, digest (and chunks when large) */
	MF_DIR,
	MF_SYMLINK,  /* target holds the link's text, never followed */
	MF_HARDLINK, /* target holds the path of the entry it links to */
	MF_CHR,      /* rdev */
	MF_BLK,      /* rdev */
	MF_FIFO,
	MF_SOCK,
};

struct manifest_xattr {
	char *name;
	uint8_t *value;
	size_t len;
};

struct manifest_entry {
	char *path;
	enum manifest_type type;
	uint32_t mode;       /* permission bits, 07777 (type bits not included) */
	uint32_t uid, gid;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t size;       /* bytes of content (MF_REG), of target (MF_SYMLINK) */
	char *target;        /* MF_SYMLINK, MF_HARDLINK; else NULL */
	uint64_t rdev;       /* MF_CHR, MF_BLK */
	bool has_digest;     /* MF_REG: always true once built */
	uint8_t digest[MANIFEST_DIGEST_LEN];
	size_t n_chunks;     /* 0 unless size > chunk_size */
	uint8_t (*chunks)[MANIFEST_DIGEST_LEN];
	/* MF_REG, chunked, with at least one hole: stored packed, its blob
	 * (named blob) holding the chunks that are not holes, in order. */
	bool packed;
	uint8_t blob[MANIFEST_DIGEST_LEN];
	size_t n_xattrs;
	struct manifest_xattr *xattrs;
};

/* A blob named by the boot portion (kernel, initramfs, disk image). */
struct manifest_blob_ref {
	bool present;
	uint8_t digest[MANIFEST_DIGEST_LEN];
	uint64_t size;
};

struct manifest {
	int version;
	char *name;            /* free text, e.g. "debian-apache" */
	uint64_t chunk_size;   /* bytes; large files are verified per chunk */
	char *blobs_url;       /* where blobs live, relative to the manifest's URL */
	struct manifest_entry *entries;
	size_t n_entries;
	uint64_t total_bytes;  /* sum of regular file sizes */

	/* The boot portion. */
	struct manifest_blob_ref kernel;
	struct manifest_blob_ref initrd_lazy; /* mounts the file-request device */
	struct manifest_blob_ref initrd_full; /* mounts /dev/vda */
	char *cmdline;
	char **boot_files;     /* paths fetched before boot (prefetched) */
	size_t n_boot_files;
	char **profile;        /* recorded fault order for prefetch, may be empty */
	size_t n_profile;

	/* The full-copy baseline. */
	struct manifest_blob_ref disk; /* ext4 image of the whole root */
	/* The tree the disk was built from (manifest_tree_digest of the
	 * entries at build time): verify tells a stale disk by it. */
	bool disk_tree_present;
	uint8_t disk_tree[MANIFEST_DIGEST_LEN];
};

/* --- API (image/manifest*.c). Additions below this line are the image
 * engineer's; the structs above are the shared contract. --- */

#define MANIFEST_FILE "manifest.json"         /* under the image URL */
#define MANIFEST_FILE_ZST "manifest.json.zst" /* same JSON, zstd-compressed */
#define MANIFEST_DEFAULT_BLOBS "blobs/sha256/"
#define MANIFEST_DEFAULT_CHUNK (1ULL << 20)
#define MANIFEST_MIN_CHUNK (4ULL << 10)
#define MANIFEST_MAX_CHUNK (1ULL << 30)
#define MANIFEST_MAX_BYTES (1ULL << 30)  /* manifest size limit, decompressed too */
/* What a manifest may hold, so that its parse costs what the image needs
 * and no more (a few KB of zstd can otherwise decompress into a JSON
 * document that takes gigabytes to parse). Checked while the manifest
 * streams out of zstd, before jansson sees it (docs/image-format.md,
 * "Limits"). */
#define MANIFEST_MAX_ENTRIES (1u << 20)       /* files, dirs, links ... of an image */
#define MANIFEST_MAX_DEPTH 8                  /* JSON nesting; the format needs 5 */
/* JSON values (object members and array elements): an entry needs about
 * 9, plus one per chunk digest and a few per xattr. */
#define MANIFEST_MAX_ELEMENTS (12u * MANIFEST_MAX_ENTRIES)
/* Objects and arrays, the costly values (an empty array costs jansson
 * about 150 bytes): an entry needs 1 to 3. */
#define MANIFEST_MAX_CONTAINERS (2u * MANIFEST_MAX_ENTRIES)
#define MANIFEST_MAX_BOOT_FILES 4096         /* boot.files, each once */
#define MANIFEST_PATH_MAX 4095           /* Linux PATH_MAX less the NUL */
#define MANIFEST_NAME_MAX 255            /* one component */
/* Profile entries kept from a manifest or a profile file; the rest are
 * ignored. Paths not in the manifest are skipped, not refused. */
#define MANIFEST_MAX_PROFILE (1u << 20)

/* Parse a manifest (plain JSON, or zstd-compressed: recognised by the zstd
 * frame magic) strictly: version, known keys only, types, digests (64
 * lowercase hex), sorted unique valid paths whose parents are directories,
 * chunk lists, hard-link targets, total_bytes. On failure returns -1 with
 * err naming the problem (and the entry); *m is left empty. */
int manifest_parse(const void *buf, size_t len, struct manifest *m, char *err, size_t errlen);
/* manifest_parse on a file's contents; err names the file. */
int manifest_load_file(const char *path, struct manifest *m, char *err, size_t errlen);
/* Check an in-memory manifest against the same rules as manifest_parse
 * (entries must already be sorted). */
int manifest_validate(const struct manifest *m, char *err, size_t errlen);
/* Serialise to JSON (compress: zstd level 19). *out is malloc'd. The
 * output is deterministic: same manifest, same bytes. */
int manifest_write(const struct manifest *m, bool compress, void **out, size_t *outlen,
		   char *err, size_t errlen);
/* manifest_write to path (temporary name, fsync, rename). */
int manifest_write_file(const struct manifest *m, const char *path, bool compress,
			char *err, size_t errlen);
/* SHA-256 of the entries alone (their canonical JSON): the same files,
 * metadata and contents give the same digest, whatever the boot portion,
 * name or profile. 0, or -1 out of memory. */
int manifest_tree_digest(const struct manifest *m, uint8_t out[MANIFEST_DIGEST_LEN]);
/* Bisect for path ("" is the root). NULL if absent. */
const struct manifest_entry *manifest_lookup(const struct manifest *m, const char *path);
/* Index of path in m->entries, or -1. */
long manifest_index(const struct manifest *m, const char *path);
/* Sort entries by path (bytewise) before manifest_write of a new manifest. */
void manifest_sort(struct manifest *m);
/* Free everything m owns and zero it. Safe on a zeroed manifest. */
void manifest_free(struct manifest *m);
void manifest_entry_free(struct manifest_entry *e);

/* "reg", "dir", "symlink", "hardlink", "chr", "blk", "fifo", "sock". */
const char *manifest_type_name(enum manifest_type t);
/* Is path a valid manifest path (relative, no empty/"."/".." components,
 * within MANIFEST_PATH_MAX / MANIFEST_NAME_MAX, no NUL)? 0 or -1 with err. */
int manifest_check_path(const char *path, char *err, size_t errlen);
/* Chunks a regular file of size bytes has (0 when size <= chunk_size). */
size_t manifest_chunk_count(uint64_t size, uint64_t chunk_size);
/* 32 bytes to 64 lowercase hex digits and a NUL. */
void manifest_digest_hex(const uint8_t d[MANIFEST_DIGEST_LEN], char out[2 * MANIFEST_DIGEST_LEN + 1]);
/* Exactly 64 lowercase hex digits to 32 bytes; -1 otherwise. */
int manifest_hex_digest(const char *hex, uint8_t out[MANIFEST_DIGEST_LEN]);

/* --- packed files (image/packed.c) ---
 * A hole is chunk i of a chunked regular file that is chunk_size bytes
 * long and whose digest is the SHA-256 of chunk_size zero bytes. A packed
 * entry's blob holds its chunks that are not holes, in order: chunk i is
 * at blob offset (i - holes before i) * chunk_size. Every function below
 * works on unpacked entries too (there chunk i is at i * chunk_size). */

/* SHA-256 of chunk_size zero bytes (a power of two from MANIFEST_MIN_CHUNK
 * to MANIFEST_MAX_CHUNK), computed once per size and process; NULL for
 * another size or out of memory. */
const uint8_t *manifest_zero_chunk(uint64_t chunk_size);
/* Is chunk i of e a hole? (False for i out of range.) */
bool manifest_chunk_hole(const struct manifest_entry *e, uint64_t chunk_size, size_t i);
/* Holes of e (0 for a file that is not chunked). */
size_t manifest_hole_count(const struct manifest_entry *e, uint64_t chunk_size);
/* Where chunk i of e starts in e's blob (i < n_chunks, not a hole). */
uint64_t manifest_chunk_offset(const struct manifest_entry *e, uint64_t chunk_size, size_t i);
/* The name of the blob holding e's content (blob if packed, else digest)
 * and its size in bytes. */
const uint8_t *manifest_blob_name(const struct manifest_entry *e);
uint64_t manifest_blob_size(const struct manifest_entry *e, uint64_t chunk_size);
/* Does any entry of m have a packed blob (the manifest is version 2)? */
bool manifest_has_packed(const struct manifest *m);

/* --- prefetch profiles (image/profile.c) ---
 * A profile file is text, one path per line in the order the boot first
 * read the files; a leading '/' is dropped, blank lines and lines starting
 * with '#' are skipped (so a path holding a newline cannot be named, nor
 * one starting with '#'). */

/* Read a profile file: at most MANIFEST_MAX_PROFILE paths (the rest of the
 * file is ignored); lines that are not valid manifest paths are counted in
 * *bad (may be NULL) and skipped. Free *paths with manifest_profile_free. */
int manifest_profile_read(const char *file, char ***paths, size_t *n, size_t *bad,
			  char *err, size_t errlen);
void manifest_profile_free(char **paths, size_t n);
/* The profile resolved against m: indexes of MF_REG entries (a hard link
 * stands for its target) in profile order, each at most once. Paths not in
 * m, or not regular files, are counted in *skipped. idx must hold
 * min(n, m->n_entries) items; returns how many it got. */
size_t manifest_profile_resolve(const struct manifest *m, char *const *paths, size_t n,
				size_t *idx, size_t *skipped);
/* Replace m's profile by the paths that resolve (in order, no repeats);
 * *kept and *skipped (either may be NULL) get the counts. */
int manifest_profile_set(struct manifest *m, char *const *paths, size_t n, size_t *kept,
			 size_t *skipped, char *err, size_t errlen);
/* Write paths (one per line) to file atomically (temporary name, rename);
 * paths holding a newline are left out. */
int manifest_profile_write(const char *file, char *const *paths, size_t n, char *err,
			   size_t errlen);

#endif
