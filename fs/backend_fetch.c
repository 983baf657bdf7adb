/*
 * fs_backend_fetch: file content from the storage server through the
 * local cache (see fs/backend_fetch.h).
 */
#include "fs/backend_fetch.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetch/url.h"
#include "fs/prefetch.h"
#include "lib/cli.h"
#include "lib/log.h"

struct fetch_backend {
	struct fetch_client *fc;
	struct cache *cache;
	char *blobs_url;
	uint64_t chunk_size;
	bool owns;
	/* Digests this process has counted as fetched. Several workers may
	 * miss the same chunk at once; the cache lets one fetch it and the
	 * others wait, and only the first is counted. */
	pthread_mutex_t lock;
	uint8_t (*seen)[MANIFEST_DIGEST_LEN];
	size_t n_seen, cap_seen;

	/* Lazy runs (fs_backend_fetch_open_local): the manifest, per-entry
	 * prefetch flags and the prefetcher. */
	const struct manifest *mf;
	_Atomic uint8_t *flags;
	struct prefetch *pf;
};

/* True the first time digest is reported (open addressing on its bytes). */
static bool count_once(struct fetch_backend *b, const uint8_t *digest)
{
	bool fresh = false;
	pthread_mutex_lock(&b->lock);
	if (2 * (b->n_seen + 1) > b->cap_seen) {
		size_t cap = b->cap_seen ? b->cap_seen * 2 : 1024;
		uint8_t (*t)[MANIFEST_DIGEST_LEN] = calloc(cap, MANIFEST_DIGEST_LEN);
		if (!t) {
			pthread_mutex_unlock(&b->lock);
			return true;
		}
		static const uint8_t zero[MANIFEST_DIGEST_LEN];
		for (size_t i = 0; i < b->cap_seen; i++) {
			if (!memcmp(b->seen[i], zero, MANIFEST_DIGEST_LEN))
				continue;
			size_t h;
			memcpy(&h, b->seen[i], sizeof(h));
			for (h &= cap - 1; memcmp(t[h], zero, MANIFEST_DIGEST_LEN); h = (h + 1) & (cap - 1))
				;
			memcpy(t[h], b->seen[i], MANIFEST_DIGEST_LEN);
		}
		free(b->seen);
		b->seen = t;
		b->cap_seen = cap;
	}
	static const uint8_t zero[MANIFEST_DIGEST_LEN];
	size_t h;
	memcpy(&h, digest, sizeof(h));
	for (h &= b->cap_seen - 1;; h = (h + 1) & (b->cap_seen - 1)) {
		if (!memcmp(b->seen[h], digest, MANIFEST_DIGEST_LEN))
			break;
		if (!memcmp(b->seen[h], zero, MANIFEST_DIGEST_LEN)) {
			memcpy(b->seen[h], digest, MANIFEST_DIGEST_LEN);
			b->n_seen++;
			fresh = true;
			break;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return fresh;
}

void *fs_backend_fetch_open(struct fetch_client *fc, struct cache *c, const char *blobs_url,
			    uint64_t chunk_size, bool owns, char *err, size_t errlen)
{
	struct fetch_backend *b = calloc(1, sizeof(*b));
	if (!b || !(b->blobs_url = strdup(blobs_url))) {
		free(b);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->fc = fc;
	b->cache = c;
	b->chunk_size = chunk_size ? chunk_size : MANIFEST_DEFAULT_CHUNK;
	b->owns = owns;
	pthread_mutex_init(&b->lock, NULL);
	return b;
}

static bool claim_digest(void *ctx, const uint8_t *digest)
{
	return count_once(ctx, digest);
}

void fs_backend_fetch_stop(void *ctx)
{
	struct fetch_backend *b = ctx;
	prefetch_stop(b->pf); /* before the cache it fills goes */
	b->pf = NULL;
}

static void fetch_destroy(void *ctx)
{
	struct fetch_backend *b = ctx;
	fs_backend_fetch_stop(b);
	free((void *)b->flags);
	if (b->owns) {
		cache_close(b->cache);
		fetch_client_destroy(b->fc);
	}
	free(b->blobs_url);
	free(b->seen);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* A guest read of e's content: delivered (the server's first-read order
 * counts it, fs/fs.h), and counted once as served from prefetched data if
 * the prefetcher brought it. */
static void note_access(struct fetch_backend *b, const struct manifest_entry *e,
			struct fs_fetch_info *info)
{
	info->served = true;
	if (!b->flags)
		return;
	size_t idx;
	if (e >= b->mf->entries && e < b->mf->entries + b->mf->n_entries) {
		idx = (size_t)(e - b->mf->entries);
	} else {
		long k = manifest_index(b->mf, e->path);
		if (k < 0)
			return;
		idx = (size_t)k;
	}
	uint8_t f = atomic_load(&b->flags[idx]);
	if ((f & PREFETCH_F_FETCHED) && !(f & PREFETCH_F_SERVED) &&
	    !(atomic_fetch_or(&b->flags[idx], PREFETCH_F_SERVED) & PREFETCH_F_SERVED))
		prefetch_stats.demand_served++;
}

/* The whole content of a packed file: its blob fetched and expanded into
 * the cache, under the file's digest like any whole file. */
static int get_packed(struct fetch_backend *b, const struct manifest_entry *e, int *fd,
		      bool *hit, char *err, size_t errlen)
{
	bool *hole = calloc(e->n_chunks ? e->n_chunks : 1, sizeof(*hole));
	if (!hole) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < e->n_chunks; i++)
		hole[i] = manifest_chunk_hole(e, b->chunk_size, i);
	int rc = cache_get_packed(b->cache, b->fc, b->blobs_url, e->digest, e->size, b->chunk_size,
				  hole, e->n_chunks, e->blob, manifest_blob_size(e, b->chunk_size),
				  fd, hit, err, errlen);
	free(hole);
	return rc;
}

static int fetch_open_content(void *ctx, const struct manifest_entry *e, struct fs_fetch_info *info)
{
	struct fetch_backend *b = ctx;
	if (!e->has_digest)
		return -EIO;
	char err[FETCH_ERR_LEN];
	int fd = -1;
	bool hit = false;
	/* A miss is an on-demand fault: the prefetcher gives way to it. */
	bool miss = b->pf && !cache_has(b->cache, e->digest, e->size);
	if (miss)
		prefetch_demand_begin(b->pf);
	int rc = e->packed ? get_packed(b, e, &fd, &hit, err, sizeof(err)) :
		 cache_get_blob(b->cache, b->fc, b->blobs_url, e->digest, e->size, &fd, &hit, err,
				sizeof(err));
	if (miss)
		prefetch_demand_end(b->pf);
	if (rc < 0) {
		log_warn("file fault on '%s' failed: %s", e->path, err);
		return -EIO; /* what the guest sees when the server is down */
	}
	note_access(b, e, info);
	if (!hit && count_once(b, e->digest)) {
		info->fetched = true;
		info->bytes += manifest_blob_size(e, b->chunk_size);
		info->requests += 1;
	}
	return fd;
}

static ssize_t fetch_read_range(void *ctx, const struct manifest_entry *e, uint64_t off,
				void *buf, size_t len, struct fs_fetch_info *info)
{
	struct fetch_backend *b = ctx;
	if (!e->has_digest)
		return -EIO;
	if (off >= e->size)
		return 0;
	if (len > e->size - off)
		len = (size_t)(e->size - off);
	if (!e->n_chunks) {
		int fd = fetch_open_content(ctx, e, info);
		if (fd < 0)
			return fd;
		ssize_t n = pread(fd, buf, len, (off_t)off);
		n = n < 0 ? -errno : n;
		close(fd);
		return n;
	}
	size_t done = 0;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t idx = pos / b->chunk_size;
		if (idx >= e->n_chunks)
			return -EIO; /* manifest and size disagree */
		if (manifest_chunk_hole(e, b->chunk_size, (size_t)idx)) {
			/* A whole chunk of zeros (its digest says so): no fetch,
			 * packed or not. */
			uint64_t in_chunk = pos - idx * b->chunk_size;
			size_t want = len - done;
			if (want > b->chunk_size - in_chunk)
				want = (size_t)(b->chunk_size - in_chunk);
			memset((uint8_t *)buf + done, 0, want);
			if (!done)
				note_access(b, e, info);
			done += want;
			continue;
		}
		bool had = cache_has_chunk(b->cache, e->digest, e->size, b->chunk_size, idx,
					   e->chunks[idx]);
		char err[FETCH_ERR_LEN];
		int fd = -1;
		uint64_t coff = 0, clen = 0;
		if (!had)
			prefetch_demand_begin(b->pf);
		/* A packed file's chunk is at its place among the chunks
		 * that are not holes (image/packed.c). */
		int rc = cache_get_chunk_from(b->cache, b->fc, b->blobs_url, e->digest, e->size,
					      b->chunk_size, idx, e->chunks[idx],
					      manifest_blob_name(e),
					      manifest_chunk_offset(e, b->chunk_size, (size_t)idx),
					      &fd, &coff, &clen, err, sizeof(err));
		if (!had)
			prefetch_demand_end(b->pf);
		if (rc < 0) {
			log_warn("file fault on '%s' (chunk %llu) failed: %s", e->path,
				 (unsigned long long)idx, err);
			return done ? (ssize_t)done : -EIO;
		}
		if (!done)
			note_access(b, e, info);
		if (!had && count_once(b, e->chunks[idx])) {
			info->fetched = true;
			info->bytes += clen;
			info->requests += 1;
		}
		uint64_t in_chunk = pos - idx * b->chunk_size;
		size_t want = len - done;
		if (in_chunk >= clen) {
			close(fd);
			return -EIO;
		}
		if (want > clen - in_chunk)
			want = (size_t)(clen - in_chunk);
		ssize_t n = pread(fd, (uint8_t *)buf + done, want, (off_t)(coff + in_chunk));
		int saved = errno;
		close(fd);
		if (n <= 0)
			return done ? (ssize_t)done : (n < 0 ? -saved : -EIO);
		done += (size_t)n;
	}
	return (ssize_t)done;
}

const struct fs_backend fs_backend_fetch = {
	.name = "fetch",
	.open_content = fetch_open_content,
	.read_range = fetch_read_range,
	.destroy = fetch_destroy,
};

CLI_OPTION(.command = "run", .name = "no-prefetch", .argname = NULL,
	   .help = "lazy root: do not prefetch the image's profile in the background")
CLI_OPTION(.command = "run", .name = "prefetch-profile", .argname = "FILE",
	   .help = "lazy root: prefetch the files FILE names (from --record-profile) instead of "
		   "the image's profile")
CLI_OPTION(.command = "run", .name = "prefetch-parallel", .argname = "N",
	   .help = "prefetch requests in flight when no file fault is (default 4)",
	   .kind = CLI_UINT, .min = 1, .max = PREFETCH_MAX_PARALLEL)

/* The lazy run's extra: the prefetcher (the image's profile or
 * --prefetch-profile, unless --no-prefetch). */
static int lazy_setup(struct fetch_backend *b, const struct manifest *mf,
		      const struct config *cfg, char *err, size_t errlen)
{
	size_t ne = mf->n_entries ? mf->n_entries : 1;
	b->mf = mf;
	if (!(b->flags = calloc(ne, sizeof(*b->flags))))
		goto oom;
	prefetch_stats_register();
	char **paths = mf->profile, **own = NULL;
	size_t n = mf->n_profile, bad = 0;
	const char *pfile = config_get(cfg, "prefetch-profile");
	if (pfile) {
		if (manifest_profile_read(pfile, &own, &n, &bad, err, errlen) < 0)
			return -1;
		paths = own;
	}
	prefetch_stats.profile_entries = n + bad;
	if (config_flag(cfg, "no-prefetch") || !n) {
		manifest_profile_free(own, n);
		return 0;
	}
	size_t *idx = malloc((n < ne ? n : ne) * sizeof(*idx));
	if (!idx) {
		manifest_profile_free(own, n);
		goto oom;
	}
	size_t skipped = 0;
	size_t got = manifest_profile_resolve(mf, paths, n, idx, &skipped);
	manifest_profile_free(own, n);
	prefetch_stats.profile_files = got;
	prefetch_stats.profile_skipped = skipped + bad;
	if (skipped + bad)
		log_info("prefetch: %zu profile entries are not files of this image: skipped",
			 skipped + bad);
	if (!got) {
		free(idx);
		return 0;
	}
	/* Its own client: a prefetch that fails is not worth the fault
	 * path's patience (one retry), and stop need not wait out backoffs. */
	struct fetch_opts fo = {0};
	fetch_opts_from_config(cfg, &fo);
	fo.allow_file = url_scheme(b->blobs_url) == URL_FILE;
	if (!fo.no_retries && (fo.max_retries > 1 || !fo.max_retries))
		fo.max_retries = 1;
	struct fetch_client *fc = fetch_client_create(&fo, err, errlen);
	if (!fc) {
		free(idx);
		return -1;
	}
	struct prefetch_opts po = {
		.mf = mf, .order = idx, .n_order = got, .cache = b->cache, .fc = fc,
		.blobs_url = b->blobs_url, .chunk_size = b->chunk_size,
		.parallel = (unsigned)config_get_uint(cfg, "prefetch-parallel", 0),
		.flags = b->flags, .claim = claim_digest, .claim_ctx = b,
	};
	b->pf = prefetch_start(&po, err, errlen);
	free(idx);
	if (!b->pf) {
		fetch_client_destroy(fc);
		return -1;
	}
	prefetch_stats.enabled = true;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

void *fs_backend_fetch_open_local(const char *manifest_path, const struct manifest *mf,
				  const struct config *cfg, char *err, size_t errlen)
{
	const char *rel = mf->blobs_url && *mf->blobs_url ? mf->blobs_url : MANIFEST_DEFAULT_BLOBS;
	char url[PATH_MAX + 64], dir[PATH_MAX + 16], abs[PATH_MAX];
	if (!realpath(manifest_path, abs)) {
		snprintf(err, errlen, "%s: %s", manifest_path, strerror(errno));
		return NULL;
	}
	char *slash = strrchr(abs, '/');
	if (slash)
		slash[1] = 0;
	snprintf(dir, sizeof(dir), "file://%s", abs);
	/* A local manifest is a local image: blobs beside it, any local
	 * file, or an http(s) origin the command line allowed (`run
	 * --image-url` allows its image's, for the copy of a remote manifest
	 * it saves with an absolute blobs URL). Checked here, where the URL
	 * is used, so that no manifest file gets around the rule. */
	const char *origins[URL_MAX_ALLOWED_ORIGINS];
	size_t n_origins = url_allowed_origins(cfg, origins, URL_MAX_ALLOWED_ORIGINS);
	char why[600];
	if (url_resolve_blobs(dir, rel, origins, n_origins, url, sizeof(url), why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: refusing the manifest: %s", manifest_path, why);
		return NULL;
	}
	/* The run's --fetch-timeout, --fetch-retries, --insecure ... apply to
	 * file faults too. */
	struct fetch_opts fo = {0};
	fetch_opts_from_config(cfg, &fo);
	fo.allow_file = url_scheme(url) == URL_FILE;
	struct fetch_client *fc = fetch_client_create(&fo, err, errlen);
	if (!fc)
		return NULL;
	struct cache *c = cache_open_from_config(cfg, err, errlen);
	if (!c) {
		fetch_client_destroy(fc);
		return NULL;
	}
	fetch_stats_register(fc, c);
	void *b = fs_backend_fetch_open(fc, c, url, mf->chunk_size, true, err, errlen);
	if (!b) {
		cache_close(c);
		fetch_client_destroy(fc);
		return NULL;
	}
	if (lazy_setup(b, mf, cfg, err, errlen) < 0) {
		fetch_destroy(b);
		return NULL;
	}
	return b;
}

CLI_OPTION(.command = "fs mount", .name = URL_ALLOW_ORIGIN_OPTION, .argname = "URL",
	   .help = URL_ALLOW_ORIGIN_HELP, .validate = url_validate_origin_option)
