/*
 * fetchtool: drives the fetch/ C API from shell, for the host tests
 * (tests/host/3*.sh) and the benches (bench/fetch/run.sh).
 *
 *   fetchtool get URL OFFSET LEN OUT [SHA256]   (LEN 0: to the end)
 *   fetchtool head URL                          prints "SIZE STATUS"
 *   fetchtool put FILE URL | putbuf TEXT URL
 *   fetchtool blob DIR BASE HEX SIZE [OUT]      cache_get_blob; prints hit|miss
 *   fetchtool hold DIR BASE HEX SIZE SECONDS    keep the blob open (in use)
 *   fetchtool chunk DIR BASE BLOBHEX BLOBSIZE CHUNKSIZE INDEX CHUNKHEX OUT
 *   fetchtool prefetch DIR BASE LIST            the run's prefetcher (fs/prefetch.c)
 *   fetchtool serial DIR BASE LIST              one cache_get_blob at a time
 *   fetchtool threads DIR BASE LIST N           N threads of cache_get_blob
 *   fetchtool gc DIR MAXBYTES
 *
 * LIST has one "HEX SIZE" per line. Environment: FETCH_RETRIES,
 * FETCH_TIMEOUT (s), FETCH_PARALLEL (requests in flight; for prefetch its
 * threads, default PREFETCH_DEFAULT_PARALLEL), FETCH_INSECURE (set: no TLS
 * checks), CACHE_MAX (bytes), CACHE_VERIFY
 * (size|first|always), CACHE_NOSYNC (set: no fsync). Ends with a line "stats: ..." and exits 0, 1 on
 * failure, 2 on usage errors.
 */
#include "fetch/cache.h"
#include "fetch/fetch.h"
#include "fs/prefetch.h"
#include "lib/clock.h"
#include "lib/io.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct fetch_client *fc;
static struct cache *cache;
static char err[1024];
/* The client's figures, kept when the prefetcher took the client over. */
static struct fetch_stats fc_stats;

/* One line of a LIST. */
struct item {
	uint8_t digest[FETCH_SHA256_LEN];
	uint64_t size;
};

static int usage(void)
{
	fprintf(stderr, "usage: see the comment at the top of bench/fetch/fetchtool.c\n");
	return 2;
}

static uint64_t num(const char *s)
{
	return strtoull(s, NULL, 0);
}

static int digest(const char *hex, uint8_t d[FETCH_SHA256_LEN])
{
	if (fetch_hex_to_sha256(hex, d) < 0) {
		fprintf(stderr, "fetchtool: '%s' is not a sha256\n", hex);
		exit(2);
	}
	return 0;
}

static int sink_fd(void *ctx, const void *data, size_t len)
{
	return write_all(*(int *)ctx, data, len);
}

static void open_cache(const char *dir)
{
	const char *m = getenv("CACHE_MAX"), *v = getenv("CACHE_VERIFY");
	cache = cache_open(dir, m ? num(m) : 0, err, sizeof(err));
	if (!cache) {
		fprintf(stderr, "fetchtool: %s\n", err);
		exit(1);
	}
	if (getenv("CACHE_NOSYNC"))
		cache_set_sync(cache, false);
	if (v && strcmp(v, "size") == 0)
		cache_set_verify(cache, CACHE_VERIFY_SIZE);
	else if (v && strcmp(v, "always") == 0)
		cache_set_verify(cache, CACHE_VERIFY_ALWAYS);
}

