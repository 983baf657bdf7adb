/* Unit tests of the fetch client's pure parts (backoff, retry classes,
 * Content-Range, hex) and of range math and digest checks through file://
 * URLs, which need no server. Retries against real servers are in
 * tests/host/31-fetch-faults.sh. */
#include "tests/unit/unit.h"
#include "fetch/cache.h"
#include "fetch/fetch.h"
#include "fetch/url.h"
#include "lib/cli.h"
#include "lib/stats.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(backoff_grows_and_caps)
{
	ck_assert_uint_eq(fetch_backoff_ms(0, 100, 10000, 12345), 0);
	/* Retry k waits within [d/2, d], d = 100 * 2^(k-1) capped at 10 s. */
	for (unsigned k = 1; k <= 20; k++) {
		unsigned d = k > 8 ? 10000 : 100u << (k - 1);
		if (d > 10000)
			d = 10000;
		for (uint32_t r = 0; r < 2000; r += 7) {
			unsigned v = fetch_backoff_ms(k, 100, 10000, r * 2654435761u);
			ck_assert_uint_ge(v, d / 2);
			ck_assert_uint_le(v, d);
		}
	}
	ck_assert_uint_eq(fetch_backoff_ms(1, 100, 10000, 0), 50);
	ck_assert_uint_eq(fetch_backoff_ms(3, 100, 10000, 0), 200);
	/* Huge attempt numbers must not overflow into a tiny delay. */
	ck_assert_uint_ge(fetch_backoff_ms(1000, 100, 10000, 0), 5000);
}
END_TEST

START_TEST(backoff_jitter_spreads)
{
	/* Different random inputs give different delays (no lockstep). */
	unsigned seen[1001] = {0}, distinct = 0;
	for (uint32_t r = 0; r < 5000; r++) {
		unsigned v = fetch_backoff_ms(4, 100, 10000, r * 2654435761u);
		ck_assert_uint_le(v, 800);
		if (!seen[v]++)
			distinct++;
	}
	ck_assert_uint_gt(distinct, 300);
}
END_TEST

START_TEST(retry_classes)
{
	ck_assert(fetch_retryable(CURLE_OK, 500));
	ck_assert(fetch_retryable(CURLE_OK, 503));
	ck_assert(fetch_retryable(CURLE_OK, 429));
	ck_assert(!fetch_retryable(CURLE_OK, 404));
	ck_assert(!fetch_retryable(CURLE_OK, 403));
	ck_assert(!fetch_retryable(CURLE_OK, 416));
	ck_assert(!fetch_retryable(CURLE_OK, 200));
	ck_assert(fetch_retryable(CURLE_COULDNT_CONNECT, 0));
	ck_assert(fetch_retryable(CURLE_OPERATION_TIMEDOUT, 0));
	ck_assert(fetch_retryable(CURLE_PARTIAL_FILE, 200));
	ck_assert(fetch_retryable(CURLE_RECV_ERROR, 0));
	ck_assert(!fetch_retryable(CURLE_UNSUPPORTED_PROTOCOL, 0));
	ck_assert(!fetch_retryable(CURLE_URL_MALFORMAT, 0));
	ck_assert(!fetch_retryable(CURLE_PEER_FAILED_VERIFICATION, 0));
	ck_assert(!fetch_retryable(CURLE_FILE_COULDNT_READ_FILE, 0));
}
END_TEST

