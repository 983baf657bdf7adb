/*
 * Content hashing and the blob store (image/image.h).
 */
#include "image/image.h"
#include "lib/io.h"
#include "lib/mkdir_p.h"
#include "lib/wholefile.h"
#include "lib/sparse.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZERO_BUF (64 << 10)
static const uint8_t zeros[ZERO_BUF];

struct image_hasher {
	EVP_MD_CTX *all, *chunk;
	uint64_t chunk_size, size, in_chunk, data_bytes;
	uint8_t (*chunks)[MANIFEST_DIGEST_LEN];
	size_t n_chunks, cap_chunks;
	bool failed;
	/* SHA-256 of a whole chunk of zeros, computed once: a hole that
	 * covers a chunk needs no hashing of its own. */
	bool have_zero_chunk;
	uint8_t zero_chunk[MANIFEST_DIGEST_LEN];
};

struct image_hasher *image_hasher_new(uint64_t chunk_size)
{
	struct image_hasher *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->all = EVP_MD_CTX_new();
	h->chunk = EVP_MD_CTX_new();
	h->chunk_size = chunk_size;
	if (!h->all || !h->chunk || !EVP_DigestInit_ex(h->all, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(h->chunk, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(h->all);
		EVP_MD_CTX_free(h->chunk);
		free(h);
		return NULL;
	}
	return h;
}

static int push_chunk(struct image_hasher *h, const uint8_t d[MANIFEST_DIGEST_LEN])
{
	if (h->n_chunks == h->cap_chunks) {
		size_t cap = h->cap_chunks ? h->cap_chunks * 2 : 16;
		void *p = realloc(h->chunks, cap * sizeof(*h->chunks));
		if (!p)
			return -1;
		h->chunks = p;
		h->cap_chunks = cap;
	}
	memcpy(h->chunks[h->n_chunks++], d, MANIFEST_DIGEST_LEN);
	return 0;
}

static int end_chunk(struct image_hasher *h)
{
	uint8_t d[MANIFEST_DIGEST_LEN];
	unsigned len;
	if (!EVP_DigestFinal_ex(h->chunk, d, &len) || !EVP_DigestInit_ex(h->chunk, EVP_sha256(), NULL))
		return -1;
	h->in_chunk = 0;
	return push_chunk(h, d);
}

static int feed(struct image_hasher *h, const void *data, size_t len, bool hole)
{
	const uint8_t *p = data;
	if (h->failed)
		return -1;
	if (!EVP_DigestUpdate(h->all, p, len))
		goto fail;
	h->size += len;
	if (!hole)
		h->data_bytes += len;
	while (len) {
		size_t n = h->chunk_size - h->in_chunk;
		if (n > len)
			n = len;
		if (!EVP_DigestUpdate(h->chunk, p, n))
			goto fail;
		h->in_chunk += n;
		p += n, len -= n;
		if (h->in_chunk == h->chunk_size && end_chunk(h) < 0)
			goto fail;
	}
	return 0;
fail:
	h->failed = true;
	return -1;
}

int image_hasher_update(struct image_hasher *h, const void *data, size_t len)
{
	return feed(h, data, len, false);
}

int image_hasher_zeros(struct image_hasher *h, uint64_t len)
{
	while (len) {
		/* Whole zero chunks: hash for the file digest only. */
		if (h->in_chunk == 0 && len >= h->chunk_size && h->chunk_size >= ZERO_BUF) {
			if (!h->have_zero_chunk) {
				EVP_MD_CTX *z = EVP_MD_CTX_new();
				unsigned dl;
				bool ok = z && EVP_DigestInit_ex(z, EVP_sha256(), NULL);
				for (uint64_t i = 0; ok && i < h->chunk_size; i += ZERO_BUF)
					ok = EVP_DigestUpdate(z, zeros, ZERO_BUF);
				ok = ok && EVP_DigestFinal_ex(z, h->zero_chunk, &dl);
				EVP_MD_CTX_free(z);
				if (!ok)
					return h->failed = true, -1;
				h->have_zero_chunk = true;
			}
			for (uint64_t i = 0; i < h->chunk_size; i += ZERO_BUF)
				if (!EVP_DigestUpdate(h->all, zeros, ZERO_BUF))
					return h->failed = true, -1;
			h->size += h->chunk_size;
			len -= h->chunk_size;
			if (push_chunk(h, h->zero_chunk) < 0)
				return h->failed = true, -1;
			continue;
		}
		size_t n = len > ZERO_BUF ? ZERO_BUF : (size_t)len;
		if (feed(h, zeros, n, true) < 0)
			return -1;
		len -= n;
	}
	return 0;
}

void image_hasher_finish(struct image_hasher *h, uint8_t digest[MANIFEST_DIGEST_LEN],
			 uint64_t *size, uint8_t (**chunks)[MANIFEST_DIGEST_LEN],
			 size_t *n_chunks, uint64_t *data_bytes)
{
	unsigned len;
	if (h->in_chunk && h->n_chunks)
		end_chunk(h);
	EVP_DigestFinal_ex(h->all, digest, &len);
	*size = h->size;
	if (data_bytes)
		*data_bytes = h->data_bytes;
	/* A file that fits in one chunk lists no chunks (its digest is the
	 * chunk's), matching manifest_chunk_count. */
	if (manifest_chunk_count(h->size, h->chunk_size) == 0) {
		free(h->chunks);
		h->chunks = NULL;
		h->n_chunks = 0;
	}
	if (chunks) {
		*chunks = h->chunks;
		*n_chunks = h->n_chunks;
	} else {
		free(h->chunks);
	}
	EVP_MD_CTX_free(h->all);
	EVP_MD_CTX_free(h->chunk);
	free(h);
}

/* --- the blob store --- */

void image_blob_path(const char *out_dir, const uint8_t d[MANIFEST_DIGEST_LEN], char *out,
		     size_t outlen)
{
	char hex[2 * MANIFEST_DIGEST_LEN + 1];
	manifest_digest_hex(d, hex);
	snprintf(out, outlen, "%s/%s/%s", out_dir, IMAGE_BLOB_DIR, hex);
}

#define BLOB_TMP_PREFIX ".tmp" /* named temporaries, where O_TMPFILE is missing */

/* The blob is written at its final offsets as the content streams in:
 * unpacked, byte k of the content at offset k (holes left as holes);
 * packed, the chunk being written at the end of the chunks kept so far,
 * and a chunk that ends without a non-zero byte (a hole) dropped: the
 * next chunk takes its place. The packed bytes are hashed as they are
 * kept, for the blob's name: the current chunk's bytes go to a copy of
 * the hash of the kept ones, which replaces it when the chunk is kept. */
struct image_blob_writer {
	struct image_hasher *h;
	int fd;
	uint64_t chunk_size;
	uint64_t base;       /* blob offset of the current chunk */
	uint64_t in_chunk;   /* bytes of the current chunk so far */
	uint64_t size;       /* content bytes so far */
	bool chunk_data;     /* the current chunk has a non-zero byte */
	bool pack;
	size_t holes;        /* whole chunks dropped (pack) */
	uint64_t zeros_owed; /* zeros of the current chunk not yet in cur */
	EVP_MD_CTX *kept, *cur; /* pack: the kept chunks; kept + the current one */
	char *out_dir;
	char dir[4200];  /* the store's blob directory */
	char tmp[4200];  /* a named temporary where O_TMPFILE is missing, else "" */
	bool failed;
	int err_no;
};

static struct image_blob_writer *blob_begin(const char *out_dir, uint64_t chunk_size, bool pack,
					    char *err, size_t errlen)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/%s", out_dir, IMAGE_BLOB_DIR);
	if (mkdir_p(dir, 0755) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	struct image_blob_writer *w = calloc(1, sizeof(*w));
	if (!w || !(w->h = image_hasher_new(chunk_size)) || !(w->out_dir = strdup(out_dir)) ||
	    (pack && (!(w->kept = EVP_MD_CTX_new()) || !(w->cur = EVP_MD_CTX_new()) ||
		      EVP_DigestInit_ex(w->kept, EVP_sha256(), NULL) != 1 ||
		      EVP_MD_CTX_copy_ex(w->cur, w->kept) != 1))) {
		snprintf(err, errlen, "out of memory");
		if (w) {
			w->fd = -1;
			image_blob_abort(w);
		}
		return NULL;
	}
	w->chunk_size = chunk_size;
	w->pack = pack;
	/* Unnamed until complete (lib/wholefile.h): a build or write-back
	 * killed mid-blob leaves no partial file in the store. */
	snprintf(w->dir, sizeof(w->dir), "%s", dir);
	w->fd = wholefile_open(w->dir, BLOB_TMP_PREFIX, w->tmp, sizeof(w->tmp));
	if (w->fd < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		image_blob_abort(w);
		return NULL;
	}
	return w;
}

struct image_blob_writer *image_blob_begin(const char *out_dir, uint64_t chunk_size,
					   char *err, size_t errlen)
{
	return blob_begin(out_dir, chunk_size, false, err, errlen);
}

struct image_blob_writer *image_blob_begin_packed(const char *out_dir, uint64_t chunk_size,
						  char *err, size_t errlen)
{
	return blob_begin(out_dir, chunk_size, true, err, errlen);
}

static int hash_zeros(EVP_MD_CTX *md, uint64_t len)
{
	while (len) {
		size_t n = len > ZERO_BUF ? ZERO_BUF : (size_t)len;
		if (EVP_DigestUpdate(md, zeros, n) != 1)
			return -1;
		len -= n;
	}
	return 0;
}

/* The current chunk is complete: keep it, or drop it (a hole). */
static int chunk_end(struct image_blob_writer *w)
{
	if (w->pack && !w->chunk_data) {
		w->holes++;
		if (EVP_MD_CTX_copy_ex(w->cur, w->kept) != 1)
			return -1;
	} else {
		if (w->pack && (hash_zeros(w->cur, w->zeros_owed) < 0 ||
				EVP_MD_CTX_copy_ex(w->kept, w->cur) != 1))
			return -1;
		w->base += w->chunk_size;
	}
	w->in_chunk = 0;
	w->zeros_owed = 0;
	w->chunk_data = false;
	return 0;
}

/* len bytes of content (data NULL: zeros, left as a hole). */
static int put(struct image_blob_writer *w, const uint8_t *data, uint64_t len)
{
	while (len) {
		uint64_t n = w->chunk_size - w->in_chunk;
		if (n > len)
			n = len;
		if (data && !sparse_is_zero(data, (size_t)n)) {
			w->chunk_data = true;
			if (w->pack && (hash_zeros(w->cur, w->zeros_owed) < 0 ||
					EVP_DigestUpdate(w->cur, data, (size_t)n) != 1))
				return -1;
			w->zeros_owed = 0;
			if (pwrite_all(w->fd, data, (size_t)n, (off_t)(w->base + w->in_chunk)) < 0)
				return -1;
		} else {
			/* Zeros are hashed into the packed name only if the
			 * chunk turns out to hold data: a hole costs nothing. */
			w->zeros_owed += n;
		}
		if (data)
			data += n;
		w->in_chunk += n;
		w->size += n;
		len -= n;
		if (w->in_chunk == w->chunk_size && chunk_end(w) < 0)
			return -1;
	}
	return 0;
}

int image_blob_write(struct image_blob_writer *w, const void *data, size_t len)
{
	if (w->failed)
		return -1;
	if (image_hasher_update(w->h, data, len) < 0 || put(w, data, len) < 0) {
		w->err_no = errno ? errno : EIO;
		w->failed = true;
		return -1;
	}
	return 0;
}

int image_blob_hole(struct image_blob_writer *w, uint64_t len)
{
	if (w->failed || image_hasher_zeros(w->h, len) < 0 || put(w, NULL, len) < 0) {
		w->err_no = errno ? errno : EIO;
		return w->failed = true, -1;
	}
	return 0;
}

void image_blob_abort(struct image_blob_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		wholefile_discard(w->fd, w->tmp);
	w->fd = -1;
	if (w->h) {
		uint8_t d[MANIFEST_DIGEST_LEN];
		uint64_t s;
		image_hasher_finish(w->h, d, &s, NULL, NULL, NULL);
	}
	EVP_MD_CTX_free(w->kept);
	EVP_MD_CTX_free(w->cur);
	free(w->out_dir);
	free(w);
}

int image_blob_commit(struct image_blob_writer *w, struct manifest_entry *e,
		      uint64_t *data_bytes, char *err, size_t errlen)
{
	/* A file of one chunk or less has no chunks and so no holes: a
	 * chunk of zeros dropped is put back (as a hole of the file). */
	bool chunked = manifest_chunk_count(w->size, w->chunk_size) > 0;
	bool packed = w->pack && chunked && w->holes > 0;
	uint64_t len = packed ? w->base + w->in_chunk : w->size;
	uint8_t name[MANIFEST_DIGEST_LEN];
	unsigned dl = 0;
	if (packed && !w->failed && (hash_zeros(w->cur, w->zeros_owed) < 0 ||
				     EVP_DigestFinal_ex(w->cur, name, &dl) != 1))
		w->failed = true, w->err_no = ENOMEM;
	/* Blobs are served as they are (nginx over an image build's output):
	 * readable by all, as the named files were. */
	if (w->failed || ftruncate(w->fd, (off_t)len) < 0 || fchmod(w->fd, 0644) < 0) {
		snprintf(err, errlen, "writing a blob in %s: %s", w->dir,
			 strerror(w->err_no ? w->err_no : errno));
		image_blob_abort(w);
		return -1;
	}
	image_hasher_finish(w->h, e->digest, &e->size, &e->chunks, &e->n_chunks, data_bytes);
	w->h = NULL;
	e->has_digest = true;
	e->packed = packed;
	if (packed)
		memcpy(e->blob, name, MANIFEST_DIGEST_LEN);
	else
		memset(e->blob, 0, MANIFEST_DIGEST_LEN);
	char path[4300];
	image_blob_path(w->out_dir, manifest_blob_name(e), path, sizeof(path));
	struct stat st;
	/* Same digest, same content: keep the blob that is there (dedup);
	 * rename would replace it with an identical one anyway. */
	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == len) {
		wholefile_discard(w->fd, w->tmp);
		w->fd = -1;
	} else if (wholefile_publish(w->fd, w->tmp, w->dir, BLOB_TMP_PREFIX, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		image_blob_abort(w);
		return -1;
	} else {
		close(w->fd);
	}
	w->fd = -1;
	image_blob_abort(w);
	return 0;
}

static int blob_from_fd(const char *out_dir, int fd, const char *what, uint64_t chunk_size,
			bool pack, struct manifest_entry *e, uint64_t *data_bytes, char *err,
			size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", what, strerror(errno));
		return -1;
	}
	struct image_blob_writer *w = blob_begin(out_dir, chunk_size, pack, err, errlen);
	if (!w)
		return -1;
	/* On the heap: a megabyte of thread-local storage would be charged to
	 * every thread of the process, vCPU threads with small stacks included. */
	char *buf = malloc(IMAGE_COPY_BUF);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", what);
		image_blob_abort(w);
		return -1;
	}
	uint64_t size = (uint64_t)st.st_size, pos = 0;
	while (pos < size) {
		/* Find the next data; everything before it is a hole. Where
		 * SEEK_DATA is not supported, the whole file is data. */
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			data = (off_t)size; /* only a hole is left */
		else if (data < 0)
			data = (off_t)pos;
		if ((uint64_t)data > pos) {
			if (image_blob_hole(w, (uint64_t)data - pos) < 0)
				goto fail;
			pos = (uint64_t)data;
			continue;
		}
		off_t hole = lseek(fd, (off_t)pos, SEEK_HOLE);
		uint64_t end = hole < 0 || (uint64_t)hole > size ? size : (uint64_t)hole;
		while (pos < end) {
			size_t want = end - pos > IMAGE_COPY_BUF ? IMAGE_COPY_BUF : (size_t)(end - pos);
			ssize_t n = pread(fd, buf, want, (off_t)pos);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				snprintf(err, errlen, "%s: %s", what,
					 n < 0 ? strerror(errno) : "file shrank while being read");
				image_blob_abort(w);
				free(buf);
				return -1;
			}
			/* Blocks of zeros written as data (dd from /dev/zero, a
			 * copy that lost its holes) become holes too. */
			for (size_t at = 0; at < (size_t)n;) {
				bool zero;
				size_t run = sparse_run(buf + at, (size_t)n - at, &zero);
				if ((zero ? image_blob_hole(w, run) : image_blob_write(w, buf + at, run)) < 0)
					goto fail;
				at += run;
			}
			pos += (uint64_t)n;
		}
	}
	free(buf);
	return image_blob_commit(w, e, data_bytes, err, errlen);
