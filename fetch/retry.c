/*
 * The retry and deadline policy of the fetch client (fetch/xfer.h;
 * docs/storage.md, "Retry policy"): a retryable failure is tried again
 * after an exponential backoff with jitter (or the server's Retry-After),
 * until the retry cap or the fetch timeout; and a request, tries and
 * transfer included, ends at the fetch timeout plus FETCH_MS_PER_MIB per
 * MiB of its object, however the server trickles.
 */
#include "fetch/xfer.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* xorshift64, seeded once per thread: jitter needs spread, not secrecy. */
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

/* --- deadlines --- */

/* Retrying stops here: the fetch timeout after the first try or the last
 * try that delivered bytes. */
uint64_t xfer_deadline_ns(const struct fetch_client *c, const struct fetch_xfer *x)
{
	if (c->o.no_deadline)
		return UINT64_MAX;
	return x->t_base + (uint64_t)c->o.deadline_ms * CLOCK_NS_PER_MS;
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
uint64_t xfer_total_deadline_ns(const struct fetch_client *c, const struct fetch_xfer *x)
{
	if (c->o.no_deadline)
		return UINT64_MAX;
	uint64_t allow_ms = (object_bytes(x) >> 20) * FETCH_MS_PER_MIB +
			    ((object_bytes(x) & ((1 << 20) - 1)) * FETCH_MS_PER_MIB >> 20);
	return x->t_first + ((uint64_t)c->o.deadline_ms + allow_ms) * CLOCK_NS_PER_MS;
}

uint64_t xfer_attempt_time_left_ms(const struct fetch_client *c, const struct fetch_xfer *x)
{
	uint64_t t = clock_now_ns(), d = xfer_deadline_ns(c, x), td = xfer_total_deadline_ns(c, x);
	if (td < d)
		d = td;
	uint64_t left = d > t ? (d - t) / CLOCK_NS_PER_MS : 0;
	return left < MIN_ATTEMPT_MS ? MIN_ATTEMPT_MS : left;
}

/* Called by libcurl about once a second and on every chunk: a transfer
 * still trickling bytes at the total deadline is cut (final). */
int xfer_on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		     curl_off_t ulnow)
{
	struct fetch_xfer *x = ud;
	uint64_t t = clock_now_ns();
	/* A last try started at the deadline still gets the floor of a try,
	 * as its connect timeout does: a server back by then is found. */
	if (t < xfer_total_deadline_ns(x->c, x) || t < x->t_attempt + MIN_ATTEMPT_MS * CLOCK_NS_PER_MS)
		return 0;
	x->timed_out = true;
	return 1; /* CURLE_ABORTED_BY_CALLBACK */
}

/* --- retries --- */

/* The pause before the next try (attempt already counts the last one). */
static uint64_t retry_delay_ns(struct fetch_client *c, struct fetch_xfer *x)
{
	uint64_t ms = fetch_backoff_ms(x->attempt, c->o.backoff_base_ms, c->o.backoff_max_ms, rand32());
	/* Honour a server's Retry-After (429, 503) up to our own cap. */
	uint64_t ra = (uint64_t)x->retry_after_s * 1000;
	if (ra > c->o.backoff_max_ms)
		ra = c->o.backoff_max_ms;
	if (ra > ms)
		ms = ra;
	return ms * CLOCK_NS_PER_MS;
}

int xfer_retry_or_fail(struct fetch_client *c, struct fetch_xfer *x)
{
	struct fetch_req *r = x->r;
	if (x->attempt >= c->o.max_retries) {
		size_t l = strlen(r->err);
		snprintf(r->err + l, sizeof(r->err) - l, " (gave up after %u tries)", x->attempt + 1);
		return -1;
	}
	if (r->bytes > x->bytes_base) {
		x->bytes_base = r->bytes;
		x->t_base = clock_now_ns();
	}
	if (clock_now_ns() >= xfer_deadline_ns(c, x) || clock_now_ns() >= xfer_total_deadline_ns(c, x)) {
		size_t l = strlen(r->err);
		snprintf(r->err + l, sizeof(r->err) - l,
			 " (gave up after %u tries in %.1f s: the fetch timeout is %u s)", x->attempt + 1,
			 (double)(clock_now_ns() - x->t_base) / 1e9, (c->o.deadline_ms + 999) / 1000);
		return -1;
	}
	return 1;
}

void xfer_schedule_retry(struct fetch_client *c, struct fetch_xfer *x)
{
	x->attempt++;
	atomic_fetch_add(&c->st_retries, 1);
	x->not_before = clock_now_ns() + retry_delay_ns(c, x);
	/* The last try starts at the deadline at the latest: a server back by
	 * then is found. */
	if (x->not_before > xfer_deadline_ns(c, x))
		x->not_before = xfer_deadline_ns(c, x);
	if (x->not_before > xfer_total_deadline_ns(c, x))
		x->not_before = xfer_total_deadline_ns(c, x);
	log_debug("fetch: retry %u of %s in %" PRIu64 " ms (%s)", x->attempt, x->r->url,
		  (x->not_before - clock_now_ns()) / CLOCK_NS_PER_MS, x->r->err);
}
