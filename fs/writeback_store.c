/*
 * The image store as write-back sees it (fs/writeback_priv.h): a local
 * directory (files written whole, renamed into place) or an HTTP server
 * (HEAD, PUT), where each URL is derived with the URL module so the
 * image's query and origin rule hold on every request.
 */
#include "fs/writeback_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch/fetch.h"
#include "fetch/url.h"
#include "image/image.h"
#include "lib/io.h"
#include "lib/sparse.h"
#include "lib/wholefile.h"
#include "lib/log.h"

/* Copy a staged blob into a local store: temporary name, fsync, rename.
 * Holes (and blocks of zeros) stay holes: a 2 GiB sparse file costs the
 * store what it costs the stage. *bytes counts the bytes of data. */
int wb_copy_file(const char *src, const char *dst_dir, const char *name, uint64_t *bytes,
		     char *err, size_t errlen)
{
	char tmp[PATH_MAX + 64] = "", dst[PATH_MAX + 64];
	wb_msg(dst, sizeof(dst), "%s/%s", dst_dir, name);
	/* Unnamed until complete (lib/wholefile.h): a push killed mid-copy
	 * leaves no partial file in the store. */
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out = in < 0 ? -1 : wholefile_open(dst_dir, ".wb", tmp, sizeof(tmp));
	struct stat st;
	int rc = in < 0 || out < 0 || fstat(in, &st) < 0 ||
		 sparse_copy(in, out, (uint64_t)st.st_size, bytes) < 0 || fchmod(out, 0644) < 0 ||
		 fsync(out) < 0 || wholefile_publish(out, tmp, dst_dir, ".wb", dst) < 0 ? -1 : 0;
	int saved = errno;
	if (in >= 0)
		close(in);
	if (rc)
		wholefile_discard(out, tmp);
	else if (close(out) < 0)
		rc = -1, saved = errno;
	if (rc)
		wb_msg(err, errlen, "%s -> %s: %s", src, dst, strerror(saved));
	return rc;
}

bool wb_exists(struct fetch_client *fc, const char *where)
{
	if (!fc)
		return access(where, F_OK) == 0;
	int64_t size;
	long status = 0;
	return fetch_head(fc, where, &size, &status, NULL, 0) == 0;
}

/* Does the file at path hash to digest (and have size bytes)? */
static bool file_matches(const char *path, const uint8_t digest[MANIFEST_DIGEST_LEN], uint64_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size != size) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	struct image_hasher *h = image_hasher_new(MANIFEST_DEFAULT_CHUNK);
	char *buf = malloc(IMAGE_COPY_BUF);
	bool ok = h && buf;
	for (off_t pos = 0; ok;) {
		ssize_t n = pread(fd, buf, IMAGE_COPY_BUF, pos);
		if (n < 0)
			ok = false;
		if (n <= 0)
			break;
		ok = image_hasher_update(h, buf, (size_t)n) == 0;
		pos += n;
	}
	close(fd);
	free(buf);
	if (!h)
		return false;
	uint8_t got[MANIFEST_DIGEST_LEN];
	uint64_t got_size = 0;
	uint8_t (*chunks)[MANIFEST_DIGEST_LEN] = NULL;
	size_t n_chunks = 0;
	image_hasher_finish(h, got, &got_size, &chunks, &n_chunks, NULL);
	free(chunks);
	return ok && got_size == size && !memcmp(got, digest, MANIFEST_DIGEST_LEN);
}

/* Is the blob at dst already in the store, whole? A name is not proof
 * (issue 13, item 9): a truncated upload, a store edited by hand, a
 * server that lies. A local blob is hashed (it is read from disk, the
 * cost of a copy without the write); over HTTP the server's size
 * (HEAD's Content-Length) must match, which catches truncation; a
 * same-size corruption on the server is caught only by readers (every
 * fetch is verified). Anything else is uploaded again. */