START_TEST(content_range_parse)
{
	uint64_t a, b;
	int64_t t;
	ck_assert_int_eq(fetch_parse_content_range(" bytes 0-99/1000\r\n", &a, &b, &t), 0);
	ck_assert_uint_eq(a, 0);
	ck_assert_uint_eq(b, 99);
	ck_assert_int_eq(t, 1000);
	ck_assert_int_eq(fetch_parse_content_range("bytes 5-5/*", &a, &b, &t), 0);
	ck_assert_int_eq(t, -1);
	ck_assert_int_eq(fetch_parse_content_range("bytes 10-5/100", &a, &b, &t), -1);
	ck_assert_int_eq(fetch_parse_content_range("bytes 0-100/100", &a, &b, &t), -1);
	ck_assert_int_eq(fetch_parse_content_range("bytes */100", &a, &b, &t), -1);
	ck_assert_int_eq(fetch_parse_content_range("items 0-1/2", &a, &b, &t), -1);
	ck_assert_int_eq(fetch_parse_content_range("bytes -1-5/9", &a, &b, &t), -1);
	ck_assert_int_eq(fetch_parse_content_range("bytes 0-1/2 junk", &a, &b, &t), -1);
	ck_assert_int_eq(fetch_parse_content_range("bytes 99999999999999999999-1/2", &a, &b, &t), -1);
	ck_assert_int_eq(fetch_parse_content_range("bytes 0-18446744073709551615/*", &a, &b, &t), 0);
	ck_assert_int_eq(fetch_parse_content_range("bytes 0-1/18446744073709551615", &a, &b, &t), -1);
}
END_TEST

START_TEST(hex_and_urls)
{
	uint8_t d[FETCH_SHA256_LEN], e[FETCH_SHA256_LEN];
	char hex[FETCH_SHA256_HEX], url[256];
	const char *h = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
	ck_assert_int_eq(fetch_hex_to_sha256(h, d), 0);
	fetch_sha256_to_hex(d, hex);
	ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ck_assert_int_eq(fetch_hex_to_sha256(hex, e), 0);
	ck_assert_mem_eq(d, e, FETCH_SHA256_LEN);
	ck_assert_int_eq(fetch_hex_to_sha256("e3b0", d), -1);
	ck_assert_int_eq(fetch_hex_to_sha256("g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", d), -1);
	ck_assert_int_eq(fetch_hex_to_sha256(NULL, d), -1);
	ck_assert_int_eq(fetch_blob_url("http://h/blobs", e, url, sizeof(url)), 0);
	ck_assert_str_eq(url, "http://h/blobs/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ck_assert_int_eq(fetch_blob_url("http://h/blobs/", e, url, sizeof(url)), 0);
	ck_assert_str_eq(url, "http://h/blobs/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ck_assert_int_eq(fetch_blob_url("http://h/blobs", e, url, 40), -1);
}
END_TEST

/* --- through file:// --- */

#define DIR_TEMPLATE "/tmp/minivmm-fetch-XXXXXX"
static char dir[sizeof(DIR_TEMPLATE)];
static char obj_url[300];
static uint8_t obj[100000];

static void setup(void)
{
	memcpy(dir, DIR_TEMPLATE, sizeof(DIR_TEMPLATE));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(obj); i++)
		obj[i] = (uint8_t)(i * 7 + i / 251);
	char path[256];
	snprintf(path, sizeof(path), "%s/obj", dir);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(obj, 1, sizeof(obj), f), sizeof(obj));
	fclose(f);
	snprintf(obj_url, sizeof(obj_url), "file://%s", path);
}

