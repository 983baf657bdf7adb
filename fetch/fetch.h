/*
 * HTTP(S)/file client for the storage server, on libcurl.
 *
 * One struct fetch_client is shared by every thread of the process: all
 * functions below are thread-safe. The client keeps a pool of curl multi
 * handles, so that connections are reused across calls, and runs several
 * requests at once (fetch_run) for prefetch and chunked reads.
 *
 * Retry policy (docs/storage.md): connection errors, timeouts, 5xx, 429 and
 * bodies shorter than announced are retried with exponential backoff and
 * jitter until the request's deadline (--fetch-timeout, default 60 s after
 * its first try) or its retry cap, resuming a cut GET with Range from the first missing byte so
 * a sink never sees a byte twice; other 4xx are final. A body whose SHA-256
 * differs from the expected one is an error naming the URL.
 *
 * Everything the server sends is untrusted: lengths and Content-Range are
 * checked against what was asked for before a byte reaches a sink.
 *
 * S3: when AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set together with
 * AWS_REGION (or AWS_DEFAULT_REGION), requests are signed with SigV4
 * (CURLOPT_AWS_SIGV4, service "s3"); AWS_SESSION_TOKEN is sent if set.
 * Proxies come from the usual environment variables (libcurl).
 */
#ifndef MINIVMM_FETCH_H
#define MINIVMM_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FETCH_SHA256_LEN 32
#define FETCH_SHA256_HEX 65 /* 64 hex digits and the NUL */
#define FETCH_ERR_LEN 512
/* Time a request's object may add to its fetch timeout: 4 s per MiB, so a
 * link of 256 KiB/s or better always gets a whole object through. */
#define FETCH_MS_PER_MIB 4000

struct fetch_client;
struct config;

struct fetch_opts {
	unsigned connect_timeout_ms; /* 0: default 10000 */
	/* A transfer slower than low_speed_bytes per second for
	 * low_speed_time_s seconds is aborted (and retried). 0: defaults
	 * (1 byte/s for 30 s). */
	unsigned low_speed_bytes, low_speed_time_s;
	/* The fetch timeout (docs/storage.md). A request stops retrying this
	 * long after its first try, or after the end of the last try that
	 * delivered bytes (the last try may start at the deadline); each
	 * try's connect and stall timeouts are cut to the time left, but not
	 * below 1 s. And a request, tries and transfer included, ends at the
	 * latest deadline_ms plus FETCH_MS_PER_MIB per MiB of its object
	 * after its first try: a server that trickles bytes cannot hold it
	 * longer. 0: default 60000. */
	unsigned deadline_ms;
	bool no_deadline;            /* --fetch-timeout 0: retry and wait forever */
	unsigned max_retries;        /* retries after the first try; 0: no cap but the deadline */
	bool no_retries;             /* max_retries = 0 really means zero */
	unsigned backoff_base_ms;    /* first retry delay; default 100 */
	unsigned backoff_max_ms;     /* cap of one delay; default 10000 */
	unsigned max_parallel;       /* requests in flight in fetch_run; default 32 */
	bool insecure;               /* skip TLS verification (--insecure) */
	/* Let transfers read file:// URLs. Off by default: only a client made
	 * for an image or a URL the user opened from the local filesystem
	 * needs it. Every transfer is limited to http and https otherwise
	 * (CURLOPT_PROTOCOLS_STR), and redirects always are. */
	bool allow_file;
	const char *user_agent;      /* default "minivmm/VERSION" */
};

/* Create a client. Returns NULL (with a message in err) on failure. */
struct fetch_client *fetch_client_create(const struct fetch_opts *opts, char *err, size_t errlen);
void fetch_client_destroy(struct fetch_client *c);

/* Receives body bytes in order, each byte exactly once. Return 0 to go on,
 * -1 to abort the transfer (no retry; the error says "aborted by sink"). */
typedef int (*fetch_sink_fn)(void *ctx, const void *data, size_t len);

enum fetch_method { FETCH_GET, FETCH_HEAD, FETCH_PUT };

/* One request for fetch_run. Fill the inputs (zero the rest); read the
 * results after fetch_run returns. */
struct fetch_req {
	/* inputs */
	const char *url;
	enum fetch_method method;
	uint64_t offset;          /* GET: first byte */
	uint64_t length;          /* GET: bytes wanted; 0 = to the end */
	fetch_sink_fn sink;       /* GET: body bytes (NULL: discarded) */
	void *sink_ctx;
	const uint8_t *sha256;    /* GET: expected digest of the body, or NULL */
	/* GET: the body may not be longer than this (0: no bound): a longer
	 * object fails before a byte past it reaches the sink. With length
	 * 0 it is also the size the deadline allows for (else the server's
	 * Content-Length is). */
	uint64_t max_bytes;
	int put_fd;               /* PUT: read from this fd (pread from 0) ... */
	const void *put_buf;      /* ... or from this buffer */
	uint64_t put_len;         /* PUT: bytes to send */
	void *user;               /* free for the caller */

