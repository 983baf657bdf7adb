/*
 * Command-line side of fetch/: `minivmm fetch`, `minivmm cache
 * stats|gc|clear`, the options other commands can borrow
 * (fetch_cli_register, cache_cli_register) and the "fetch" stats source.
 */
#include "fetch/cache.h"
#include "lib/clock.h"
#include "lib/io.h"
#include "lib/wholefile.h"
#include "fetch/fetch.h"
#include "fetch/url.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_CHUNK (1 << 20)

static int validate_sha256(const char *v, char *err, size_t errlen)
{
	uint8_t d[FETCH_SHA256_LEN];
	if (fetch_hex_to_sha256(v, d) < 0) {
		snprintf(err, errlen, "'%s' is not a SHA-256 (64 hex digits)", v);
		return -1;
	}
	return 0;
}

/* --- options shared with other commands --- */

/* Bound of the numeric fetch options: a day of seconds, a million
 * retries or requests, far past anything useful, short of overflow. */
#define FETCH_OPT_MAX 1000000

static void add_opt(const char *command, const char *name, const char *argname, const char *help,
		    enum cli_kind kind)
{
	struct cli_option *o = calloc(1, sizeof(*o));
	if (!o)
		abort();
	*o = (struct cli_option){.command = command, .name = name, .argname = argname,
				 .help = help, .kind = kind,
				 .max = kind == CLI_UINT ? FETCH_OPT_MAX : 0};
	cli_register_option(o);
}

void fetch_cli_register(const char *command)
{
	add_opt(command, "insecure", NULL, "do not verify TLS certificates (off by default)", CLI_TEXT);
	add_opt(command, "fetch-retries", "N",
		"retries of a failed request (default: as many as --fetch-timeout allows)", CLI_UINT);
	add_opt(command, "fetch-timeout", "SECONDS",
		"a failed request is retried for this long, then it fails (a guest read gets EIO); "
		"a request also ends this long plus 4 s per MiB of its object after its first try, "
		"even if the server still trickles bytes (default 60; 0: wait and retry forever)",
		CLI_UINT);
	add_opt(command, "fetch-parallel", "N", "requests in flight at once (default 32)", CLI_UINT);
}

void cache_cli_register(const char *command)
{
	add_opt(command, "cache-dir", "DIR", "blob cache (default $XDG_CACHE_HOME/minivmm)", CLI_TEXT);
	add_opt(command, "cache-max", "SIZE", "bound of the cache, LRU eviction (default 10G)",
		CLI_SIZE);
}

void fetch_opts_from_config(const struct config *cfg, struct fetch_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->insecure = config_flag(cfg, "insecure");
	if (config_get(cfg, "fetch-retries")) {
		o->max_retries = (unsigned)config_get_uint(cfg, "fetch-retries", 0);
		o->no_retries = o->max_retries == 0;
	}
	o->deadline_ms = (unsigned)config_get_uint(cfg, "fetch-timeout", 0) * 1000;
	o->no_deadline = config_get(cfg, "fetch-timeout") && o->deadline_ms == 0;
	o->max_parallel = (unsigned)config_get_uint(cfg, "fetch-parallel", 0);
}

struct cache *cache_open_from_config(const struct config *cfg, char *err, size_t errlen)
{
	return cache_open(config_get(cfg, "cache-dir"), config_get_uint(cfg, "cache-max", 0), err,
			  errlen);
}

/* --- the "fetch" stats source --- */

struct stats_src {
	struct fetch_client *fc;
	struct cache *c;
};

static void fill_stats(void *opaque, json_t *obj)
{
	struct stats_src *s = opaque;
	if (s->fc) {
		struct fetch_stats st;
		fetch_get_stats(s->fc, &st);
		json_t *req = json_object(), *bytes = json_object(), *lat = json_object();
		for (int k = 0; k < FETCH_KINDS; k++) {
			json_object_set_new(req, fetch_kind_names[k], json_integer((json_int_t)st.requests[k]));
			json_object_set_new(bytes, fetch_kind_names[k], json_integer((json_int_t)st.bytes[k]));
		}
		json_object_set_new(obj, "requests", req);
		json_object_set_new(obj, "bytes", bytes);
		json_object_set_new(obj, "retries", json_integer((json_int_t)st.retries));
		json_object_set_new(obj, "failures", json_integer((json_int_t)st.failures));
		json_object_set_new(obj, "digest_mismatches", json_integer((json_int_t)st.digest_mismatches));
		json_object_set_new(lat, "p50", json_integer((json_int_t)st.lat_p50_ns));
		json_object_set_new(lat, "p95", json_integer((json_int_t)st.lat_p95_ns));
		json_object_set_new(lat, "p99", json_integer((json_int_t)st.lat_p99_ns));
		json_object_set_new(lat, "max", json_integer((json_int_t)st.lat_max_ns));
		json_object_set_new(obj, "latency_ns", lat);
	}
	if (s->c) {
		struct cache_stats cs;
		cache_get_stats(s->c, &cs);
		json_t *c = json_object();
		json_object_set_new(c, "hits", json_integer((json_int_t)cs.hits));
		json_object_set_new(c, "misses", json_integer((json_int_t)cs.misses));
		json_object_set_new(c, "waits", json_integer((json_int_t)cs.waits));
		json_object_set_new(c, "bytes_fetched", json_integer((json_int_t)cs.bytes_fetched));
		json_object_set_new(c, "bytes_from_cache", json_integer((json_int_t)cs.bytes_served_from_cache));
		json_object_set_new(c, "corrupt_refetched", json_integer((json_int_t)cs.corrupt_refetched));
		json_object_set_new(c, "evictions", json_integer((json_int_t)cs.evictions));
		json_object_set_new(c, "bytes_evicted", json_integer((json_int_t)cs.bytes_evicted));
		json_object_set_new(obj, "cache", c);
	}
}

