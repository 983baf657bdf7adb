/*
 * The fetch client (fetch/fetch.h): its options and pool of curl multi
 * handles, and the transfer engine every request, single or batched, runs
 * through: fetch_run drives the requests' tries (fetch/attempt.c) and
 * their retries (fetch/retry.c) on a multi handle taken from the pool, so
 * connections are reused across calls and threads never share a handle.
 */
#include "fetch/xfer.h"
#include "lib/clock.h"
#include "lib/cli.h" /* MINIVMM_VERSION */
#include "lib/log.h"
#include "lib/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEF_CONNECT_TIMEOUT_MS 10000
#define DEF_LOW_SPEED_BYTES 1
#define DEF_LOW_SPEED_TIME_S 30
#define DEF_DEADLINE_MS 60000
#define DEF_BACKOFF_BASE_MS 100
#define DEF_BACKOFF_MAX_MS 10000
#define DEF_MAX_PARALLEL 32
#define LAT_SAMPLES 65536      /* latency ring for percentiles */

const char *const fetch_kind_names[FETCH_KINDS] = {"get", "range", "head", "put"};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

struct fetch_client *fetch_client_create(const struct fetch_opts *opts, char *err, size_t errlen)
{
	pthread_once(&global_once, global_init);
	struct fetch_client *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (opts)
		c->o = *opts;
	if (!c->o.connect_timeout_ms)
		c->o.connect_timeout_ms = DEF_CONNECT_TIMEOUT_MS;
	if (!c->o.low_speed_bytes)
		c->o.low_speed_bytes = DEF_LOW_SPEED_BYTES;
	if (!c->o.low_speed_time_s)
		c->o.low_speed_time_s = DEF_LOW_SPEED_TIME_S;
	if (!c->o.max_retries && !c->o.no_retries)
		c->o.max_retries = UINT_MAX; /* the deadline bounds them */
	if (!c->o.deadline_ms)
		c->o.deadline_ms = DEF_DEADLINE_MS;
	if (!c->o.backoff_base_ms)
		c->o.backoff_base_ms = DEF_BACKOFF_BASE_MS;
	if (!c->o.backoff_max_ms)
		c->o.backoff_max_ms = DEF_BACKOFF_MAX_MS;
	if (!c->o.max_parallel)
		c->o.max_parallel = DEF_MAX_PARALLEL;
	if (!c->o.user_agent)
		c->o.user_agent = "minivmm/" MINIVMM_VERSION;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->lat_lock, NULL);
	c->lat = calloc(LAT_SAMPLES, sizeof(*c->lat));
	if (!c->lat) {
		snprintf(err, errlen, "out of memory");
		free(c);
		return NULL;
	}

	fetch_s3_from_env(&c->s3);
	return c;
}

void fetch_client_destroy(struct fetch_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n_pool; i++)
		curl_multi_cleanup(c->pool[i]);
	fetch_s3_free(&c->s3);
	free(c->lat);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->lat_lock);
	free(c);
}

void fetch_set_progress(struct fetch_client *c, fetch_progress_fn fn, void *ctx)
{
	pthread_mutex_lock(&c->lock);
	c->progress = fn;
	c->progress_ctx = ctx;
	pthread_mutex_unlock(&c->lock);
}

static CURLM *pool_take(struct fetch_client *c)
{
	CURLM *m = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->n_pool)
		m = c->pool[--c->n_pool];
	pthread_mutex_unlock(&c->lock);
	if (!m) {
		m = curl_multi_init();
		if (m)
			curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->o.max_parallel);
	}
	return m;
}

