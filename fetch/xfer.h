/*
 * Inside the fetch client (not an API: fetch/fetch.h is). A request of
 * fetch_run is a struct fetch_xfer: one or more tries (attempts) of the
 * same request on curl easy handles, the bytes delivered so far, and the
 * deadlines that bound it. Three files share it:
 *
 *   fetch/client.c   the client, its handle pool and fetch_run's loop
 *   fetch/attempt.c  one try: the curl handle's options and callbacks,
 *                    and what its outcome means (done, retry, failed)
 *   fetch/retry.c    the retry and deadline policy (docs/storage.md,
 *                    "Retry policy"): when to give up, when to try again
 *
 * Every function here runs on the thread that called fetch_run; a xfer is
 * never shared between threads.
 */
#ifndef MINIVMM_FETCH_XFER_H
#define MINIVMM_FETCH_XFER_H

#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fetch/fetch.h"
#include "fetch/s3.h"

#define POOL_MAX 16            /* idle multi handles kept for reuse */
#define ERRBODY_MAX 160        /* bytes of an error page kept for the message */
#define MIN_ATTEMPT_MS 1000    /* floor of one try's timeouts near the deadline */

struct fetch_client {
	struct fetch_opts o;   /* defaults filled in */
	pthread_mutex_t lock;  /* the pool and the progress callback */
	CURLM *pool[POOL_MAX];
	int n_pool;
	struct fetch_s3 s3;    /* SigV4 credentials, when the environment has them */
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
	unsigned attempt;     /* tries made before this one */
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
	int64_t total;        /* object size when known, else -1 */
	EVP_MD_CTX *md;       /* SHA-256 of the body when one is expected */
	uint64_t last_progress;
	bool progress;        /* report to the client's progress callback */
	struct fetch_client *c;
};

/* --- fetch/attempt.c --- */

/* A new curl easy handle for x's next try (x->e), its per-try state
 * reset. 0, or -1 when curl has no handle to give. */
int xfer_attempt_setup(struct fetch_client *c, struct fetch_xfer *x);
/* The try ended with cc: 0 the request is done, 1 try again (r->err says
 * why), -1 it failed (r->err set). */
int xfer_attempt_finish(struct fetch_client *c, struct fetch_xfer *x, CURLcode cc);
/* Call the client's progress callback, at most every 250 ms unless force. */
void xfer_report_progress(struct fetch_xfer *x, bool force);

/* --- fetch/retry.c --- */

/* Retrying stops here: the fetch timeout after the first try or the last
 * try that delivered bytes. UINT64_MAX without a deadline. */
uint64_t xfer_deadline_ns(const struct fetch_client *c, const struct fetch_xfer *x);
/* The request ends here whatever happens: the fetch timeout after its
 * first try plus FETCH_MS_PER_MIB per MiB of the object. */
uint64_t xfer_total_deadline_ns(const struct fetch_client *c, const struct fetch_xfer *x);
/* What one try's connect and stall timeouts may use: the time to the
 * nearer deadline, but at least MIN_ATTEMPT_MS. */
uint64_t xfer_attempt_time_left_ms(const struct fetch_client *c, const struct fetch_xfer *x);
/* CURLOPT_XFERINFOFUNCTION (ud is the xfer): cuts a try still running at
 * the total deadline (x->timed_out). */
int xfer_on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		     curl_off_t ulnow);
/* A retryable outcome (r->err says what): 1 when the retry cap and the
 * deadlines allow another try, else -1 with r->err saying why it stops. */
int xfer_retry_or_fail(struct fetch_client *c, struct fetch_xfer *x);
/* Count the retry and set x->not_before: backoff with jitter or the
 * server's Retry-After, no later than the deadlines. */
void xfer_schedule_retry(struct fetch_client *c, struct fetch_xfer *x);

#endif
