/*
 * Where an image lives (image/image.h): a local directory, or a URL read
 * through the fetch library (http://, https://, file://).
 */
#include "image/image.h"
#include "fetch/fetch.h"
#include "fetch/url.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef __clang__ /* clang has no -Wformat-truncation */
#pragma GCC diagnostic ignored "-Wformat-truncation" /* messages may be cut */
#endif

struct image_src {
	char *where;      /* directory or URL, without a trailing '/' */
	char *as_url;     /* where as a URL: a directory as file://ABS */
	bool url;
	bool local;       /* a directory or file:// URL: the user's own files */
	struct fetch_client *fc;
	bool borrowed_fc; /* image_src_open_with: the caller's client */
	char **allowed;   /* --allow-blob-origin */
	size_t n_allowed;
};

static bool is_url(const char *s)
{
	enum url_scheme k = url_scheme(s);
	return k == URL_HTTP || k == URL_HTTPS || k == URL_FILE;
}

/* A client for this image: file:// only for a local one. */
static struct fetch_client *src_client(struct image_src *s, char *err, size_t errlen)
{
	struct fetch_opts o = {.allow_file = s->local};
	return fetch_client_create(&o, err, errlen);
}

struct image_src *image_src_open_with(const char *where, struct fetch_client *fc, char *err,
				      size_t errlen)
{
	struct image_src *s = image_src_open(where, err, errlen);
	if (s && fc) {
		if (s->fc)
			fetch_client_destroy(s->fc);
		s->fc = fc;
		s->borrowed_fc = true;
	}
	return s;
}

struct image_src *image_src_open(const char *where, char *err, size_t errlen)
{
	struct image_src *s = calloc(1, sizeof(*s));
	if (!s || !(s->where = strdup(where))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t n = strlen(s->where);
	while (n > 1 && s->where[n - 1] == '/')
		s->where[--n] = '\0';
	s->url = is_url(where);
	if (!s->url && strstr(where, "://")) {
		char shown[300];
		snprintf(err, errlen, "%s: not an http, https or file URL",
			 url_escape_text(where, shown, sizeof(shown)));
		image_src_close(s);
		return NULL;
	}
	s->local = !s->url || url_scheme(where) == URL_FILE;
	if (s->url) {
		if (!(s->fc = src_client(s, err, errlen)) || !(s->as_url = strdup(s->where))) {
			if (s->fc)
				snprintf(err, errlen, "out of memory");
			image_src_close(s);
			return NULL;
		}
	} else {
		struct stat st;
		char abs[PATH_MAX];
		if (stat(s->where, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s: %s", where,
				 errno && !S_ISDIR(st.st_mode) ? strerror(errno) : "not a directory");
			image_src_close(s);
			return NULL;
		}
		if (!realpath(s->where, abs) || asprintf(&s->as_url, "file://%s", abs) < 0) {
			s->as_url = NULL;
			snprintf(err, errlen, "%s: %s", where, strerror(errno));
			image_src_close(s);
			return NULL;
		}
	}
	return s;
}

void image_src_close(struct image_src *s)
{
	if (!s)
		return;
	if (s->fc && !s->borrowed_fc)
		fetch_client_destroy(s->fc);
	for (size_t i = 0; i < s->n_allowed; i++)
		free(s->allowed[i]);
	free(s->allowed);
	free(s->where);
	free(s->as_url);
	free(s);
}

const char *image_src_where(const struct image_src *s)
{
	return s->where;
}

const char *image_src_url(const struct image_src *s)
{
	return s->as_url;
}

int image_src_allow_origins(struct image_src *s, const char *const *origins, size_t n)
{
	char **v = realloc(s->allowed, (s->n_allowed + n + 1) * sizeof(*v));
	if (!v)
		return -1;
	s->allowed = v;
	for (size_t i = 0; i < n; i++)
		if ((v[s->n_allowed] = strdup(origins[i])))
			s->n_allowed++;
	return 0;
}

int image_src_blobs_base(struct image_src *s, const struct manifest *m, char *out, size_t outlen,
			 char *err, size_t errlen)
{
	return url_resolve_blobs(s->as_url, m->blobs_url, (const char *const *)s->allowed,
				 s->n_allowed, out, outlen, err, errlen);
}

int image_src_file_url(const struct image_src *s, const char *name, char *out, size_t outlen,
		       char *err, size_t errlen)
{
	return url_join(s->as_url, name, out, outlen, err, errlen);
}

int image_src_save_manifest(struct image_src *s, const struct manifest *m, char **path,
			    char *blobs, size_t blobslen, char *err, size_t errlen)
{
	*path = NULL;
	if (image_src_blobs_base(s, m, blobs, blobslen, err, errlen) < 0)
		return -1;
	const char *tmp = getenv("TMPDIR");
	if (asprintf(path, "%s/minivmm-manifest.XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) {
		*path = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int fd = mkstemp(*path);
	if (fd < 0) {
		snprintf(err, errlen, "saving the manifest: %s: %s", *path, strerror(errno));
		free(*path);
		*path = NULL;
		return -1;
	}
	close(fd);
	struct manifest copy = *m; /* borrowed: only the blobs location differs */
	copy.blobs_url = blobs;
	if (manifest_write_file(&copy, *path, false, err, errlen) < 0) {
		unlink(*path);
		free(*path);
		*path = NULL;
		return -1;
	}
	return 0;
}

void image_print_text(FILE *f, const char *s)
{
	char buf[1024];
	size_t n = strlen(s ? s : "");
	/* In pieces, so a long text is printed whole. */
	for (size_t i = 0; i < n; i += 200) {
		char piece[201];
		size_t k = n - i < 200 ? n - i : 200;
		memcpy(piece, s + i, k);
		piece[k] = '\0';
		fputs(url_escape_text(piece, buf, sizeof(buf)), f);
	}
}

/* Read one file of the image. 0 ok, 1 missing, -1 error. */
static int read_small(struct image_src *s, const char *name, struct fetch_membuf *mb, char *err,
		      size_t errlen)
{
	char loc[4200];
	/* A URL's query (a signed URL) stays at the end. */
	if (!s->url || url_join(s->where, name, loc, sizeof(loc), err, errlen) < 0)
		snprintf(loc, sizeof(loc), "%s/%s", s->where, name);
	mb->max = MANIFEST_MAX_BYTES;
	if (s->url) {
		struct fetch_req r = {.url = loc, .method = FETCH_GET, .sink = fetch_mem_sink, .sink_ctx = mb};
		if (fetch_run(s->fc, &r, 1) == 0)
			return 0;
		if (r.http_status == 404 || r.http_status == 403 ||
		    (strncmp(loc, "file://", 7) == 0 && access(loc + 7, F_OK) < 0))
			return 1;
		snprintf(err, errlen, "%s: %s", loc, r.err);
		return -1;
	}
	int fd = open(loc, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "%s: %s", loc, strerror(errno));
		return -1;
	}
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fetch_mem_sink(mb, buf, (size_t)n) < 0) {
			close(fd);
			snprintf(err, errlen, "%s: larger than %llu bytes", loc, MANIFEST_MAX_BYTES);
			return -1;
		}
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", loc, strerror(errno));
		return -1;
	}
	return 0;
}