static void teardown(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

struct buf {
	uint8_t data[200000];
	size_t len;
	size_t abort_after;
};

static int sink_buf(void *ctx, const void *p, size_t n)
{
	struct buf *b = ctx;
	if (b->abort_after && b->len + n > b->abort_after)
		return -1;
	ck_assert_uint_le(b->len + n, sizeof(b->data));
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static struct fetch_client *client(void)
{
	char err[256];
	struct fetch_opts o = {.no_retries = true, .allow_file = true};
	struct fetch_client *c = fetch_client_create(&o, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	return c;
}

static void sha(const void *p, size_t n, uint8_t out[FETCH_SHA256_LEN])
{
	unsigned l;
	EVP_Digest(p, n, out, &l, EVP_sha256(), NULL);
}

START_TEST(file_ranges)
{
	struct fetch_client *c = client();
	static struct buf b;
	char err[FETCH_ERR_LEN];
	static const uint64_t cases[][2] = {{0, 0}, {0, 1}, {1, 1}, {99999, 1}, {4096, 65536}, {50000, 0}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		b.len = 0;
		uint64_t off = cases[i][0], len = cases[i][1];
		ck_assert_msg(fetch_get_range(c, obj_url, off, len, NULL, sink_buf, &b, err, sizeof(err)) == 0,
			      "%s", err);
		uint64_t want = len ? len : sizeof(obj) - off;
		ck_assert_uint_eq(b.len, want);
		ck_assert_mem_eq(b.data, obj + off, want);
	}
	struct fetch_stats st;
	fetch_get_stats(c, &st);
	ck_assert_uint_eq(st.requests[FETCH_KIND_GET], 1);
	ck_assert_uint_eq(st.requests[FETCH_KIND_RANGE], 5);
	ck_assert_uint_eq(st.bytes[FETCH_KIND_GET], sizeof(obj));
	fetch_client_destroy(c);
}
END_TEST

START_TEST(file_digest_checked)
{
	struct fetch_client *c = client();
	static struct buf b;
	char err[FETCH_ERR_LEN];
	uint8_t good[FETCH_SHA256_LEN], part[FETCH_SHA256_LEN];
	sha(obj, sizeof(obj), good);
	sha(obj + 10, 100, part);
	ck_assert_int_eq(fetch_get_range(c, obj_url, 0, 0, good, sink_buf, &b, err, sizeof(err)), 0);
	b.len = 0;
	ck_assert_int_eq(fetch_get_range(c, obj_url, 10, 100, part, sink_buf, &b, err, sizeof(err)), 0);
	b.len = 0;
	ck_assert_int_eq(fetch_get_range(c, obj_url, 11, 100, part, sink_buf, &b, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "sha256 mismatch"));
	ck_assert_ptr_nonnull(strstr(err, obj_url)); /* names the object */
	struct fetch_stats st;
	fetch_get_stats(c, &st);
	ck_assert_uint_eq(st.digest_mismatches, 1);
	ck_assert_uint_eq(st.failures, 1);
	fetch_client_destroy(c);
}
END_TEST

START_TEST(file_errors)
{
	struct fetch_client *c = client();
	static struct buf b;
	char err[FETCH_ERR_LEN], url[400];
	snprintf(url, sizeof(url), "file://%s/none", dir);
	ck_assert_int_eq(fetch_get_range(c, url, 0, 0, NULL, sink_buf, &b, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "/none"));
	/* A sink may stop a transfer. */
	b.len = 0;
	b.abort_after = 10;
	ck_assert_int_eq(fetch_get_range(c, obj_url, 0, 0, NULL, sink_buf, &b, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "aborted by sink"));
	/* Only http, https and file. */
	ck_assert_int_eq(fetch_get_range(c, "ftp://127.0.0.1/x", 0, 0, NULL, NULL, NULL, err, sizeof(err)), -1);
	ck_assert_int_eq(fetch_get_range(c, "gopher://127.0.0.1/x", 0, 0, NULL, NULL, NULL, err, sizeof(err)), -1);
	fetch_client_destroy(c);
}
END_TEST

START_TEST(file_put_and_many)
{
	struct fetch_client *c = client();
	char err[FETCH_ERR_LEN], url[400], path[300];
	snprintf(url, sizeof(url), "file://%s/put", dir);
	snprintf(path, sizeof(path), "%s/put", dir);
	ck_assert_msg(fetch_put_buffer(c, url, obj, 5000, err, sizeof(err)) == 0, "%s", err);
	struct fetch_req r[40];
	static struct buf bufs[40];
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 40; i++) {
		bufs[i].len = 0;
		r[i] = (struct fetch_req){.url = i % 2 ? url : obj_url, .method = FETCH_GET,
					  .offset = (uint64_t)i * 100, .length = 100,
					  .sink = sink_buf, .sink_ctx = &bufs[i]};
	}
	ck_assert_uint_eq(fetch_run(c, r, 40), 0);
	for (int i = 0; i < 40; i++) {
		ck_assert_int_eq(r[i].result, 0);
		ck_assert_uint_eq(bufs[i].len, 100);
		ck_assert_mem_eq(bufs[i].data, obj + i * 100, 100);
	}
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	static uint8_t back[6000];
	ck_assert_uint_eq(fread(back, 1, sizeof(back), f), 5000);
	fclose(f);
	ck_assert_mem_eq(back, obj, 5000);
	fetch_client_destroy(c);
}
END_TEST

START_TEST(stats_json)
{
	struct fetch_client *c = client();
	static struct buf b;
	char err[FETCH_ERR_LEN];
	for (int i = 0; i < 10; i++) {
		b.len = 0;
		ck_assert_int_eq(fetch_get_range(c, obj_url, 0, 1000, NULL, sink_buf, &b, err, sizeof(err)), 0);
	}
	stats_unregister_all();
	ck_assert_int_eq(fetch_stats_register(c, NULL), 0);
	json_t *root = json_object();
	stats_fill_all(root);
	json_t *f = json_object_get(root, "fetch");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(f, "requests"), "range")), 10);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(f, "bytes"), "range")), 10000);
	json_t *lat = json_object_get(f, "latency_ns");
	ck_assert_int_gt(json_integer_value(json_object_get(lat, "p50")), 0);
	ck_assert_int_ge(json_integer_value(json_object_get(lat, "p99")),
			 json_integer_value(json_object_get(lat, "p50")));
	ck_assert_ptr_null(json_object_get(f, "cache"));
	json_decref(root);
	stats_unregister_all();
	fetch_client_destroy(c);
}
END_TEST