int fetch_stats_register(struct fetch_client *fc, struct cache *c)
{
	struct stats_src *s = calloc(1, sizeof(*s)); /* lives as long as the process */
	if (!s)
		return -1;
	s->fc = fc;
	s->c = c;
	return stats_register("fetch", fill_stats, s);
}

/* --- minivmm fetch --- */

static void human(uint64_t b, char *out, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

struct progress {
	double t0;
	bool shown;
};

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress *p = ctx;
	double dt = clock_now_s() - p->t0;
	double rate = dt > 0 ? (double)done / dt : 0;
	char d[32], t[32], r[32], eta[32] = "";
	human(done, d, sizeof(d));
	human(total, t, sizeof(t));
	human((uint64_t)rate, r, sizeof(r));
	if (total && rate > 0 && done <= total)
		snprintf(eta, sizeof(eta), "  ETA %.0fs", (double)(total - done) / rate);
	fprintf(stderr, "\r%s / %s  %s/s%s\033[K", d, total ? t : "?", r, eta);
	p->shown = true;
}

struct hash_sink {
	EVP_MD_CTX *md;
	int fd;
};

static int sink_hash_write(void *ctx, const void *data, size_t len)
{
	struct hash_sink *h = ctx;
	EVP_DigestUpdate(h->md, data, len);
	return write_all(h->fd, data, len);
}

/* The -o file: unnamed until complete (a fetch killed by a signal leaves
 * no partial file), then linked in place of path. A device or FIFO that
 * already has the name (-o /dev/null, a pipe) is written directly, never
 * replaced by a regular file. */
struct out_file {
	int fd;
	bool direct;
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *base;
};

static int out_open(struct out_file *o, const char *path)
{
	struct stat st;
	memset(o, 0, sizeof(*o));
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
		o->direct = true;
		o->fd = open(path, O_WRONLY | O_CLOEXEC);
		return o->fd;
	}
	if (wholefile_dir(path, o->dir, sizeof(o->dir), &o->base) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	o->fd = wholefile_open(o->dir, o->base, o->tmp, sizeof(o->tmp));
	return o->fd;
}

/* fsync and name it; closes. 0 or -1 (errno). */
static int out_commit(struct out_file *o, const char *path)
{
	int rc = 0;
	if (!o->direct && (fchmod(o->fd, 0644) < 0 || fsync(o->fd) < 0 ||
			   wholefile_publish(o->fd, o->tmp, o->dir, o->base, path) < 0))
		rc = -1;
	int e = errno;
	if (rc && !o->direct)
		wholefile_discard(o->fd, o->tmp);
	else
		close(o->fd);
	errno = e;
	return rc;
}

static void out_abort(struct out_file *o)
{
	if (o->direct)
		close(o->fd);
	else
		wholefile_discard(o->fd, o->tmp);
}

/* Copy a cached blob to path (unnamed until complete, fsync, rename). */
static int copy_out(int in, const char *path, char *err, size_t errlen)
{
	struct out_file of;
	if (out_open(&of, path) < 0) {
		snprintf(err, errlen, "%.400s: %s", path, strerror(errno));
		return -1;
	}
	int out = of.fd;
	loff_t off = 0;
	int rc = 0;
	bool plain = false; /* copy_file_range refused (another filesystem) */
	static char buf[1 << 16];
	for (;;) {
		ssize_t n;
		if (!plain) {
			n = copy_file_range(in, &off, out, NULL, COPY_CHUNK, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
				      errno == EOPNOTSUPP)) {
				plain = true;
				continue;
			}
		} else {
			n = pread(in, buf, sizeof(buf), off);
			if (n > 0 && write_all(out, buf, (size_t)n) < 0)
				n = -1;
			if (n > 0)
				off += n;
		}
		if (n == 0)
			break;
		if (n < 0) {
			snprintf(err, errlen, "%.400s: %s", path, strerror(errno));
			rc = -1;
			break;
		}
	}
	if (rc) {
		out_abort(&of);
	} else if (out_commit(&of, path) < 0) {
		snprintf(err, errlen, "%.400s: %s", path, strerror(errno));
		rc = -1;
	}
	return rc;
}

