/*
 * The transfer engine: every request, single or batched, runs through
 * fetch_run on a curl multi handle taken from the client's pool, so
 * connections are reused across calls and threads never share a handle.
 */
#include "fetch/fetch.h"
#include "lib/clock.h"
#include "lib/wholefile.h"
#include "vmm/cli.h"
#include "vmm/log.h"
#include "vmm/stats.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEF_CONNECT_TIMEOUT_MS 10000
#define DEF_LOW_SPEED_BYTES 1
#define DEF_LOW_SPEED_TIME_S 30
#define DEF_DEADLINE_MS 60000
#define MIN_ATTEMPT_MS 1000   /* floor of one try's timeouts near the deadline */
#define DEF_BACKOFF_BASE_MS 100
#define DEF_BACKOFF_MAX_MS 10000
#define DEF_MAX_PARALLEL 32
#define MAX_REDIRECTS 5
#define POOL_MAX 16            /* idle multi handles kept for reuse */
#define LAT_SAMPLES 65536      /* latency ring for percentiles */
#define ERRBODY_MAX 160        /* bytes of an error page kept for the message */
#define RECV_BUFFER (512 * 1024)
#define PROGRESS_INTERVAL_NS 250000000ULL

const char *const fetch_kind_names[FETCH_KINDS] = {"get", "range", "head", "put"};

struct fetch_client {
	struct fetch_opts o;
	pthread_mutex_t lock;
	CURLM *pool[POOL_MAX];
	int n_pool;
	char sigv4[160], *aws_user, *aws_pass;
	struct curl_slist *aws_hdrs;
	fetch_progress_fn progress;
	void *progress_ctx;

	_Atomic uint64_t st_requests[FETCH_KINDS], st_bytes[FETCH_KINDS];
	_Atomic uint64_t st_retries, st_failures, st_mismatch;
	pthread_mutex_t lat_lock;
	uint64_t *lat;
	size_t n_lat, lat_next;
};

struct fetch_xfer {
	struct fetch_req *r;
	CURL *e;
	unsigned attempt;
	uint64_t t_first, not_before;
	/* The deadline runs from here: the first try, or the end of the
	 * last try that delivered bytes (a long download cut late resumes). */
	uint64_t t_base, bytes_base;
	/* Per attempt. */
	uint64_t want_first;  /* absolute offset this attempt asked for */
	uint64_t skip;        /* body bytes to drop (server ignored Range) */
	bool ranged;          /* this attempt sent a Range header */
	bool body_started, body_error, fatal, sink_failed, got_all;
	bool timed_out;       /* the request's total deadline passed */
	uint64_t t_attempt;   /* this try's start */
	long status;
	bool have_crange;
	uint64_t cr_first, cr_last;
	int64_t cr_total;
	unsigned retry_after_s;
	char errbody[ERRBODY_MAX + 1];
	size_t errbody_len;
	char curl_err[CURL_ERROR_SIZE];
	uint64_t put_pos;
	/* Whole request. */
	int64_t total;        /* object size when known */
	EVP_MD_CTX *md;
	uint64_t last_progress;
	bool progress;
	struct fetch_client *c;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static uint32_t rand32(void)
{
	static __thread uint64_t s;
	if (!s) {
		if (getrandom(&s, sizeof(s), 0) != sizeof(s))
			s = clock_now_ns();
		s |= 1;
	}
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (uint32_t)(s >> 16);
}

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

	const char *key = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *region = getenv("AWS_REGION");
	if (!region || !*region)
		region = getenv("AWS_DEFAULT_REGION");
	if (key && *key && secret && *secret && region && *region) {
		snprintf(c->sigv4, sizeof(c->sigv4), "aws:amz:%s:s3", region);
		c->aws_user = strdup(key);
		c->aws_pass = strdup(secret);
		/* S3 wants the payload's hash in a header; blobs are verified
		 * end to end by their own digest, so the payload is left
		 * unsigned (streaming a PUT would otherwise need two reads).
		 * libcurl signs every x-amz-* header it is given. */
		c->aws_hdrs = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
		const char *token = getenv("AWS_SESSION_TOKEN");
		if (token && *token) {
			char *h = NULL;
			if (asprintf(&h, "x-amz-security-token: %s", token) > 0) {
				c->aws_hdrs = curl_slist_append(c->aws_hdrs, h);
				free(h);
			}
		}
		log_debug("fetch: signing requests with SigV4 (region %s)", region);
	}
	return c;
}

void fetch_client_destroy(struct fetch_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n_pool; i++)
		curl_multi_cleanup(c->pool[i]);
	curl_slist_free_all(c->aws_hdrs);
	free(c->aws_user);
	free(c->aws_pass);
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