/* The blobs rule (fetch/url.h): where a manifest may send us for blobs. */
static int resolve(const char *img, const char *blobs, const char *allow, char *out)
{
	char err[600];
	const char *a[1] = {allow};
	out[0] = '\0';
	int r = url_resolve_blobs(img, blobs, a, allow ? 1 : 0, out, 1024, err, sizeof(err));
	if (r < 0)
		snprintf(out, 1024, "ERR %s", err);
	return r;
}

START_TEST(blobs_origin_rule)
{
	char out[1024];
	/* Relative: under the image, its query kept. */
	ck_assert_int_eq(resolve("http://h.example:8080/img", "blobs/sha256/", NULL, out), 0);
	ck_assert_str_eq(out, "http://h.example:8080/img/blobs/sha256/");
	ck_assert_int_eq(resolve("https://h/img/?t=1", "blobs/sha256", NULL, out), 0);
	ck_assert_str_eq(out, "https://h/img/blobs/sha256/?t=1");
	/* A '#' or '?' in a relative location stays in the path. */
	ck_assert_int_eq(resolve("http://h/img", "b#x/", NULL, out), 0);
	ck_assert_str_eq(out, "http://h/img/b%23x/");
	/* file:// from a remote manifest: never. */
	ck_assert_int_eq(resolve("http://h/img", "file:///etc/hostname#", NULL, out), -1);
	ck_assert_ptr_nonnull(strstr(out, "file://"));
	ck_assert_ptr_nonnull(strstr(out, "may not read local files"));
	ck_assert_int_eq(resolve("https://h/img", "FILE:///root/.ssh/", "https://h", out), -1);
	/* Same origin by value, not by prefix. */
	ck_assert_int_eq(resolve("http://h/img", "http://H:80/other/", NULL, out), 0);
	ck_assert_str_eq(out, "http://H:80/other/");
	ck_assert_int_eq(resolve("http://h/img", "http://h.evil/b/", NULL, out), -1);
	ck_assert_int_eq(resolve("http://h/img", "http://h@evil/b/", NULL, out), -1);
	ck_assert_ptr_nonnull(strstr(out, "--allow-blob-origin http://evil:80"));
	ck_assert_int_eq(resolve("http://h/img", "https://h/b/", NULL, out), -1); /* scheme differs */
	ck_assert_int_eq(resolve("http://h:8080/img", "http://h/b/", NULL, out), -1); /* port */
	/* Another origin the user allowed. */
	ck_assert_int_eq(resolve("http://h/img", "https://cdn.example/b", "https://cdn.example", out), 0);
	ck_assert_str_eq(out, "https://cdn.example/b/");
	ck_assert_int_eq(resolve("http://h/img", "https://cdn.example:444/b", "https://cdn.example", out), -1);
	/* Other schemes: never. */
	ck_assert_int_eq(resolve("http://h/img", "ftp://h/b/", "ftp://h", out), -1);
	ck_assert_int_eq(resolve("http://h/img", "dict://h/b/", NULL, out), -1);
	/* A local image: relative, local files, or an allowed origin only. */
	ck_assert_int_eq(resolve("file:///srv/img", "blobs/sha256/", NULL, out), 0);
	ck_assert_str_eq(out, "file:///srv/img/blobs/sha256/");
	ck_assert_int_eq(resolve("file:///srv/img", "file:///srv/other/", NULL, out), 0);
	ck_assert_int_eq(resolve("file:///srv/img", "http://h/b/", NULL, out), -1);
	ck_assert_int_eq(resolve("file:///srv/img", "http://h/b/", "http://h:80/", out), 0);
	/* Control characters in a refused location are escaped. */
	ck_assert_int_eq(resolve("http://h/img", "file:///x\033[2J\n", NULL, out), -1);
	ck_assert_ptr_null(strchr(out, '\033'));
	ck_assert_ptr_null(strchr(out, '\n'));
}
END_TEST