static int cmd_fetch(const struct config *cfg)
{
	if (cfg->n_args != 1) {
		return cli_usage_error("fetch", "exactly one URL is needed");
	}
	const char *url = cfg->args[0];
	const char *output = config_get(cfg, "output"), *hex = config_get(cfg, "sha256");
	uint8_t want[FETCH_SHA256_LEN];
	if (hex && fetch_hex_to_sha256(hex, want) < 0) {
		log_error("fetch: --sha256: '%s' is not 64 hex digits", hex);
		return EXIT_USAGE;
	}
	if (!hex && !output && isatty(STDOUT_FILENO)) {
		log_error("fetch: give --output FILE (or --sha256 HEX to fetch into the cache)");
		return EXIT_USAGE;
	}
	struct fetch_opts fo;
	fetch_opts_from_config(cfg, &fo);
	/* The user named this URL: a file:// one is theirs to read. */
	fo.allow_file = url_scheme(url) == URL_FILE;
	char err[FETCH_ERR_LEN + 128];
	struct fetch_client *fc = fetch_client_create(&fo, err, sizeof(err));
	if (!fc) {
		log_error("%s", err);
		return EXIT_FAILURE_IO;
	}
	struct progress prog = {.t0 = clock_now_s()};
	if (isatty(STDERR_FILENO))
		fetch_set_progress(fc, on_progress, &prog);

	int rc = EXIT_OK;
	uint64_t bytes = 0;
	char hexout[FETCH_SHA256_HEX] = "", where[PATH_MAX + 32] = "";
	bool hit = false;
	struct cache *cache = NULL;
	if (hex) {
		cache = cache_open_from_config(cfg, err, sizeof(err));
		if (!cache) {
			log_error("%s", err);
			fetch_client_destroy(fc);
			return EXIT_FAILURE_IO;
		}
		int fd = -1;
		if (cache_get_url(cache, fc, url, want, UINT64_MAX, &fd, &hit, err, sizeof(err)) < 0) {
			rc = EXIT_FAILURE_IO;
		} else {
			struct stat st;
			fstat(fd, &st);
			bytes = (uint64_t)st.st_size;
			snprintf(where, sizeof(where), "%s/blobs/sha256/%s", cache_dir(cache), hex);
			if (output && copy_out(fd, output, err, sizeof(err)) < 0)
				rc = EXIT_FAILURE_IO;
			else if (output)
				snprintf(where, sizeof(where), "%s", output);
			close(fd);
		}
		fetch_sha256_to_hex(want, hexout);
	} else {
		struct hash_sink hs = {.md = EVP_MD_CTX_new(), .fd = STDOUT_FILENO};
		struct out_file of;
		EVP_DigestInit_ex(hs.md, EVP_sha256(), NULL);
		if (output) {
			if ((hs.fd = out_open(&of, output)) < 0) {
				log_error("%s: %s", output, strerror(errno));
				EVP_MD_CTX_free(hs.md);
				fetch_client_destroy(fc);
				return EXIT_FAILURE_IO;
			}
		}
		struct fetch_req q = {.url = url, .method = FETCH_GET, .sink = sink_hash_write, .sink_ctx = &hs};
		fetch_run(fc, &q, 1);
		bytes = q.bytes;
		if (q.result) {
			snprintf(err, sizeof(err), "%s", q.err);
			rc = EXIT_FAILURE_IO;
		}
		if (output) {
			if (rc) {
				out_abort(&of);
			} else if (out_commit(&of, output) < 0) {
				snprintf(err, sizeof(err), "%.400s: %s", output, strerror(errno));
				rc = EXIT_FAILURE_IO;
			}
			snprintf(where, sizeof(where), "%s", output);
		} else {
			snprintf(where, sizeof(where), "stdout");
		}
		uint8_t d[EVP_MAX_MD_SIZE];
		unsigned dl;
		EVP_DigestFinal_ex(hs.md, d, &dl);
		EVP_MD_CTX_free(hs.md);
		fetch_sha256_to_hex(d, hexout);
	}
	if (prog.shown)
		fprintf(stderr, "\r\033[K");
	double dt = clock_now_s() - prog.t0;
	struct fetch_stats st;
	fetch_get_stats(fc, &st);
	if (rc) {
		log_error("fetch failed: %s", err);
	} else {
		char b[32], r[32];
		human(bytes, b, sizeof(b));
		human(dt > 0 ? (uint64_t)((double)bytes / dt) : 0, r, sizeof(r));
		fprintf(stderr, "fetched %" PRIu64 " bytes (%s) in %.3f s, %s/s, %" PRIu64
			" retries, sha256 %s%s, %s%s\n", bytes, b, dt, r, st.retries, hexout,
			hex ? " verified" : "", hit ? "cache hit, " : "", where);
	}
	cache_close(cache);
	fetch_client_destroy(fc);
	return rc;
}