fail:
	free(buf);
	snprintf(err, errlen, "%s: writing its blob: %s", what, strerror(w->err_no ? w->err_no : errno));
	image_blob_abort(w);
	return -1;
}

int image_blob_from_fd(const char *out_dir, int fd, const char *what, uint64_t chunk_size,
		       struct manifest_entry *e, uint64_t *data_bytes, char *err, size_t errlen)
{
	return blob_from_fd(out_dir, fd, what, chunk_size, false, e, data_bytes, err, errlen);
}

int image_blob_from_fd_packed(const char *out_dir, int fd, const char *what,
			      uint64_t chunk_size, struct manifest_entry *e, uint64_t *data_bytes,
			      char *err, size_t errlen)
{
	return blob_from_fd(out_dir, fd, what, chunk_size, true, e, data_bytes, err, errlen);
}

int image_blob_from_file(const char *out_dir, const char *path, uint64_t chunk_size,
			 struct manifest_blob_ref *ref, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct manifest_entry e = {0};
	int rc = image_blob_from_fd(out_dir, fd, path, chunk_size, &e, NULL, err, errlen);
	close(fd);
	if (rc == 0) {
		ref->present = true;
		memcpy(ref->digest, e.digest, MANIFEST_DIGEST_LEN);
		ref->size = e.size;
	}
	free(e.chunks);
	return rc;
}