/* Write-back's URLs: the image's base from its manifest URL, and a blobs
 * URL made relative again, queries kept where a signed URL needs them. */
START_TEST(parent_and_relative)
{
	char out[1024], err[256];
	ck_assert_int_eq(url_parent("http://h/img/manifest.json?t=1", out, sizeof(out), err,
				    sizeof(err)), 0);
	ck_assert_str_eq(out, "http://h/img/?t=1");
	ck_assert_int_eq(url_parent("http://h:81/manifest.json", out, sizeof(out), err, sizeof(err)), 0);
	ck_assert_str_eq(out, "http://h:81/");
	ck_assert_int_eq(url_parent("not a url", out, sizeof(out), err, sizeof(err)), -1);
	ck_assert_int_eq(url_relative("http://h/img/", "http://h:80/img/blobs/sha256/", out,
				      sizeof(out)), 0);
	ck_assert_str_eq(out, "blobs/sha256/");
	ck_assert_int_eq(url_relative("http://h/img/?t=1", "http://h/img/b%20x/?t=1", out,
				      sizeof(out)), 0);
	ck_assert_str_eq(out, "b x/");
	ck_assert_int_eq(url_relative("http://h/img/", "http://h/other/blobs/", out, sizeof(out)), -1);
	ck_assert_int_eq(url_relative("http://h/img/", "http://g/img/blobs/", out, sizeof(out)), -1);
	ck_assert_int_eq(url_relative("http://h/img/", "http://h/img/", out, sizeof(out)), -1);
	ck_assert_int_eq(url_file_path("file:///srv/a%20b/manifest.json", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/srv/a b/manifest.json");
	ck_assert_int_eq(url_file_path("http://h/x", out, sizeof(out)), -1);
}
END_TEST

START_TEST(origins_and_escapes)
{
	char o[URL_ORIGIN_MAX], e[64];
	ck_assert_int_eq(url_origin("HTTPS://Example.COM/x?y", o, sizeof(o)), 0);
	ck_assert_str_eq(o, "https://example.com:443");
	ck_assert_int_eq(url_origin("file:///etc/passwd", o, sizeof(o)), 0);
	ck_assert_str_eq(o, "file://");
	ck_assert_int_eq(url_origin("blobs/sha256/", o, sizeof(o)), -1);
	ck_assert(url_same_origin("http://a/x", "http://a:80/y"));
	ck_assert(!url_same_origin("http://a/x", "http://a.b/x"));
	ck_assert_int_eq(url_scheme("gopher://x/"), URL_OTHER);
	ck_assert_int_eq(url_scheme("relative/path"), URL_NOT_URL);
	ck_assert_str_eq(url_escape_text("a\033b\nc\\", e, sizeof(e)), "a\\x1bb\\x0ac\\x5c");
	ck_assert_str_eq(url_escape_text("abcdef", e, 4), "abc");
	ck_assert_int_eq(url_validate_origin_option("https://cdn:8443", e, sizeof(e)), 0);
	ck_assert_int_eq(url_validate_origin_option("file:///", e, sizeof(e)), -1);
	/* A blob URL under a signed base keeps the query at the end. */
	uint8_t d[FETCH_SHA256_LEN] = {0xab};
	char hex[FETCH_SHA256_HEX], u[300], want[300];
	fetch_sha256_to_hex(d, hex);
	ck_assert_int_eq(fetch_blob_url("https://h/b/?X-Sig=1", d, u, sizeof(u)), 0);
	snprintf(want, sizeof(want), "https://h/b/%s?X-Sig=1", hex);
	ck_assert_str_eq(u, want);
}
END_TEST

/* A client not made for local images reads no file:// URL. */
START_TEST(file_refused_by_default)
{
	char err[FETCH_ERR_LEN];
	struct fetch_opts o = {.no_retries = true};
	struct fetch_client *c = fetch_client_create(&o, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	static struct buf b;
	b.len = 0;
	ck_assert_int_eq(fetch_get_range(c, obj_url, 0, 10, NULL, sink_buf, &b, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "file"));
	ck_assert_uint_eq(b.len, 0);
	fetch_client_destroy(c);
}
END_TEST

/* --fetch-timeout: absent is the default, 0 is no deadline (not 60 s). */
START_TEST(fetch_timeout_option)
{
	struct fetch_opts o;
	struct config cfg = {0};
	fetch_opts_from_config(&cfg, &o);
	ck_assert(!o.no_deadline);
	ck_assert_uint_eq(o.deadline_ms, 0); /* the client's default, 60 s */
	ck_assert(!o.allow_file);
	config_add(&cfg, "fetch-timeout", "0");
	fetch_opts_from_config(&cfg, &o);
	ck_assert(o.no_deadline);
	config_free(&cfg);
	memset(&cfg, 0, sizeof(cfg));
	config_add(&cfg, "fetch-timeout", "7");
	fetch_opts_from_config(&cfg, &o);
	ck_assert(!o.no_deadline);
	ck_assert_uint_eq(o.deadline_ms, 7000);
	config_free(&cfg);
}
END_TEST

static Suite *fetch_suite(void)
{
	Suite *s = suite_create("fetch");
	TCase *t = tcase_create("pure");
	tcase_add_test(t, backoff_grows_and_caps);
	tcase_add_test(t, backoff_jitter_spreads);
	tcase_add_test(t, retry_classes);
	tcase_add_test(t, content_range_parse);
	tcase_add_test(t, hex_and_urls);
	tcase_add_test(t, blobs_origin_rule);
	tcase_add_test(t, parent_and_relative);
	tcase_add_test(t, origins_and_escapes);
	tcase_add_test(t, fetch_timeout_option);
	suite_add_tcase(s, t);
	t = tcase_create("file");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, file_ranges);
	tcase_add_test(t, file_digest_checked);
	tcase_add_test(t, file_errors);
	tcase_add_test(t, file_put_and_many);
	tcase_add_test(t, stats_json);
	tcase_add_test(t, file_refused_by_default);
	suite_add_tcase(s, t);
	return s;
}
UNIT_SUITE(fetch_suite)
