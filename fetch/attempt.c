/*
 * One try of a request (fetch/xfer.h): the curl easy handle's options, the
 * callbacks that check what the server sends before a byte reaches the
 * sink (status, Content-Range, length bounds, the digest), and the
 * classification of the outcome. Everything the server sends is
 * untrusted.
 */
#include "fetch/xfer.h"
#include "lib/clock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_REDIRECTS 5
#define RECV_BUFFER (512 * 1024)
#define PROGRESS_INTERVAL_NS 250000000ULL

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

void xfer_report_progress(struct fetch_xfer *x, bool force)
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
		xfer_report_progress(x, false);
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

int xfer_attempt_setup(struct fetch_client *c, struct fetch_xfer *x)
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
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, xfer_on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
	/* A try may not outlive the request's deadline by much: its connect
	 * and stall timeouts are cut to the time left (at least 1 s). */
	uint64_t left_ms = xfer_attempt_time_left_ms(c, x);
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
	if (!is_file_url(r->url))
		fetch_s3_apply(&c->s3, e);

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

int xfer_attempt_finish(struct fetch_client *c, struct fetch_xfer *x, CURLcode cc)
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
	return xfer_retry_or_fail(c, x);
}