	/* results */
	int result;               /* 0 ok, -1 error (see err) */
	long http_status;         /* last HTTP status, 0 for file:// */
	uint64_t bytes;           /* body bytes delivered to the sink */
	int64_t content_length;   /* HEAD / whole GET: object size, -1 unknown */
	unsigned retries;         /* retries this request needed */
	uint64_t latency_ns;      /* from first try to completion */
	char err[FETCH_ERR_LEN];

	struct fetch_xfer *priv_; /* internal */
};

/* Run n requests, up to opts.max_parallel at once, each with retries.
 * Returns the number of requests that failed (0 = all succeeded). */
size_t fetch_run(struct fetch_client *c, struct fetch_req *reqs, size_t n);

/* GET len bytes at offset (len 0: to the end) into sink. If sha256 is not
 * NULL the body must hash to it. Returns 0 or -1 with a message in err
 * (which may be NULL). */
int fetch_get_range(struct fetch_client *c, const char *url, uint64_t offset, uint64_t len,
		    const uint8_t *sha256, fetch_sink_fn sink, void *ctx,
		    char *err, size_t errlen);
/* HEAD: *size gets Content-Length (-1 if the server sent none), *status
 * the HTTP status. A 404 is returned as -1 with *status = 404. */
int fetch_head(struct fetch_client *c, const char *url, int64_t *size, long *status,
	       char *err, size_t errlen);
int fetch_put_file(struct fetch_client *c, const char *url, const char *path,
		   char *err, size_t errlen);
int fetch_put_buffer(struct fetch_client *c, const char *url, const void *buf, size_t len,
		     char *err, size_t errlen);

/* A body collected in memory, at most max bytes: a fetch_sink_fn ctx
 * (zero it, set max; free p). The sink refuses what would pass max. */
struct fetch_membuf {
	char *p;
	size_t len, cap, max;
};
int fetch_mem_sink(void *ctx, const void *data, size_t len);

/* Progress callback for a progress bar (the CLI): called about 4 times a
 * second during any single-request GET of this client (fetch_run with
 * n == 1), from the calling thread; total is 0 when unknown. NULL clears. */
typedef void (*fetch_progress_fn)(void *ctx, uint64_t done, uint64_t total);
void fetch_set_progress(struct fetch_client *c, fetch_progress_fn fn, void *ctx);

/* Statistics of a client (monotonic counters since creation). */
enum fetch_kind { FETCH_KIND_GET, FETCH_KIND_RANGE, FETCH_KIND_HEAD, FETCH_KIND_PUT, FETCH_KINDS };
struct fetch_stats {
	uint64_t requests[FETCH_KINDS]; /* completed requests, by kind */
	uint64_t bytes[FETCH_KINDS];    /* body bytes down (GET/RANGE), up (PUT) */
	uint64_t retries, failures, digest_mismatches;
	uint64_t lat_p50_ns, lat_p95_ns, lat_p99_ns, lat_max_ns;
};
void fetch_get_stats(struct fetch_client *c, struct fetch_stats *out);
extern const char *const fetch_kind_names[FETCH_KINDS]; /* "get", "range", ... */

/* --- helpers (pure, unit-tested) --- */

/* Delay before retry number attempt (1 = first retry): a uniformly random
 * value in [d/2, d] where d = min(max_ms, base_ms * 2^(attempt-1)); rnd is
 * a random 32-bit value. */
unsigned fetch_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms, uint32_t rnd);
/* Is this outcome worth a retry? curl_code is a CURLcode, status the HTTP
 * status (0 when there was no HTTP answer). */
bool fetch_retryable(int curl_code, long status);
/* Parse "bytes A-B/T" (T may be "*"). Returns 0 and fills the values
 * (*total = -1 for "*"), or -1 if malformed or B < A. */
int fetch_parse_content_range(const char *s, uint64_t *first, uint64_t *last, int64_t *total);
/* Hex (64 digits, either case) to 32 bytes; -1 if malformed. */
int fetch_hex_to_sha256(const char *hex, uint8_t out[FETCH_SHA256_LEN]);
void fetch_sha256_to_hex(const uint8_t d[FETCH_SHA256_LEN], char out[FETCH_SHA256_HEX]);
/* base "/" hex, or base hex when base ends with '/' (with a query, hex is
 * joined onto base's path and the query kept). -1 if it does not fit. */
int fetch_blob_url(const char *base, const uint8_t digest[FETCH_SHA256_LEN], char *out, size_t outlen);

/* --- command-line glue --- */

/* Register --insecure, --fetch-retries N, --fetch-timeout SECONDS (the
 * deadline_ms above) and
 * --fetch-parallel N for a command (call from a constructor). */
void fetch_cli_register(const char *command);
/* Fill opts from those options (defaults for absent ones). */
void fetch_opts_from_config(const struct config *cfg, struct fetch_opts *opts);

#endif