static void pool_give(struct fetch_client *c, CURLM *m)
{
	pthread_mutex_lock(&c->lock);
	if (c->n_pool < POOL_MAX) {
		c->pool[c->n_pool++] = m;
		m = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (m)
		curl_multi_cleanup(m);
}

static enum fetch_kind req_kind(const struct fetch_req *r)
{
	switch (r->method) {
	case FETCH_HEAD: return FETCH_KIND_HEAD;
	case FETCH_PUT: return FETCH_KIND_PUT;
	default: return r->offset || r->length ? FETCH_KIND_RANGE : FETCH_KIND_GET;
	}
}

static void record_latency(struct fetch_client *c, uint64_t ns)
{
	pthread_mutex_lock(&c->lat_lock);
	c->lat[c->lat_next] = ns;
	c->lat_next = (c->lat_next + 1) % LAT_SAMPLES;
	if (c->n_lat < LAT_SAMPLES)
		c->n_lat++;
	pthread_mutex_unlock(&c->lat_lock);
}

static void xfer_done(struct fetch_client *c, struct fetch_xfer *x, int rc)
{
	struct fetch_req *r = x->r;
	r->result = rc == 0 ? 0 : -1;
	r->retries = x->attempt;
	r->latency_ns = clock_now_ns() - x->t_first;
	enum fetch_kind k = req_kind(r);
	atomic_fetch_add(&c->st_requests[k], 1);
	atomic_fetch_add(&c->st_bytes[k], k == FETCH_KIND_PUT ? (rc == 0 ? r->put_len : 0) : r->bytes);
	if (rc != 0)
		atomic_fetch_add(&c->st_failures, 1);
	else
		record_latency(c, r->latency_ns);
	if (x->progress && rc == 0)
		xfer_report_progress(x, true);
}

/* Set up x's next try and hand it to the multi handle; on failure x is
 * done (failed) with the reason in its request. */
static int start_attempt(struct fetch_client *c, CURLM *m, struct fetch_xfer *x)
{
	if (xfer_attempt_setup(c, x) == 0 && curl_multi_add_handle(m, x->e) == CURLM_OK)
		return 0;
	snprintf(x->r->err, sizeof(x->r->err), "%s: cannot start a transfer", x->r->url);
	xfer_done(c, x, -1);
	return -1;
}

size_t fetch_run(struct fetch_client *c, struct fetch_req *reqs, size_t n)
{
	if (!n)
		return 0;
	pthread_once(&global_once, global_init);
	size_t failed = 0, done = 0, next_new = 0, active = 0;
	struct fetch_xfer *xs = calloc(n, sizeof(*xs));
	struct fetch_xfer **waiting = calloc(n, sizeof(*waiting)); /* retries */
	size_t n_waiting = 0;
	CURLM *m = pool_take(c);
	fetch_progress_fn progress = NULL;
	pthread_mutex_lock(&c->lock);
	progress = c->progress;
	pthread_mutex_unlock(&c->lock);
	if (!xs || !waiting || !m) {
		for (size_t i = 0; i < n; i++) {
			reqs[i].result = -1;
			snprintf(reqs[i].err, sizeof(reqs[i].err), "%s: out of memory", reqs[i].url);
		}
		free(xs);
		free(waiting);
		if (m)
			curl_multi_cleanup(m);
		return n;
	}
	for (size_t i = 0; i < n; i++) {
		struct fetch_req *r = &reqs[i];
		r->result = 0;
		r->bytes = 0;
		r->retries = 0;
		r->http_status = 0;
		r->content_length = -1;
		r->err[0] = '\0';
		r->priv_ = &xs[i];
		xs[i].r = r;
		xs[i].c = c;
		xs[i].total = -1;
		xs[i].progress = progress && n == 1 && r->method == FETCH_GET;
	}

	while (done < n) {
		uint64_t t = clock_now_ns();
		/* Start due retries first, then new requests, up to the limit. */
		for (size_t i = 0; i < n_waiting && active < c->o.max_parallel;) {
			struct fetch_xfer *x = waiting[i];
			if (x->not_before > t) {
				i++;
				continue;
			}
			waiting[i] = waiting[--n_waiting];
			if (start_attempt(c, m, x) < 0) {
				done++, failed++;
				continue;
			}
			active++;
		}
		while (next_new < n && active < c->o.max_parallel) {
			struct fetch_xfer *x = &xs[next_new++];
			x->t_first = x->t_base = clock_now_ns();
			if (x->r->sha256 && x->r->method == FETCH_GET) {
				x->md = EVP_MD_CTX_new();
				if (!x->md || EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) != 1) {
					snprintf(x->r->err, sizeof(x->r->err), "%s: cannot start SHA-256", x->r->url);
					xfer_done(c, x, -1);
					done++, failed++;
					continue;
				}
			}
			if (start_attempt(c, m, x) < 0) {
				done++, failed++;
				continue;
			}
			active++;
		}
		if (done == n)
			break;

		int running = 0;
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct fetch_xfer *x = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			CURLcode cc = msg->data.result;
			int rc = xfer_attempt_finish(c, x, cc);
			curl_multi_remove_handle(m, x->e);
			curl_easy_cleanup(x->e);
			x->e = NULL;
			active--;
			if (rc == 1) {
				xfer_schedule_retry(c, x);
				waiting[n_waiting++] = x;
			} else {
				xfer_done(c, x, rc);
				done++;
				if (rc)
					failed++;
			}
		}
		if (done == n)
			break;

		/* Free slots and new requests: start them before waiting. */
		if (active < c->o.max_parallel && next_new < n)
			continue;
		/* Sleep until there is socket activity or a retry is due. */
		long timeout_ms = 1000;
		t = clock_now_ns();
		for (size_t i = 0; i < n_waiting; i++) {
			uint64_t d = waiting[i]->not_before > t ? (waiting[i]->not_before - t) / CLOCK_NS_PER_MS : 0;
			if ((long)d < timeout_ms)
				timeout_ms = (long)d;
		}
		if (timeout_ms == 0 && active < c->o.max_parallel)
			continue; /* a retry is due now */
		if (active)
			curl_multi_poll(m, NULL, 0, (int)timeout_ms, NULL);
		else if (timeout_ms > 0)
			usleep((useconds_t)timeout_ms * 1000);
	}
	for (size_t i = 0; i < n; i++) {
		if (xs[i].e) {
			curl_multi_remove_handle(m, xs[i].e);
			curl_easy_cleanup(xs[i].e);
		}
		EVP_MD_CTX_free(xs[i].md);
		reqs[i].priv_ = NULL;
	}
	pool_give(c, m);
	free(xs);
	free(waiting);
	return failed;
}