static int copy_fd(int in, uint64_t off, uint64_t len, const char *out)
{
	int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (o < 0)
		return -1;
	char buf[65536];
	while (len) {
		ssize_t n = pread(in, buf, len < sizeof(buf) ? len : sizeof(buf), (off_t)off);
		if (n <= 0 || write_all(o, buf, (size_t)n) < 0) {
			close(o);
			return -1;
		}
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return close(o);
}

static struct item *read_list(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 1024;
	struct item *it = malloc(cap * sizeof(*it));
	char hex[128];
	unsigned long long size;
	*n = 0;
	while (it && fscanf(f, "%127s %llu", hex, &size) == 2) {
		if (*n == cap) {
			cap *= 2;
			struct item *p = realloc(it, cap * sizeof(*it));
			if (!p)
				break;
			it = p;
		}
		digest(hex, it[*n].digest);
		it[*n].size = size;
		(*n)++;
	}
	fclose(f);
	return it;
}

static bool claim_all(void *ctx, const uint8_t *digest)
{
	return true; /* one prefetcher: every download is its own */
}

/* The blobs of items as the files of an image's profile, brought into the
 * cache by the prefetcher a lazy run starts, with nothing to compete with.
 * The prefetcher owns (and destroys) fc. Returns the failures. */
static size_t prefetch_items(const char *base, const struct item *it, size_t n)
{
	struct manifest_entry *e = calloc(n ? n : 1, sizeof(*e));
	size_t *order = calloc(n ? n : 1, sizeof(*order));
	_Atomic uint8_t *flags = calloc(n ? n : 1, sizeof(*flags));
	char (*names)[FETCH_SHA256_HEX] = calloc(n ? n : 1, sizeof(*names));
	if (!e || !order || !flags || !names) {
		snprintf(err, sizeof(err), "out of memory");
		return n ? n : 1;
	}
	for (size_t i = 0; i < n; i++) {
		fetch_sha256_to_hex(it[i].digest, names[i]);
		e[i] = (struct manifest_entry){.path = names[i], .type = MF_REG, .size = it[i].size,
					       .has_digest = true};
		memcpy(e[i].digest, it[i].digest, FETCH_SHA256_LEN);
		order[i] = i;
	}
	struct manifest mf = {.entries = e, .n_entries = n};
	const char *par = getenv("FETCH_PARALLEL");
	struct prefetch_opts o = {.mf = &mf, .order = order, .n_order = n, .cache = cache,
				  .fc = fc, .blobs_url = base, .parallel = par ? (unsigned)num(par) : 0,
				  .flags = flags, .claim = claim_all};
	struct prefetch *p = prefetch_start(&o, err, sizeof(err));
	size_t failed = n ? n : 1;
	if (p) {
		/* prefetch.h has no wait: the last thread out sets finished. */
		while (!atomic_load(&prefetch_stats.finished))
			usleep(1000);
		fetch_get_stats(fc, &fc_stats);
		prefetch_stop(p);
		fc = NULL;
		failed = prefetch_stats.errors;
		if (failed)
			snprintf(err, sizeof(err), "%zu blobs failed (MINIVMM_DEBUG=1 names them)",
				 failed);
	}
	free(names);
	free(flags);
	free(order);
	free(e);
	return failed;
}

struct worker {
	const char *base;
	struct item *items;
	size_t n, next;
	size_t failed;
	pthread_mutex_t lock;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char e[1024];
	for (;;) {
		pthread_mutex_lock(&w->lock);
		size_t i = w->next++;
		pthread_mutex_unlock(&w->lock);
		if (i >= w->n)
			return NULL;
		int fd;
		if (cache_get_blob(cache, fc, w->base, w->items[i].digest, w->items[i].size, &fd, NULL, e,
				   sizeof(e)) < 0) {
			fprintf(stderr, "fetchtool: %s\n", e);
			pthread_mutex_lock(&w->lock);
			w->failed++;
			pthread_mutex_unlock(&w->lock);
			continue;
		}
		close(fd);
	}
}

static int run(int argc, char **argv)
{
	const char *cmd = argv[1];
	if (!strcmp(cmd, "get") && (argc == 6 || argc == 7)) {
		uint8_t d[FETCH_SHA256_LEN];
		if (argc == 7)
			digest(argv[6], d);
		int fd = open(argv[5], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			return 1;
		int rc = fetch_get_range(fc, argv[2], num(argv[3]), num(argv[4]), argc == 7 ? d : NULL,
					 sink_fd, &fd, err, sizeof(err));
		close(fd);
		return rc ? 1 : 0;
	}
	if (!strcmp(cmd, "head") && argc == 3) {
		int64_t size;
		long status;
		int rc = fetch_head(fc, argv[2], &size, &status, err, sizeof(err));
		printf("%" PRId64 " %ld\n", size, status);
		return rc ? 1 : 0;
	}
	if (!strcmp(cmd, "put") && argc == 4)
		return fetch_put_file(fc, argv[3], argv[2], err, sizeof(err)) ? 1 : 0;
	if (!strcmp(cmd, "putbuf") && argc == 4)
		return fetch_put_buffer(fc, argv[3], argv[2], strlen(argv[2]), err, sizeof(err)) ? 1 : 0;
	if ((!strcmp(cmd, "blob") && (argc == 6 || argc == 7)) || (!strcmp(cmd, "hold") && argc == 7)) {
		uint8_t d[FETCH_SHA256_LEN];
		digest(argv[4], d);
		open_cache(argv[2]);
		int fd;
		bool hit;
		if (cache_get_blob(cache, fc, argv[3], d, num(argv[5]), &fd, &hit, err, sizeof(err)) < 0)
			return 1;
		printf("%s\n", hit ? "hit" : "miss");
		fflush(stdout);
		if (!strcmp(cmd, "hold")) {
			sleep((unsigned)num(argv[6]));
		} else if (argc == 7 && copy_fd(fd, 0, num(argv[5]), argv[6]) < 0) {
			snprintf(err, sizeof(err), "cannot write %s", argv[6]);
			return 1;
		}
		close(fd);
		return 0;
	}
	if (!strcmp(cmd, "chunk") && argc == 10) {
		uint8_t bd[FETCH_SHA256_LEN], cd[FETCH_SHA256_LEN];
		digest(argv[4], bd);
		digest(argv[8], cd);
		open_cache(argv[2]);
		int fd;
		uint64_t off, len;
		if (cache_get_chunk(cache, fc, argv[3], bd, num(argv[5]), num(argv[6]), num(argv[7]), cd, &fd,
				    &off, &len, err, sizeof(err)) < 0)
			return 1;
		printf("offset %" PRIu64 " len %" PRIu64 "\n", off, len);
		int rc = copy_fd(fd, off, len, argv[9]);
		close(fd);
		return rc ? 1 : 0;
	}
	if ((!strcmp(cmd, "prefetch") || !strcmp(cmd, "serial")) && argc == 5) {
		size_t n;
		struct item *it = read_list(argv[4], &n);
		if (!it)
			return 1;
		open_cache(argv[2]);
		double t0 = clock_now_s();
		size_t failed = 0;
		if (!strcmp(cmd, "prefetch")) {
			failed = prefetch_items(argv[3], it, n);
		} else {
			for (size_t i = 0; i < n; i++) {
				int fd;
				if (cache_get_blob(cache, fc, argv[3], it[i].digest, it[i].size, &fd, NULL, err,
						   sizeof(err)) < 0) {
					failed++;
					continue;
				}
				close(fd);
			}
		}
		double dt = clock_now_s() - t0;
		printf("%s: %zu blobs in %.3f s (%.0f blobs/s), %zu failed\n", cmd, n, dt, (double)n / dt, failed);
		free(it);
		return failed ? 1 : 0;
	}
	if (!strcmp(cmd, "threads") && argc == 6) {
		struct worker w = {.base = argv[3]};
		w.items = read_list(argv[4], &w.n);
		if (!w.items)
			return 1;
		open_cache(argv[2]);
		pthread_mutex_init(&w.lock, NULL);
		int nt = (int)num(argv[5]);
		pthread_t th[64];
		if (nt < 1 || nt > 64)
			return usage();
		for (int i = 0; i < nt; i++)
			pthread_create(&th[i], NULL, worker_main, &w);
		for (int i = 0; i < nt; i++)
			pthread_join(th[i], NULL);
		free(w.items);
		snprintf(err, sizeof(err), "%zu blobs failed", w.failed);
		return w.failed ? 1 : 0;
	}
	if (!strcmp(cmd, "gc") && argc == 4) {
		open_cache(argv[2]);
		long n = cache_gc(cache, num(argv[3]));
		printf("evicted %ld\n", n);
		return n < 0 ? 1 : 0;
	}
	return usage();
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	struct fetch_opts o = {0};
	const char *r = getenv("FETCH_RETRIES"), *t = getenv("FETCH_TIMEOUT"), *p = getenv("FETCH_PARALLEL");
	if (r) {
		o.max_retries = (unsigned)num(r);
		o.no_retries = o.max_retries == 0;
	}
	if (t) {
		o.connect_timeout_ms = (unsigned)num(t) * 1000;
		o.low_speed_time_s = (unsigned)num(t);
	}
	if (p)
		o.max_parallel = (unsigned)num(p);
	o.insecure = getenv("FETCH_INSECURE") != NULL;
	o.backoff_base_ms = 50;
	o.allow_file = true; /* a test driver: the URLs are the caller's own */
	fc = fetch_client_create(&o, err, sizeof(err));
	if (!fc) {
		fprintf(stderr, "fetchtool: %s\n", err);
		return 1;
	}
	int rc = run(argc, argv);
	if (rc == 1)
		fprintf(stderr, "fetchtool: error: %s\n", err);
	struct fetch_stats st = fc_stats;
	if (fc)
		fetch_get_stats(fc, &st);
	fprintf(stderr, "stats: get=%" PRIu64 " range=%" PRIu64 " head=%" PRIu64 " put=%" PRIu64
		" retries=%" PRIu64 " failures=%" PRIu64 " mismatches=%" PRIu64 " p50_us=%" PRIu64
		" p99_us=%" PRIu64 "\n",
		st.requests[FETCH_KIND_GET], st.requests[FETCH_KIND_RANGE], st.requests[FETCH_KIND_HEAD],
		st.requests[FETCH_KIND_PUT], st.retries, st.failures, st.digest_mismatches,
		st.lat_p50_ns / 1000, st.lat_p99_ns / 1000);
	if (cache) {
		struct cache_stats cs;
		cache_get_stats(cache, &cs);
		fprintf(stderr, "cache: hits=%" PRIu64 " misses=%" PRIu64 " waits=%" PRIu64
			" corrupt=%" PRIu64 " evictions=%" PRIu64 "\n",
			cs.hits, cs.misses, cs.waits, cs.corrupt_refetched, cs.evictions);
		cache_close(cache);
	}
	fetch_client_destroy(fc);
	return rc;
}