static bool is_file_url(const char *url)
{
	return strncasecmp(url, "file:", 5) == 0;
}

/* --- curl callbacks --- */

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
	struct fetch_xfer *x = ud;
	size_t len = size * n;
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* A new response (after a redirect or 100 Continue): forget the last. */
		x->have_crange = false;
		x->retry_after_s = 0;
		return len;
	}
	char line[256];
	size_t l = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
	memcpy(line, buf, l);
	line[l] = '\0';
	if (strncasecmp(line, "Content-Range:", 14) == 0) {
		x->have_crange = fetch_parse_content_range(line + 14, &x->cr_first, &x->cr_last,
							   &x->cr_total) == 0;
	} else if (strncasecmp(line, "Retry-After:", 12) == 0) {
		char *end;
		unsigned long v = strtoul(line + 12, &end, 10);
		x->retry_after_s = v > 3600 ? 3600 : (unsigned)v;
	}
	return len;
}

static void report_progress(struct fetch_xfer *x, bool force)
{
	struct fetch_client *c = x->c;
	uint64_t t = clock_now_ns();
	if (!force && t - x->last_progress < PROGRESS_INTERVAL_NS)
		return;
	x->last_progress = t;
	uint64_t total = x->r->length;
	if (!total && x->total >= 0)
		total = (uint64_t)x->total - x->r->offset;
	c->progress(c->progress_ctx, x->r->bytes, total);
}

/* First body bytes of an attempt: decide whether they are the content we
 * asked for, content to skip, or an error page. */