/* Parse names[first..] in order, the first one present. */
static int manifest_from(struct image_src *s, int first, struct manifest *m, const char **which,
			 char *err, size_t errlen)
{
	static const char *const names[] = {MANIFEST_FILE_ZST, MANIFEST_FILE};
	memset(m, 0, sizeof(*m));
	for (int i = first; i < 2; i++) {
		struct fetch_membuf mb = {0};
		int r = read_small(s, names[i], &mb, err, errlen);
		if (r < 0)
			return -1;
		if (r == 1)
			continue;
		char why[900];
		r = manifest_parse(mb.p, mb.len, m, why, sizeof(why));
		free(mb.p);
		if (r < 0) {
			snprintf(err, errlen, "%s/%s: %s", s->where, names[i], why);
			return -1;
		}
		if (which)
			*which = names[i];
		return 0;
	}
	if (first)
		snprintf(err, errlen, "%s: no %s", s->where, MANIFEST_FILE);
	else
		snprintf(err, errlen, "%s: no %s or %s (is this an image?)", s->where,
			 MANIFEST_FILE_ZST, MANIFEST_FILE);
	return -1;
}

int image_src_manifest(struct image_src *s, struct manifest *m, const char **which,
		       char *err, size_t errlen)
{
	return manifest_from(s, 0, m, which, err, errlen);
}

int image_src_manifest_plain(struct image_src *s, struct manifest *m, char *err, size_t errlen)
{
	return manifest_from(s, 1, m, NULL, err, errlen);
}