/* --- single-request conveniences --- */

static int run_one(struct fetch_client *c, struct fetch_req *r, char *err, size_t errlen)
{
	fetch_run(c, r, 1);
	if (r->result && err && errlen)
		snprintf(err, errlen, "%s", r->err);
	return r->result;
}

int fetch_get_range(struct fetch_client *c, const char *url, uint64_t offset, uint64_t len,
		    const uint8_t *sha256, fetch_sink_fn sink, void *ctx, char *err, size_t errlen)
{
	struct fetch_req r = {.url = url, .method = FETCH_GET, .offset = offset, .length = len,
			      .sha256 = sha256, .sink = sink, .sink_ctx = ctx};
	return run_one(c, &r, err, errlen);
}

int fetch_head(struct fetch_client *c, const char *url, int64_t *size, long *status,
	       char *err, size_t errlen)
{
	struct fetch_req r = {.url = url, .method = FETCH_HEAD};
	int rc = run_one(c, &r, err, errlen);
	if (size)
		*size = r.content_length;
	if (status)
		*status = r.http_status;
	return rc;
}

int fetch_put_file(struct fetch_client *c, const char *url, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	if (size < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	struct fetch_req r = {.url = url, .method = FETCH_PUT, .put_fd = fd, .put_len = (uint64_t)size};
	int rc = run_one(c, &r, err, errlen);
	close(fd);
	return rc;
}

int fetch_put_buffer(struct fetch_client *c, const char *url, const void *buf, size_t len,
		     char *err, size_t errlen)
{
	struct fetch_req r = {.url = url, .method = FETCH_PUT, .put_fd = -1,
			      .put_buf = buf ? buf : "", .put_len = len};
	return run_one(c, &r, err, errlen);
}

void fetch_get_stats(struct fetch_client *c, struct fetch_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int k = 0; k < FETCH_KINDS; k++) {
		out->requests[k] = atomic_load(&c->st_requests[k]);
		out->bytes[k] = atomic_load(&c->st_bytes[k]);
	}
	out->retries = atomic_load(&c->st_retries);
	out->failures = atomic_load(&c->st_failures);
	out->digest_mismatches = atomic_load(&c->st_mismatch);
	pthread_mutex_lock(&c->lat_lock);
	size_t n = c->n_lat;
	uint64_t *copy = n ? malloc(n * sizeof(*copy)) : NULL;
	if (copy)
		memcpy(copy, c->lat, n * sizeof(*copy));
	pthread_mutex_unlock(&c->lat_lock);
	if (copy) {
		out->lat_p50_ns = stats_percentile(copy, n, 50);
		out->lat_p95_ns = stats_percentile(copy, n, 95);
		out->lat_p99_ns = stats_percentile(copy, n, 99);
		out->lat_max_ns = stats_percentile(copy, n, 100);
		free(copy);
	}
}