static void body_begin(struct fetch_xfer *x)
{
	struct fetch_req *r = x->r;
	x->body_started = true;
	curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->status >= 300) {
		x->body_error = true;
		return;
	}
	if (x->status == 206) {
		if (!x->have_crange || x->cr_first != x->want_first) {
			snprintf(r->err, sizeof(r->err),
				 "%s: server answered a range request with the wrong range "
				 "(asked from byte %" PRIu64 ")", r->url, x->want_first);
			x->fatal = true;
			return;
		}
		if (x->cr_total >= 0)
			x->total = x->cr_total;
	} else if (x->status == 200 && x->ranged) {
		/* The server ignored Range and sends the object from byte 0. */
		x->skip = x->want_first;
	}
	/* The object's size: from a whole 200, or a whole file:// read. */
	if ((x->status == 200 || (x->status == 0 && !x->ranged)) && x->total < 0) {
		curl_off_t cl = -1;
		curl_easy_getinfo(x->e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
		if (cl >= 0)
			x->total = cl;
	}
	/* An announced size past the bound fails before any byte is kept. */
	if (r->max_bytes && !r->length && x->total >= 0 &&
	    (uint64_t)x->total - (x->total >= (int64_t)r->offset ? r->offset : 0) > r->max_bytes) {
		snprintf(r->err, sizeof(r->err), "%s: %" PRId64 " bytes, expected %" PRIu64
			 " at most: not fetching it", r->url, x->total, r->max_bytes);
		x->fatal = true;
	}
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud)
{
	struct fetch_xfer *x = ud;
	struct fetch_req *r = x->r;
	size_t len = size * n;
	if (!x->body_started)
		body_begin(x);
	if (x->fatal)
		return CURL_WRITEFUNC_ERROR;
	if (x->body_error) {
		size_t room = ERRBODY_MAX - x->errbody_len, k = len < room ? len : room;
		memcpy(x->errbody + x->errbody_len, buf, k);
		x->errbody_len += k;
		x->errbody[x->errbody_len] = '\0';
		return len;
	}
	const char *p = buf;
	size_t left = len;
	if (x->skip) {
		size_t k = left < x->skip ? left : (size_t)x->skip;
		x->skip -= k;
		p += k;
		left -= k;
	}
	if (r->length) {
		uint64_t room = r->length - r->bytes;
		if (left > room)
			left = (size_t)room;
	}
	if (r->max_bytes && left > r->max_bytes - r->bytes) {
		snprintf(r->err, sizeof(r->err), "%s: more than %" PRIu64 " bytes (expected %" PRIu64
			 " at most)", r->url, r->max_bytes, r->max_bytes);
		x->fatal = true;
		return CURL_WRITEFUNC_ERROR;
	}
	if (left) {
		if (x->md)
			EVP_DigestUpdate(x->md, p, left);
		if (r->sink && r->sink(r->sink_ctx, p, left) < 0) {
			x->sink_failed = true;
			return CURL_WRITEFUNC_ERROR;
		}
		r->bytes += left;
	}
	if (x->progress)
		report_progress(x, false);
	if (r->length && r->bytes == r->length && x->skip == 0 && x->status == 200 && x->ranged) {
		/* Everything wanted arrived from a server that ignores Range:
		 * stop reading the rest of the object. */
		x->got_all = true;
		return CURL_WRITEFUNC_ERROR;
	}
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
	struct fetch_xfer *x = ud;
	struct fetch_req *r = x->r;
	size_t want = size * n;
	uint64_t left = r->put_len - x->put_pos;
	if (want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	if (r->put_buf) {
		memcpy(buf, (const char *)r->put_buf + x->put_pos, want);
	} else {
		ssize_t got = pread(r->put_fd, buf, want, (off_t)x->put_pos);
		if (got <= 0) {
			snprintf(r->err, sizeof(r->err), "%s: reading the upload source: %s", r->url,
				 got < 0 ? strerror(errno) : "file shrank");
			x->fatal = true;
			return CURL_READFUNC_ABORT;
		}
		want = (size_t)got;
	}
	x->put_pos += want;
	return want;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
	struct fetch_xfer *x = ud;
	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->r->put_len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->put_pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

/* --- one attempt --- */

/* Retrying stops here: the fetch timeout after the first try or the last
 * try that delivered bytes. */
static uint64_t deadline_ns(struct fetch_client *c, struct fetch_xfer *x)
{
	if (c->o.no_deadline)
		return UINT64_MAX;
	return x->t_base + (uint64_t)c->o.deadline_ms * 1000000ULL;
}

/* Bytes the total deadline allows time for: what the caller asked for or
 * bounded, else what the server announced. */
static uint64_t object_bytes(const struct fetch_xfer *x)
{
	const struct fetch_req *r = x->r;
	if (r->method == FETCH_PUT)
		return r->put_len;
	if (r->length)
		return r->length;
	if (x->total >= 0 && (!r->max_bytes || (uint64_t)x->total < r->max_bytes))
		return (uint64_t)x->total; /* announced, and within the bound */
	return r->max_bytes;
}

/* The request ends here whatever happens: the fetch timeout after its
 * first try plus FETCH_MS_PER_MIB per MiB of the object. */
static uint64_t total_deadline_ns(struct fetch_client *c, struct fetch_xfer *x)
{
	if (c->o.no_deadline)
		return UINT64_MAX;
	uint64_t allow_ms = (object_bytes(x) >> 20) * FETCH_MS_PER_MIB +
			    ((object_bytes(x) & ((1 << 20) - 1)) * FETCH_MS_PER_MIB >> 20);
	return x->t_first + ((uint64_t)c->o.deadline_ms + allow_ms) * 1000000ULL;
}

static uint64_t attempt_time_left_ms(struct fetch_client *c, struct fetch_xfer *x)
{
	uint64_t t = clock_now_ns(), d = deadline_ns(c, x), td = total_deadline_ns(c, x);
	if (td < d)
		d = td;
	uint64_t left = d > t ? (d - t) / 1000000ULL : 0;
	return left < MIN_ATTEMPT_MS ? MIN_ATTEMPT_MS : left;
}

/* Called by libcurl about once a second and on every chunk: a transfer
 * still trickling bytes at the total deadline is cut (final). */
static int on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct fetch_xfer *x = ud;
	uint64_t t = clock_now_ns();
	/* A last try started at the deadline still gets the floor of a try,
	 * as its connect timeout does: a server back by then is found. */
	if (t < total_deadline_ns(x->c, x) || t < x->t_attempt + MIN_ATTEMPT_MS * 1000000ULL)
		return 0;
	x->timed_out = true;
	return 1; /* CURLE_ABORTED_BY_CALLBACK */
}

static int attempt_setup(struct fetch_client *c, struct fetch_xfer *x)
{
	struct fetch_req *r = x->r;
	CURL *e = curl_easy_init();
	if (!e)
		return -1;
	x->e = e;
	x->status = 0;
	x->skip = 0;
	x->ranged = false;
	x->body_started = x->body_error = x->got_all = x->timed_out = false;
	x->t_attempt = clock_now_ns();
	x->have_crange = false;
	x->retry_after_s = 0;
	x->errbody_len = 0;
	x->errbody[0] = x->curl_err[0] = '\0';
	x->put_pos = 0;

	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_err);
	/* file:// only for a client made for local images (fetch_opts);
	 * a redirect must never lead to a local file. */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->o.allow_file ? "http,https,file" : "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
	/* A try may not outlive the request's deadline by much: its connect
	 * and stall timeouts are cut to the time left (at least 1 s). */
	uint64_t left_ms = attempt_time_left_ms(c, x);
	uint64_t conn_ms = c->o.connect_timeout_ms, stall_s = c->o.low_speed_time_s;
	if (conn_ms > left_ms)
		conn_ms = left_ms;
	if (stall_s > (left_ms + 999) / 1000)
		stall_s = (left_ms + 999) / 1000;
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)conn_ms);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, (long)c->o.low_speed_bytes);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)stall_s);
	curl_easy_setopt(e, CURLOPT_USERAGENT, c->o.user_agent);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)RECV_BUFFER);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	if (c->o.insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->sigv4[0] && !is_file_url(r->url)) {
		curl_easy_setopt(e, CURLOPT_AWS_SIGV4, c->sigv4);
		curl_easy_setopt(e, CURLOPT_USERNAME, c->aws_user);
		curl_easy_setopt(e, CURLOPT_PASSWORD, c->aws_pass);
		if (c->aws_hdrs)
			curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->aws_hdrs);
	}

	switch (r->method) {
	case FETCH_HEAD:
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		break;
	case FETCH_PUT:
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, x);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->put_len);
		break;
	case FETCH_GET: {
		/* Resume after the bytes already delivered. */
		x->want_first = r->offset + r->bytes;
		if (x->want_first || r->length) {
			char range[64];
			if (r->length)
				snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, x->want_first,
					 r->offset + r->length - 1);
			else
				snprintf(range, sizeof(range), "%" PRIu64 "-", x->want_first);
			curl_easy_setopt(e, CURLOPT_RANGE, range);
			x->ranged = true;
		}
		break;
	}
	}
	return 0;
}