bool wb_blob_present(struct fetch_client *fc, const char *dst,
			 const uint8_t digest[MANIFEST_DIGEST_LEN], uint64_t size)
{
	char hex[MANIFEST_DIGEST_LEN * 2 + 1];
	manifest_digest_hex(digest, hex);
	if (!fc) {
		if (access(dst, F_OK) < 0)
			return false;
		if (file_matches(dst, digest, size))
			return true;
		log_warn("fs: blob %s in the store does not match its name (size or digest): "
			 "replacing it", hex);
		return false;
	}
	int64_t have = -1;
	long status = 0;
	if (fetch_head(fc, dst, &have, &status, NULL, 0) < 0)
		return false;
	if (have == (int64_t)size)
		return true;
	if (have < 0)
		log_info("fs: blob %s: the server gives no size: uploading it again", hex);
	else
		log_warn("fs: blob %s on the server is %lld bytes, %llu expected: uploading it "
			 "again", hex, (long long)have, (unsigned long long)size);
	return false;
}

/* Replace the manifest at dst (a path: temporary name, fsync, rename; a
 * URL: one PUT). */
int wb_put_manifest(struct fetch_client *fc, const struct manifest *m, const char *dst,
			bool zst, uint64_t *bytes, char *err, size_t errlen)
{
	void *buf = NULL;
	size_t len = 0;
	int rc = 0;
	if (manifest_write(m, zst, &buf, &len, err, errlen) < 0)
		return -1;
	if (fc) {
		rc = fetch_put_buffer(fc, dst, buf, len, err, errlen);
	} else {
		char tmp[PATH_MAX + 64];
		wb_msg(tmp, sizeof(tmp), "%s.new.%d", dst, (int)getpid());
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write_all(fd, buf, len) < 0 || fsync(fd) < 0)
			rc = -1;
		int saved = errno;
		if (fd >= 0 && close(fd) < 0 && rc == 0)
			rc = -1, saved = errno;
		if (rc == 0 && rename(tmp, dst) < 0)
			rc = -1, saved = errno;
		char dir[PATH_MAX + 64];
		wb_msg(dir, sizeof(dir), "%s", dst);
		char *sl = strrchr(dir, '/');
		if (rc == 0 && wb_sync_dir(sl ? (sl == dir ? "/" : (*sl = 0, dir)) : ".") < 0)
			rc = -1, saved = errno;
		if (rc) {
			wb_msg(err, errlen, "%s: %s", dst, strerror(saved));
			unlink(tmp);
		}
	}
	if (rc == 0)
		*bytes += len;
	free(buf);
	return rc;
}


/* --- two writers from one base (issue 13, item 6) ---
 *
 * Before the swap, the manifest on the server ("theirs") is compared with
 * the one this run started from ("base", kept in the stage). Equal: no
 * one else published, ours replaces it. Different: a three-way merge on
 * paths. A path changed only here takes ours, only there theirs; changed
 * on both sides to different entries is a conflict ("image changed since
 * this run started"), except a directory whose only difference is its
 * mtime (both added names in it: the later mtime is kept). The merged
 * manifest must be valid (a file added here in a directory deleted there
 * is a conflict too). Nothing is published on a conflict; the stage stays.
 *
 * The servers give no stronger guarantee: nginx's dav PUT ignores If-Match
 * and If-Unmodified-Since (it overwrites; checked with nginx 1.22), so the
 * compare runs just before the manifest PUT and a writer publishing in
 * between (the time of one PUT) is not seen. S3 honours If-Match on PUT;
 * the fetch client sends no conditional headers yet.
 */

/* The manifest readers of the image see now, parsed. */
int wb_load_theirs(struct fetch_client *fc, const char *where, struct manifest *m,
		       char *err, size_t errlen)
{
	if (!fc)
		return manifest_load_file(where, m, err, errlen);
	struct fetch_membuf b = {.max = MANIFEST_MAX_BYTES};
	char why[512];
	int rc = fetch_get_range(fc, where, 0, 0, NULL, fetch_mem_sink, &b, why, sizeof(why));
	if (rc < 0)
		wb_msg(err, errlen, "reading the image's manifest %s: %s", where, why);
	else
		rc = manifest_parse(b.p, b.len, m, err, errlen);
	free(b.p);
	return rc;
}