int image_blob_from_buf(const char *out_dir, const void *buf, size_t len,
			struct manifest_blob_ref *ref, char *err, size_t errlen)
{
	struct image_blob_writer *w = image_blob_begin(out_dir, MANIFEST_MAX_CHUNK, err, errlen);
	if (!w)
		return -1;
	if (image_blob_write(w, buf, len) < 0) {
		snprintf(err, errlen, "writing a blob: %s", strerror(w->err_no));
		image_blob_abort(w);
		return -1;
	}
	struct manifest_entry e = {0};
	if (image_blob_commit(w, &e, NULL, err, errlen) < 0)
		return -1;
	ref->present = true;
	memcpy(ref->digest, e.digest, MANIFEST_DIGEST_LEN);
	ref->size = e.size;
	free(e.chunks);
	return 0;
}

int image_blob_expand(int in, int out, const struct manifest_entry *e, uint64_t chunk_size)
{
	if (!e->packed)
		return sparse_copy(in, out, e->size, NULL);
	char *buf = malloc(IMAGE_COPY_BUF);
	if (!buf)
		return errno = ENOMEM, -1;
	/* Chunk i's bytes follow the kept chunks before it in the blob. */
	uint64_t from = 0;
	for (size_t i = 0; i < e->n_chunks; i++) {
		if (manifest_chunk_hole(e, chunk_size, i))
			continue;
		uint64_t at = (uint64_t)i * chunk_size;
		uint64_t len = e->size - at < chunk_size ? e->size - at : chunk_size;
		for (uint64_t done = 0; done < len;) {
			size_t want = len - done > IMAGE_COPY_BUF ? IMAGE_COPY_BUF : (size_t)(len - done);
			ssize_t n = pread(in, buf, want, (off_t)(from + done));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || sparse_pwrite(out, buf, (size_t)n, (off_t)(at + done)) < 0) {
				if (n == 0)
					errno = EIO; /* the blob is shorter than its chunks */
				free(buf);
				return -1;
			}
			done += (uint64_t)n;
		}
		from += len;
	}
	free(buf);
	return ftruncate(out, (off_t)e->size);
}