int image_src_check_manifests(struct image_src *s, char *err, size_t errlen)
{
	static const char *const names[] = {MANIFEST_FILE_ZST, MANIFEST_FILE};
	void *canon[2] = {NULL, NULL};
	size_t clen[2] = {0, 0};
	int found = 0, rc = -1;
	for (int i = 0; i < 2; i++) {
		struct fetch_membuf mb = {0};
		struct manifest m;
		char why[900];
		int r = read_small(s, names[i], &mb, err, errlen);
		if (r < 0)
			goto out;
		if (r == 1)
			continue;
		found++;
		if (manifest_parse(mb.p, mb.len, &m, why, sizeof(why)) < 0) {
			free(mb.p);
			snprintf(err, errlen, "%s/%s: %s", s->where, names[i], why);
			goto out;
		}
		free(mb.p);
		/* Compare the two through their canonical serialisation. */
		manifest_write(&m, false, &canon[i], &clen[i], why, sizeof(why));
		manifest_free(&m);
	}
	if (!found) {
		snprintf(err, errlen, "%s: no %s or %s", s->where, MANIFEST_FILE_ZST, MANIFEST_FILE);
		goto out;
	}
	rc = 0;
	if (found == 2 && (clen[0] != clen[1] || memcmp(canon[0], canon[1], clen[0]) != 0)) {
		snprintf(err, errlen, "%s: %s and %s differ", s->where, MANIFEST_FILE_ZST,
			 MANIFEST_FILE);
		rc = 1;
	}
out:
	free(canon[0]);
	free(canon[1]);
	return rc;
}

struct hash_sink {
	struct image_hasher *h;
	uint64_t got, max;
};

static int hash_sink(void *ctx, const void *data, size_t len)
{
	struct hash_sink *hs = ctx;
	hs->got += len;
	if (hs->got > hs->max)
		return -1; /* longer than the manifest says: stop early */
	return image_hasher_update(hs->h, data, len);
}

int image_src_check_blob(struct image_src *s, const struct manifest *m,
			 const uint8_t digest[MANIFEST_DIGEST_LEN], uint64_t size,
			 char *err, size_t errlen)
{
	char hex[2 * MANIFEST_DIGEST_LEN + 1], loc[4400], base[4200];
	manifest_digest_hex(digest, hex);
	/* Where the blobs are is checked first: a remote manifest names no
	 * local file and no other server (fetch/url.h). */
	if (image_src_blobs_base(s, m, base, sizeof(base), err, errlen) < 0)
		return -1;
	if (!s->url && !url_is_absolute(m->blobs_url))
		snprintf(loc, sizeof(loc), "%s/%s%s%s", s->where, m->blobs_url,
			 m->blobs_url[strlen(m->blobs_url) - 1] == '/' ? "" : "/", hex);
	else if (fetch_blob_url(base, digest, loc, sizeof(loc)) < 0) {
		snprintf(err, errlen, "blob %s: URL too long", hex);
		return -1;
	}
	/* Hashed with the image's chunk size so that the chunk digests can
	 * be checked by the caller too (image_src_check_entry). */
	struct hash_sink hs = {image_hasher_new(m->chunk_size), 0, size};
	if (!hs.h) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = 0;
	if (is_url(loc) && !s->fc) {
		if (!(s->fc = src_client(s, err, errlen))) {
			uint8_t d[MANIFEST_DIGEST_LEN];
			uint64_t sz;
			image_hasher_finish(hs.h, d, &sz, NULL, NULL, NULL);
			return -1;
		}
	}
	if (is_url(loc)) {
		struct fetch_req r = {.url = loc, .method = FETCH_GET, .sink = hash_sink, .sink_ctx = &hs,
				      .max_bytes = size};
		if (fetch_run(s->fc, &r, 1) != 0) {
			if (r.http_status == 404 || r.http_status == 403) {
				snprintf(err, errlen, "blob %s is missing (%s: HTTP %ld)", hex, loc, r.http_status);
				rc = 1;
			} else if (hs.got > size) {
				snprintf(err, errlen, "blob %s is larger than the %llu bytes the manifest says",
					 hex, (unsigned long long)size);
				rc = -1;
			} else {
				snprintf(err, errlen, "blob %s: %s", hex, r.err);
				rc = -1;
			}
		}
	} else {
		int fd = open(loc, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "blob %s is missing (%s: %s)", hex, loc, strerror(errno));
			rc = errno == ENOENT ? 1 : -1;
		} else {
			/* Holes are hashed as zeros without reading them: a
			 * sparse 4 GiB blob checks in the time of its data. */
			/* Heap, not thread-local: see image_blob_from_fd. */
			char *buf = malloc(IMAGE_COPY_BUF);
			bool oom = !buf;
			ssize_t n = oom ? -1 : 0;
			struct stat st;
			uint64_t pos = 0, end = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
			while (buf && pos < end && hs.got <= size) {
				off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
				if (data < 0 && errno == ENXIO)
					data = (off_t)end;
				else if (data < 0)
					data = (off_t)pos;
				if ((uint64_t)data > pos) {
					uint64_t len = (uint64_t)data - pos;
					if (hs.got + len > size)
						len = size + 1 - hs.got; /* enough to say "too long" */
					hs.got += len;
					if (hs.got <= size && image_hasher_zeros(hs.h, len) < 0)
						break;
					pos = (uint64_t)data;
					continue;
				}
				if ((n = pread(fd, buf, IMAGE_COPY_BUF, (off_t)pos)) <= 0)
					break;
				if (hash_sink(&hs, buf, (size_t)n) < 0)
					break;
				pos += (uint64_t)n;
			}
			close(fd);
			free(buf);
			if (n < 0) {
				snprintf(err, errlen, "blob %s: %s", hex, oom ? "out of memory" : strerror(errno));
				rc = -1;
			}
		}
	}
	uint8_t got[MANIFEST_DIGEST_LEN], (*chunks)[MANIFEST_DIGEST_LEN] = NULL;
	uint64_t got_size;
	size_t n_chunks = 0;
	image_hasher_finish(hs.h, got, &got_size, &chunks, &n_chunks, NULL);
	if (rc == 0 && hs.got != size) {
		snprintf(err, errlen, "blob %s has %llu%s bytes, the manifest says %llu (%s)", hex,
			 (unsigned long long)hs.got, hs.got > size ? " or more" : "",
			 (unsigned long long)size, hs.got < size ? "truncated" : "too long");
		rc = -1;
	}
	if (rc == 0 && memcmp(got, digest, MANIFEST_DIGEST_LEN) != 0) {
		snprintf(err, errlen, "blob %s does not match its digest (content changed: %s)", hex, loc);
		rc = -1;
	}
	/* The chunk digests of every entry with this content must match. */
	for (size_t i = 0; rc == 0 && n_chunks && i < m->n_entries; i++) {
		const struct manifest_entry *e = &m->entries[i];
		if (e->type != MF_REG || !e->n_chunks || memcmp(e->digest, digest, MANIFEST_DIGEST_LEN))
			continue;
		if (e->n_chunks != n_chunks || memcmp(e->chunks, chunks, n_chunks * MANIFEST_DIGEST_LEN)) {
			snprintf(err, errlen, "entry '%.300s': its chunk digests do not match blob %s",
				 e->path, hex);
			rc = -1;
		}
	}
	free(chunks);
	return rc;
}