/* dir joined with name: a URL (query kept) or a path. */
int wb_push_join(const struct push_where *w, const char *dir, const char *name, char *out,
		     size_t outlen, char *err, size_t errlen)
{
	if (w->remote)
		return url_join(dir, name, out, outlen, err, errlen);
	int n = snprintf(out, outlen, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
	if (n < 0 || (size_t)n >= outlen) {
		wb_msg(err, errlen, "path too long: %s/%s", dir, name);
		return -1;
	}
	return 0;
}

int wb_push_locate(const char *target, struct manifest *newm, const struct config *cfg,
		       struct push_where *w, char *err, size_t errlen)
{
	memset(w, 0, sizeof(*w));
	enum url_scheme sch = url_scheme(target);
	w->remote = sch == URL_HTTP || sch == URL_HTTPS;
	if (sch == URL_FILE) {
		/* Pushed as local files (rename is atomic). */
		if (url_file_path(target, w->target, sizeof(w->target)) < 0)
			wb_msg(w->target, sizeof(w->target), "%s", target + strlen("file://"));
	} else if (sch != URL_NOT_URL && !w->remote) {
		wb_msg(err, errlen, "write-back target '%.300s' is not an http(s) URL or a path", target);
		return -1;
	} else {
		wb_msg(w->target, sizeof(w->target), "%s", target);
	}
	target = w->target;
	const char *bu = newm->blobs_url && *newm->blobs_url ? newm->blobs_url : MANIFEST_DEFAULT_BLOBS;
	/* The target's own name: its last path component, query left out. */
	size_t tl = strcspn(target, w->remote ? "?#" : "");
	const char *last = target;
	for (size_t i = 0; i < tl; i++)
		if (target[i] == '/')
			last = target + i + 1;
	wb_msg(w->name, sizeof(w->name), "%.*s", (int)(tl - (size_t)(last - target)), last);
	if (w->remote) {
		const char *allowed[URL_MAX_ALLOWED_ORIGINS];
		size_t n_allowed = cfg ? url_allowed_origins(cfg, allowed, URL_MAX_ALLOWED_ORIGINS) : 0;
		char rel[PUSH_URL_MAX];
		if (url_parent(target, w->base, sizeof(w->base), err, errlen) < 0 ||
		    url_resolve_blobs(w->base, bu, allowed, n_allowed, w->blobs, sizeof(w->blobs), err,
				      errlen) < 0)
			return -1;
		/* A run from --image-url stages the local copy of its manifest,
		 * whose blobs URL was made absolute: relative again when it lies
		 * below the base, so the pushed manifest stays portable. */
		if (url_relative(w->base, w->blobs, rel, sizeof(rel)) == 0) {
			char *r = strdup(rel);
			if (r) {
				free(newm->blobs_url);
				newm->blobs_url = r;
			}
		}
	} else {
		const char *slash = strrchr(target, '/');
		wb_msg(w->base, sizeof(w->base), "%.*s", slash ? (int)(slash - target) + 1 : 2,
		    slash ? target : "./");
		if (url_scheme(bu) == URL_FILE) {
			const char *abs = bu + 7;
			size_t blen = strlen(w->base);
			wb_msg(w->blobs, sizeof(w->blobs), "%s", abs);
			if (!strncmp(abs, w->base, blen) && abs[blen]) {
				char *r = strdup(abs + blen);
				if (r) {
					free(newm->blobs_url);
					newm->blobs_url = r;
				}
			}
		} else if (url_is_absolute(bu)) {
			wb_msg(err, errlen, "the blobs of a local image cannot be at '%.300s'", bu);
			return -1;
		} else {
			wb_msg(w->blobs, sizeof(w->blobs), "%s%s", w->base, bu);
		}
		size_t bl = strlen(w->blobs);
		if (bl > 1 && w->blobs[bl - 1] == '/')
			w->blobs[bl - 1] = 0;
	}
	if (wb_push_join(w, w->base, MANIFEST_FILE, w->plain, sizeof(w->plain), err, errlen) < 0 ||
	    wb_push_join(w, w->base, MANIFEST_FILE_ZST, w->zstd, sizeof(w->zstd), err, errlen) < 0)
		return -1;
	return 0;
}

