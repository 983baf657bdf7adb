/*
 * Internals of `minivmm image` shared between the files of image/: content hashing
 * into the blob store, the boot portion (kernel version, initramfs), and
 * reading an image from a directory or a URL.
 *
 * Blob store layout (docs/image-format.md): OUT/blobs/sha256/<64 hex>, the
 * content of each blob hashing to its name. A blob is written to a
 * temporary name and renamed, so a blob that exists is complete; a blob
 * that already exists is not written again (dedup).
 */
#ifndef MINIVMM_IMAGE_H
#define MINIVMM_IMAGE_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "image/manifest.h"

#define IMAGE_BLOB_DIR "blobs/sha256"
/* Bytes read per pread when hashing or copying a file (heap-allocated). */
#define IMAGE_COPY_BUF (1 << 20)

/* Incremental SHA-256 of a content stream, with per-chunk digests. Holes
 * (image_hasher_zeros) are hashed as the zeros they read as and written as
 * holes to the blob. */
struct image_hasher;
struct image_hasher *image_hasher_new(uint64_t chunk_size);
int image_hasher_update(struct image_hasher *h, const void *data, size_t len);
int image_hasher_zeros(struct image_hasher *h, uint64_t len);
/* Finish: digest of everything, size, chunk digests (malloc'd, *n_chunks =
 * manifest_chunk_count(size)), bytes that were not holes. Frees h. */
void image_hasher_finish(struct image_hasher *h, uint8_t digest[MANIFEST_DIGEST_LEN],
			 uint64_t *size, uint8_t (**chunks)[MANIFEST_DIGEST_LEN],
			 size_t *n_chunks, uint64_t *data_bytes);

/* A blob being written to the store under OUT: the content as it is
 * (kernel, initramfs, disk image), or packed (a file of the tree: whole
 * chunks of zeros left out, docs/image-format.md "Packed files"; the
 * entry then names its blob in e->blob). */
struct image_blob_writer;
struct image_blob_writer *image_blob_begin(const char *out_dir, uint64_t chunk_size,
					   char *err, size_t errlen);
struct image_blob_writer *image_blob_begin_packed(const char *out_dir, uint64_t chunk_size,
						  char *err, size_t errlen);
int image_blob_write(struct image_blob_writer *w, const void *data, size_t len);
int image_blob_hole(struct image_blob_writer *w, uint64_t len);
/* Finish into e (digest, size, chunks; packed and blob for a packed
 * writer whose content had a hole chunk). *data_bytes: non-hole bytes.
 * Returns 0, or -1 with err. Frees w either way. */
int image_blob_commit(struct image_blob_writer *w, struct manifest_entry *e,
		      uint64_t *data_bytes, char *err, size_t errlen);
void image_blob_abort(struct image_blob_writer *w);

/* Copy the file open at fd into the store (holes found with SEEK_DATA /
 * SEEK_HOLE stay holes). what names the file in messages. */
int image_blob_from_fd(const char *out_dir, int fd, const char *what, uint64_t chunk_size,
		       struct manifest_entry *e, uint64_t *data_bytes, char *err, size_t errlen);
/* Same, packed when the file has whole chunks of zeros (a file of the
 * tree). */
int image_blob_from_fd_packed(const char *out_dir, int fd, const char *what,
			      uint64_t chunk_size, struct manifest_entry *e, uint64_t *data_bytes,
			      char *err, size_t errlen);
/* Write the content of e (its blob open at in, packed or not) to out, a
 * new empty file, holes kept. 0, or -1 with errno. */
int image_blob_expand(int in, int out, const struct manifest_entry *e, uint64_t chunk_size);
int image_blob_from_file(const char *out_dir, const char *path, uint64_t chunk_size,
			 struct manifest_blob_ref *ref, char *err, size_t errlen);
int image_blob_from_buf(const char *out_dir, const void *buf, size_t len,
			struct manifest_blob_ref *ref, char *err, size_t errlen);
/* OUT/blobs/sha256/<hex> */
void image_blob_path(const char *out_dir, const uint8_t d[MANIFEST_DIGEST_LEN], char *out,
		     size_t outlen);

/* The kernel release of a bzImage ("6.1.0-56-amd64"): the setup header's
 * kernel_version field (file offset 0x20e) holds an offset; the string is
 * at that offset + 0x200. Returns 0, or -1 with err naming the file. */
int image_kernel_version(const char *bzimage, char *out, size_t outlen, char *err, size_t errlen);

/* Generate an initramfs (newc cpio, zstd-compressed) that loads the
 * modules the mode needs from modules_dir (resolved through its
 * modules.dep), prints "MINIVMM-INIT", mounts the root and switch_roots to
 * the image's init (default /sbin/init, init= on the cmdline overrides).
 * lazy: root from the file-request device (virtiofs tag "minivmm-root");
 * else root from /dev/vda (ext4). *out is malloc'd. */
int image_initramfs_build(const char *modules_dir, bool lazy, const char *busybox,
			  void **out, size_t *outlen, char *err, size_t errlen);
#define IMAGE_VIRTIOFS_TAG "minivmm-root"
#define IMAGE_INIT_MARKER "MINIVMM-INIT"