/* Classify a finished attempt: 0 done, 1 retry, -1 failed (r->err set). */
static int attempt_finish(struct fetch_client *c, struct fetch_xfer *x, CURLcode cc)
{
	struct fetch_req *r = x->r;
	bool file = is_file_url(r->url);
	if (!x->body_started || x->status == 0)
		curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &x->status);
	r->http_status = x->status;
	if (x->sink_failed) {
		snprintf(r->err, sizeof(r->err), "%s: aborted by sink", r->url);
		return -1;
	}
	if (x->fatal)
		return -1;
	if (x->timed_out) {
		snprintf(r->err, sizeof(r->err), "%s: timed out: not done %.1f s after the first try (%" PRIu64
			 " bytes in): the fetch timeout is %u s plus %u s per MiB of the object",
			 r->url, (double)(clock_now_ns() - x->t_first) / 1e9, r->bytes,
			 (c->o.deadline_ms + 999) / 1000, FETCH_MS_PER_MIB / 1000);
		return -1;
	}
	if (x->got_all && cc == CURLE_WRITE_ERROR)
		cc = CURLE_OK;
	if (cc != CURLE_OK) {
		if (fetch_retryable(cc, 0))
			goto retry_or_fail;
		snprintf(r->err, sizeof(r->err), "%s: %s%s%s", r->url, curl_easy_strerror(cc),
			 x->curl_err[0] ? ": " : "", x->curl_err);
		return -1;
	}
	if (x->status >= 300 || (!file && x->status < 200)) {
		if (fetch_retryable(CURLE_OK, x->status))
			goto retry_or_fail;
		/* An error page on one line: S3 puts its <Code> after the XML
		 * declaration. */
		for (char *p = x->errbody; *p; p++)
			if (*p == '\r' || *p == '\n' || *p == '\t')
				*p = ' ';
		const char *page = strstr(x->errbody, "<Code>");
		if (!page)
			page = x->errbody;
		snprintf(r->err, sizeof(r->err), "%s: HTTP %ld%s%.160s", r->url, x->status,
			 *page ? ": " : "", page);
		return -1;
	}
	if (r->method == FETCH_HEAD) {
		curl_off_t cl = -1;
		curl_easy_getinfo(x->e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
		r->content_length = cl;
		return 0;
	}
	if (r->method == FETCH_PUT)
		return 0;
	if (!x->body_started)
		body_begin(x); /* an empty body: still check the status */
	if (x->fatal)
		return -1;
	/* A body shorter than asked or announced is cut: resume it. */
	uint64_t want = r->length;
	if (!want && x->total >= 0) {
		if ((uint64_t)x->total < r->offset) {
			snprintf(r->err, sizeof(r->err), "%s: offset %" PRIu64 " is past the end (%" PRId64 " bytes)",
				 r->url, r->offset, x->total);
			return -1;
		}
		want = (uint64_t)x->total - r->offset;
	}
	if (r->length && x->total >= 0 && r->offset + r->length > (uint64_t)x->total) {
		snprintf(r->err, sizeof(r->err),
			 "%s: range %" PRIu64 "+%" PRIu64 " is past the end of the object (%" PRId64 " bytes)",
			 r->url, r->offset, r->length, x->total);
		return -1;
	}
	if (want && r->bytes < want) {
		snprintf(r->err, sizeof(r->err), "%s: body cut short (%" PRIu64 " of %" PRIu64 " bytes)",
			 r->url, r->bytes, want);
		goto retry_or_fail_keep_err;
	}
	r->content_length = x->total;
	if (x->md) {
		uint8_t d[EVP_MAX_MD_SIZE];
		unsigned dl = 0;
		EVP_DigestFinal_ex(x->md, d, &dl);
		if (dl != FETCH_SHA256_LEN || memcmp(d, r->sha256, FETCH_SHA256_LEN) != 0) {
			char want_hex[FETCH_SHA256_HEX], got_hex[FETCH_SHA256_HEX];
			fetch_sha256_to_hex(r->sha256, want_hex);
			fetch_sha256_to_hex(d, got_hex);
			snprintf(r->err, sizeof(r->err), "%s: sha256 mismatch: expected %s, got %s",
				 r->url, want_hex, got_hex);
			atomic_fetch_add(&c->st_mismatch, 1);
			return -1;
		}
	}
	return 0;

retry_or_fail:
	if (cc != CURLE_OK)
		snprintf(r->err, sizeof(r->err), "%s: %s%s%s", r->url, curl_easy_strerror(cc),
			 x->curl_err[0] ? ": " : "", x->curl_err);
	else
		snprintf(r->err, sizeof(r->err), "%s: HTTP %ld", r->url, x->status);
retry_or_fail_keep_err:
	if (x->attempt >= c->o.max_retries) {
		size_t l = strlen(r->err);
		snprintf(r->err + l, sizeof(r->err) - l, " (gave up after %u tries)", x->attempt + 1);
		return -1;
	}
	if (r->bytes > x->bytes_base) {
		x->bytes_base = r->bytes;
		x->t_base = clock_now_ns();
	}
	if (clock_now_ns() >= deadline_ns(c, x) || clock_now_ns() >= total_deadline_ns(c, x)) {
		size_t l = strlen(r->err);
		snprintf(r->err + l, sizeof(r->err) - l,
			 " (gave up after %u tries in %.1f s: the fetch timeout is %u s)", x->attempt + 1,
			 (double)(clock_now_ns() - x->t_base) / 1e9, (c->o.deadline_ms + 999) / 1000);
		return -1;
	}
	return 1;
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
		report_progress(x, true);
}