/* --- packed files (image format version 2) --- */

/* The packed blob as it streams: its own SHA-256 (its name) and the file
 * it expands to, hashed with the holes put back as zeros. */
struct packed_sink {
	const struct manifest_entry *e;
	uint64_t chunk_size, got, max, in_chunk;
	size_t chunk;
	EVP_MD_CTX *md;
	struct image_hasher *h;
};

/* Holes from the current chunk on, as zeros. */
static int packed_skip_holes(struct packed_sink *ps)
{
	while (ps->in_chunk == 0 && ps->chunk < ps->e->n_chunks &&
	       manifest_chunk_hole(ps->e, ps->chunk_size, ps->chunk)) {
		if (image_hasher_zeros(ps->h, ps->chunk_size) < 0)
			return -1;
		ps->chunk++;
	}
	return 0;
}

static int packed_sink(void *ctx, const void *data, size_t len)
{
	struct packed_sink *ps = ctx;
	const uint8_t *d = data;
	ps->got += len;
	if (ps->got > ps->max || EVP_DigestUpdate(ps->md, data, len) != 1)
		return -1; /* longer than its chunks: stop early */
	while (len) {
		if (packed_skip_holes(ps) < 0 || ps->chunk >= ps->e->n_chunks)
			return -1;
		uint64_t at = (uint64_t)ps->chunk * ps->chunk_size;
		uint64_t clen = ps->e->size - at < ps->chunk_size ? ps->e->size - at : ps->chunk_size;
		size_t n = clen - ps->in_chunk < len ? (size_t)(clen - ps->in_chunk) : len;
		if (image_hasher_update(ps->h, d, n) < 0)
			return -1;
		d += n, len -= n, ps->in_chunk += n;
		if (ps->in_chunk == clen)
			ps->chunk++, ps->in_chunk = 0;
	}
	return 0;
}