/* bzImage setup header (Documentation/arch/x86/boot.rst). */
#define BZ_HDRS_OFFSET 0x202
#define BZ_VERSION_FIELD 0x20e
#define BZ_VERSION_BASE 0x200

int image_kernel_version(const char *bzimage, char *out, size_t outlen, char *err, size_t errlen)
{
	int fd = open(bzimage, O_RDONLY | O_CLOEXEC);
	uint8_t hdr[0x210];
	if (fd < 0) {
		snprintf(err, errlen, "kernel %s: %s", bzimage, strerror(errno));
		return -1;
	}
	ssize_t n = pread(fd, hdr, sizeof(hdr), 0);
	if (n != (ssize_t)sizeof(hdr) || memcmp(hdr + BZ_HDRS_OFFSET, "HdrS", 4) != 0) {
		snprintf(err, errlen, "kernel %s: not a bzImage (no \"HdrS\" setup header)", bzimage);
		close(fd);
		return -1;
	}
	unsigned off = hdr[BZ_VERSION_FIELD] | hdr[BZ_VERSION_FIELD + 1] << 8;
	char ver[256] = {0};
	n = off ? pread(fd, ver, sizeof(ver) - 1, (off_t)off + BZ_VERSION_BASE) : -1;
	close(fd);
	if (n <= 0) {
		snprintf(err, errlen, "kernel %s: the setup header has no kernel version string", bzimage);
		return -1;
	}
	/* "6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP ...": the
	 * release is the first word. */
	size_t len = strcspn(ver, " \n");
	if (!len || len >= outlen || (ver[len] == '\0' && (size_t)n == sizeof(ver) - 1)) {
		snprintf(err, errlen, "kernel %s: unreadable kernel version string", bzimage);
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if (ver[i] == '/' || (unsigned char)ver[i] < 0x21 || (unsigned char)ver[i] > 0x7e) {
			snprintf(err, errlen, "kernel %s: odd characters in the kernel version", bzimage);
			return -1;
		}
	memcpy(out, ver, len);
	out[len] = '\0';
	return 0;
}