static uint64_t retry_delay_ns(struct fetch_client *c, struct fetch_xfer *x)
{
	uint64_t ms = fetch_backoff_ms(x->attempt, c->o.backoff_base_ms, c->o.backoff_max_ms, rand32());
	/* Honour a server's Retry-After (429, 503) up to our own cap. */
	uint64_t ra = (uint64_t)x->retry_after_s * 1000;
	if (ra > c->o.backoff_max_ms)
		ra = c->o.backoff_max_ms;
	if (ra > ms)
		ms = ra;
	return ms * 1000000ULL;
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
			if (attempt_setup(c, x) < 0 || curl_multi_add_handle(m, x->e) != CURLM_OK) {
				snprintf(x->r->err, sizeof(x->r->err), "%s: cannot start a transfer", x->r->url);
				xfer_done(c, x, -1);
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
			if (attempt_setup(c, x) < 0 || curl_multi_add_handle(m, x->e) != CURLM_OK) {
				snprintf(x->r->err, sizeof(x->r->err), "%s: cannot start a transfer", x->r->url);
				xfer_done(c, x, -1);
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
			int rc = attempt_finish(c, x, cc);
			curl_multi_remove_handle(m, x->e);
			curl_easy_cleanup(x->e);
			x->e = NULL;
			active--;
			if (rc == 1) {
				x->attempt++;
				atomic_fetch_add(&c->st_retries, 1);
				x->not_before = clock_now_ns() + retry_delay_ns(c, x);
				/* The last try starts at the deadline at the latest:
				 * a server back by then is found. */
				if (x->not_before > deadline_ns(c, x))
					x->not_before = deadline_ns(c, x);
				if (x->not_before > total_deadline_ns(c, x))
					x->not_before = total_deadline_ns(c, x);
				log_debug("fetch: retry %u of %s in %" PRIu64 " ms (%s)", x->attempt,
					  x->r->url, (x->not_before - clock_now_ns()) / 1000000, x->r->err);
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
			uint64_t d = waiting[i]->not_before > t ? (waiting[i]->not_before - t) / 1000000 : 0;
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