int image_src_check_packed(struct image_src *s, const struct manifest *m,
			   const struct manifest_entry *e, char *err, size_t errlen)
{
	char hex[2 * MANIFEST_DIGEST_LEN + 1], loc[4400], base[4200];
	manifest_digest_hex(e->blob, hex);
	if (image_src_blobs_base(s, m, base, sizeof(base), err, errlen) < 0)
		return -1;
	if (!s->url && !url_is_absolute(m->blobs_url))
		snprintf(loc, sizeof(loc), "%s/%s%s%s", s->where, m->blobs_url,
			 m->blobs_url[strlen(m->blobs_url) - 1] == '/' ? "" : "/", hex);
	else if (fetch_blob_url(base, e->blob, loc, sizeof(loc)) < 0) {
		snprintf(err, errlen, "packed blob %s: URL too long", hex);
		return -1;
	}
	uint64_t size = manifest_blob_size(e, m->chunk_size);
	struct packed_sink ps = {.e = e, .chunk_size = m->chunk_size, .max = size,
				 .md = EVP_MD_CTX_new(), .h = image_hasher_new(m->chunk_size)};
	int rc = 0;
	if (!ps.md || !ps.h || EVP_DigestInit_ex(ps.md, EVP_sha256(), NULL) != 1) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	if (rc == 0 && is_url(loc) && !s->fc && !(s->fc = src_client(s, err, errlen)))
		rc = -1;
	if (rc == 0 && is_url(loc)) {
		struct fetch_req r = {.url = loc, .method = FETCH_GET, .sink = packed_sink,
				      .sink_ctx = &ps, .max_bytes = size};
		if (fetch_run(s->fc, &r, 1) != 0) {
			bool missing = r.http_status == 404 || r.http_status == 403;
			if (missing)
				snprintf(err, errlen, "packed blob %s is missing (%s: HTTP %ld)", hex,
					 loc, r.http_status);
			else if (ps.got > size)
				snprintf(err, errlen, "packed blob %s is longer than its chunks (%llu "
					 "bytes)", hex, (unsigned long long)size);
			else
				snprintf(err, errlen, "packed blob %s: %s", hex, r.err);
			rc = missing ? 1 : -1;
		}
	} else if (rc == 0) {
		int fd = open(loc, O_RDONLY | O_CLOEXEC);
		char *buf = fd < 0 ? NULL : malloc(IMAGE_COPY_BUF);
		if (fd < 0) {
			snprintf(err, errlen, "packed blob %s is missing (%s: %s)", hex, loc,
				 strerror(errno));
			rc = errno == ENOENT ? 1 : -1;
		}
		for (off_t pos = 0; rc == 0;) {
			ssize_t n = buf ? pread(fd, buf, IMAGE_COPY_BUF, pos) : -1;
			if (n < 0) {
				snprintf(err, errlen, "packed blob %s: %s", hex,
					 buf ? strerror(errno) : "out of memory");
				rc = -1;
			}
			if (n <= 0 || packed_sink(&ps, buf, (size_t)n) < 0)
				break;
			pos += n;
		}
		free(buf);
		if (fd >= 0)
			close(fd);
	}
	uint8_t name[MANIFEST_DIGEST_LEN], got[MANIFEST_DIGEST_LEN];
	uint8_t (*chunks)[MANIFEST_DIGEST_LEN] = NULL;
	uint64_t got_size = 0;
	size_t n_chunks = 0;
	unsigned dl = 0;
	if (rc == 0 && ps.got != size) {
		snprintf(err, errlen, "packed blob %s has %llu%s bytes, its chunks need %llu (%s)", hex,
			 (unsigned long long)ps.got, ps.got > size ? " or more" : "",
			 (unsigned long long)size, ps.got < size ? "truncated" : "too long");
		rc = -1;
	}
	if (rc == 0 && (EVP_DigestFinal_ex(ps.md, name, &dl) != 1 ||
			memcmp(name, e->blob, MANIFEST_DIGEST_LEN) != 0)) {
		snprintf(err, errlen, "packed blob %s does not match its name (content changed: %s)",
			 hex, loc);
		rc = -1;
	}
	if (ps.h) {
		if (rc == 0 && packed_skip_holes(&ps) < 0)
			rc = -1;
		image_hasher_finish(ps.h, got, &got_size, &chunks, &n_chunks, NULL);
	}
	if (rc == 0 && (got_size != e->size || memcmp(got, e->digest, MANIFEST_DIGEST_LEN))) {
		snprintf(err, errlen, "packed blob %s does not expand to the file's digest", hex);
		rc = -1;
	}
	if (rc == 0 && (n_chunks != e->n_chunks ||
			memcmp(chunks, e->chunks, n_chunks * MANIFEST_DIGEST_LEN))) {
		snprintf(err, errlen, "packed blob %s: the chunk digests do not match it", hex);
		rc = -1;
	}
	free(chunks);
	EVP_MD_CTX_free(ps.md);
	return rc;
}