/* Where an image lives: a directory or an http(s):// / file:// URL. */
struct image_src;
struct image_src *image_src_open(const char *where, char *err, size_t errlen);
/* Same, with the caller's fetch client (borrowed, for its statistics). */
struct fetch_client;
struct image_src *image_src_open_with(const char *where, struct fetch_client *fc, char *err,
				      size_t errlen);
void image_src_close(struct image_src *s);
/* Fetch and parse the manifest (manifest.json.zst, else manifest.json).
 * *which (may be NULL) gets the file name that was read. */
int image_src_manifest(struct image_src *s, struct manifest *m, const char **which,
		       char *err, size_t errlen);
/* Read a blob named in m and check its size and digest. 0 ok, 1 missing,
 * -1 other failure (err says which). */
int image_src_check_blob(struct image_src *s, const struct manifest *m,
			 const uint8_t digest[MANIFEST_DIGEST_LEN], uint64_t size,
			 char *err, size_t errlen);
/* A packed entry's blob (image format version 2): its SHA-256 is e->blob,
 * it is as long as e's chunks that are not holes, and expanded (holes as
 * zeros) it gives e->digest and every chunk digest. 0 ok, 1 missing, -1
 * other failure (err says which). */
int image_src_check_packed(struct image_src *s, const struct manifest *m,
			   const struct manifest_entry *e, char *err, size_t errlen);
/* manifest.json alone (for verify, when the two forms differ). */
int image_src_manifest_plain(struct image_src *s, struct manifest *m, char *err, size_t errlen);
/* Every manifest file present (manifest.json, manifest.json.zst) parsed:
 * 0 if they agree (or only one exists), 1 if both parse but differ (a
 * write-back stopped between its two manifest uploads; err says so), -1 on
 * a missing or malformed manifest. Used by verify. */
int image_src_check_manifests(struct image_src *s, char *err, size_t errlen);
const char *image_src_where(const struct image_src *s);
/* Origins (http(s) URLs) besides the image's own that its manifest may
 * name as its blobs location: the user's --allow-blob-origin (copied). */
int image_src_allow_origins(struct image_src *s, const char *const *origins, size_t n);
/* The image's location as a URL (a directory as file://ABS). */
const char *image_src_url(const struct image_src *s);
/* Where m's blobs are, resolved and checked against the rule of
 * fetch/url.h (url_resolve_blobs): an absolute URL ending in '/'. 0, or
 * -1 with err naming the problem. */
int image_src_blobs_base(struct image_src *s, const struct manifest *m, char *out, size_t outlen,
			 char *err, size_t errlen);
/* The URL of the image's file name (its manifest, for write-back's
 * target): joined onto the image's URL, its query kept. 0, or -1 with err. */
int image_src_file_url(const struct image_src *s, const char *name, char *out, size_t outlen,
		       char *err, size_t errlen);
/* A remote image is served from a local copy of its manifest (the
 * file-request backend reads manifests from files): m written to a new
 * file in $TMPDIR with its blobs location resolved, checked
 * (image_src_blobs_base) and made absolute, the one thing that differs.
 * *path (malloc'd) names the file: the caller unlinks and frees it. blobs
 * gets the absolute location. 0, or -1 with err. */
int image_src_save_manifest(struct image_src *s, const struct manifest *m, char **path,
			    char *blobs, size_t blobslen, char *err, size_t errlen);
/* Print s to f with control characters, DEL and '\\' escaped as \xHH
 * (text from a server cannot forge output on a terminal). */
void image_print_text(FILE *f, const char *s);

/* How a path resolves in an image's tree (image/tree_resolve.c). */
enum image_resolve {
	IMAGE_RESOLVE_FOUND,   /* out names the entry */
	IMAGE_RESOLVE_MISSING, /* out is where it would be: every component
				* before the first missing one is a directory */
	IMAGE_RESOLVE_BLOCKED, /* a non-directory on the way, or a symlink loop */
};
/* The entry at a path of the tree, or NULL. */
typedef const struct manifest_entry *(*image_lookup_fn)(void *ctx, const char *path);
/* Resolve path (relative to the image's root) component by component
 * through symlinks inside the image, as the guest's kernel would: an
 * absolute target starts at the image's root, ".." stops there, a
 * dangling symlink leads to where its target would be. A ".." inside a
 * link's text is taken lexically (a symlink before it in the same text
 * is not followed first, as the kernel would): only odd links differ.
 * The last component is followed only with follow_last. out gets a
 * manifest path (no leading '/'). */
enum image_resolve image_resolve_path(image_lookup_fn lookup, void *ctx, const char *path,
				      bool follow_last, char *out, size_t outlen);
/* Join base (a directory) and rel ("../c/./d"; an absolute rel ignores
 * base) into a manifest path, ".." stopping at the root. */
void image_join_path(const char *base, const char *rel, char *out, size_t outlen);

/* image build adds this file to a module directory it added to the tree
 * (docs/image-format.md "Kernel modules"): its text names the source. */
#define IMAGE_MODULES_MARKER ".minivmm-modules"
#define IMAGE_MODULES_MARKER_TEXT "added by minivmm image build from "

#endif