CLI_COMMAND(.name = "fetch", .usage = "URL",
	    .summary = "download one object (http, https, file), verified and cached with --sha256",
	    .main = cmd_fetch)
CLI_OPTION(.command = "fetch", .name = "output", .argname = "FILE", .short_name = 'o',
	   .help = "write the object to FILE (default: stdout, or only the cache with --sha256)")
CLI_OPTION(.command = "fetch", .name = "sha256", .argname = "HEX",
	   .help = "expected digest: verify, and keep the object in the cache", .validate = validate_sha256)

__attribute__((constructor)) static void fetch_cmd_options(void)
{
	/* run fetches images (image/run_image.c, fs/backend_fetch.c read
	 * these options through fetch_opts_from_config and
	 * cache_open_from_config). */
	fetch_cli_register("run");
	cache_cli_register("run");
	fetch_cli_register("fetch");
	cache_cli_register("fetch");
	cache_cli_register("cache stats");
	cache_cli_register("cache gc");
	cache_cli_register("cache clear");
}

/* --- minivmm cache ... --- */

static int open_for_cmd(const struct config *cfg, struct cache **c)
{
	char err[512];
	if (cfg->n_args) {
		return cli_usage_error(cfg->command, "unexpected argument '%s'", cfg->args[0]);
	}
	*c = cache_open_from_config(cfg, err, sizeof(err));
	if (!*c) {
		log_error("%s", err);
		return EXIT_FAILURE_IO;
	}
	return 0;
}

static void print_usage_line(struct cache *c, const char *prefix)
{
	struct cache_usage u;
	char b[32];
	if (cache_usage(c, &u) < 0) {
		log_error("cannot read %s: %s", cache_dir(c), strerror(errno));
		return;
	}
	human(u.bytes, b, sizeof(b));
	printf("%s%s: %" PRIu64 " blobs, %" PRIu64 " bytes (%s), %" PRIu64 " in use, %" PRIu64
	       " temporary files\n", prefix, cache_dir(c), u.blobs, u.bytes, b, u.in_use, u.tmp_files);
}

static int cmd_cache_stats(const struct config *cfg)
{
	struct cache *c;
	int rc = open_for_cmd(cfg, &c);
	if (rc)
		return rc;
	print_usage_line(c, "cache ");
	cache_close(c);
	return EXIT_OK;
}

static int cmd_cache_gc(const struct config *cfg)
{
	struct cache *c;
	int rc = open_for_cmd(cfg, &c);
	if (rc)
		return rc;
	long n = cache_gc(c, UINT64_MAX);
	if (n < 0) {
		log_error("cache gc failed in %s", cache_dir(c));
		cache_close(c);
		return EXIT_FAILURE_IO;
	}
	struct cache_stats cs;
	cache_get_stats(c, &cs);
	printf("evicted %ld blobs, removed %" PRIu64 " abandoned temporary files\n", n,
	       cs.tmp_removed);
	print_usage_line(c, "cache ");
	cache_close(c);
	return EXIT_OK;
}

static int cmd_cache_clear(const struct config *cfg)
{
	struct cache *c;
	int rc = open_for_cmd(cfg, &c);
	if (rc)
		return rc;
	long n = cache_clear(c);
	if (n < 0) {
		log_error("cache clear failed in %s", cache_dir(c));
		cache_close(c);
		return EXIT_FAILURE_IO;
	}
	printf("removed %ld blobs\n", n);
	print_usage_line(c, "cache ");
	cache_close(c);
	return EXIT_OK;
}

CLI_COMMAND(.name = "cache stats", .usage = "", .summary = "show what the blob cache holds",
	    .main = cmd_cache_stats)
CLI_COMMAND(.name = "cache gc", .usage = "",
	    .summary = "evict least-recently-used blobs down to --cache-max", .main = cmd_cache_gc)
CLI_COMMAND(.name = "cache clear", .usage = "", .summary = "remove every blob no running VM uses",
	    .main = cmd_cache_clear)
