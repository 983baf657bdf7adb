/*
 * URLs on libcurl's parser (fetch/url.h).
 */
#include "fetch/url.h"
#include "lib/cli.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_MAX 8192

/* h parsed from url (any scheme), or NULL. */
static CURLU *url_parse(const char *url)
{
	CURLU *h = curl_url();
	if (!h)
		return NULL;
	if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		curl_url_cleanup(h);
		return NULL;
	}
	return h;
}

bool url_is_absolute(const char *s)
{
	const char *p = s;
	if (!isalpha((unsigned char)*p))
		return false;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return strncmp(p, "://", 3) == 0;
}

static enum url_scheme scheme_of(CURLU *h)
{
	char *s = NULL;
	enum url_scheme r = URL_OTHER;
	if (curl_url_get(h, CURLUPART_SCHEME, &s, 0) != CURLUE_OK || !s)
		return URL_NOT_URL;
	if (!strcasecmp(s, "http"))
		r = URL_HTTP;
	else if (!strcasecmp(s, "https"))
		r = URL_HTTPS;
	else if (!strcasecmp(s, "file"))
		r = URL_FILE;
	curl_free(s);
	return r;
}

enum url_scheme url_scheme(const char *url)
{
	if (!url_is_absolute(url))
		return URL_NOT_URL;
	CURLU *h = url_parse(url);
	if (!h)
		return URL_NOT_URL;
	enum url_scheme r = scheme_of(h);
	curl_url_cleanup(h);
	return r;
}

int url_origin(const char *url, char *out, size_t outlen)
{
	if (!url_is_absolute(url))
		return -1;
	CURLU *h = url_parse(url);
	if (!h)
		return -1;
	int rc = -1;
	char *host = NULL, *port = NULL;
	enum url_scheme s = scheme_of(h);
	if (s == URL_FILE) {
		rc = snprintf(out, outlen, "file://") < (int)outlen ? 0 : -1;
	} else if ((s == URL_HTTP || s == URL_HTTPS) &&
		   curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		   curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		for (char *p = host; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		int n = snprintf(out, outlen, "%s://%s:%s", s == URL_HTTP ? "http" : "https", host, port);
		rc = n > 0 && (size_t)n < outlen ? 0 : -1;
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(h);
	return rc;
}

bool url_same_origin(const char *a, const char *b)
{
	char oa[URL_ORIGIN_MAX], ob[URL_ORIGIN_MAX];
	return url_origin(a, oa, sizeof(oa)) == 0 && url_origin(b, ob, sizeof(ob)) == 0 &&
	       strcmp(oa, ob) == 0;
}

/* Percent-encode what a path segment may not hold as is: a '?' or '#' in
 * a manifest's relative path must stay part of the path. */
static int encode_path(const char *in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		bool plain = isalnum(*p) || strchr("/-._~!$&'()*+,;=:@", *p);
		if (o + (plain ? 1 : 3) >= outlen)
			return -1;
		if (plain) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return 0;
}

char *url_escape_text(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (!outlen)
		return out;
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		bool plain = *p >= 0x20 && *p != 0x7f && *p != '\\';
		if (o + (plain ? 1 : 4) >= outlen)
			break;
		if (plain) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return out;
}

static bool origin_allowed(const char *origin, const char *const *allowed, size_t n)
{
	char o[URL_ORIGIN_MAX];
	for (size_t i = 0; i < n; i++)
		if (url_origin(allowed[i], o, sizeof(o)) == 0 && strcmp(o, origin) == 0)
			return true;
	return false;
}

/* How a URL's path is edited (url_edit_path): the path (as libcurl keeps
 * it, percent-encoded) into buf, or -1 if it cannot be. */
typedef int (*path_edit_fn)(const char *path, const void *ctx, char *buf, size_t buflen);

/* out = url with its path edited by fn; scheme, host, port and query kept. */
static int url_edit_path(const char *url, path_edit_fn fn, const void *ctx, char *out,
			 size_t outlen, char *err, size_t errlen)
{
	CURLU *h = url_parse(url);
	char *path = NULL, *result = NULL;
	char buf[URL_MAX];
	int rc = -1;
	if (!h || curl_url_get(h, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		snprintf(err, errlen, "'%.300s' is not a URL", url);
		goto out;
	}
	if (fn(path, ctx, buf, sizeof(buf)) < 0 ||
	    curl_url_set(h, CURLUPART_PATH, buf, 0) != CURLUE_OK) {
		snprintf(err, errlen, "'%.300s': no such path", url);
		goto out;
	}
	if (curl_url_get(h, CURLUPART_URL, &result, 0) != CURLUE_OK || strlen(result) >= outlen) {
		snprintf(err, errlen, "URL too long");
		goto out;
	}
	memcpy(out, result, strlen(result) + 1);
	rc = 0;
out:
	curl_free(path);
	curl_free(result);
	curl_url_cleanup(h);
	return rc;
}

/* ctx: the relative path to append, already percent-encoded ("": just a
 * '/' at the end of the path). */
static int path_append(const char *path, const void *ctx, char *buf, size_t buflen)
{
	size_t pl = strlen(path);
	int n = snprintf(buf, buflen, "%s%s%s", path, pl && path[pl - 1] == '/' ? "" : "/",
			 (const char *)ctx);
	return n < 0 || (size_t)n >= buflen ? -1 : 0;
}

static int path_parent(const char *path, const void *ctx, char *buf, size_t buflen)
{
	(void)ctx;
	const char *slash = strrchr(path, '/');
	size_t keep = slash ? (size_t)(slash - path) + 1 : 0;
	if (!keep || keep >= buflen)
		return -1;
	memcpy(buf, path, keep);
	buf[keep] = '\0';
	return 0;
}

/* out = s with a '/' at the end of its path (before any query). */
static int with_slash(const char *s, char *out, size_t outlen, char *err, size_t errlen)
{
	return url_edit_path(s, path_append, "", out, outlen, err, errlen);
}

int url_parent(const char *url, char *out, size_t outlen, char *err, size_t errlen)
{
	return url_edit_path(url, path_parent, NULL, out, outlen, err, errlen);
}

int url_join(const char *base, const char *rel, char *out, size_t outlen, char *err, size_t errlen)
{
	char enc[URL_MAX];
	if (encode_path(rel, enc, sizeof(enc)) < 0) {
		snprintf(err, errlen, "URL too long");
		return -1;
	}
	return url_edit_path(base, path_append, enc, out, outlen, err, errlen);
}

int url_file_path(const char *url, char *out, size_t outlen)
{
	CURLU *h = url_parse(url);
	char *path = NULL;
	int rc = -1;
	if (h && scheme_of(h) == URL_FILE &&
	    curl_url_get(h, CURLUPART_PATH, &path, CURLU_URLDECODE) == CURLUE_OK &&
	    strlen(path) < outlen && !memchr(path, '\0', strlen(path))) {
		memcpy(out, path, strlen(path) + 1);
		rc = 0;
	}
	curl_free(path);
	curl_url_cleanup(h);
	return rc;
}

int url_relative(const char *base, const char *url, char *out, size_t outlen)
{
	CURLU *b = url_parse(base), *u = url_parse(url);
	char *bp = NULL, *up = NULL;
	char bo[URL_ORIGIN_MAX], uo[URL_ORIGIN_MAX];
	int rc = -1;
	if (!b || !u || url_origin(base, bo, sizeof(bo)) < 0 || url_origin(url, uo, sizeof(uo)) < 0 ||
	    strcmp(bo, uo) != 0 || curl_url_get(b, CURLUPART_PATH, &bp, CURLU_URLDECODE) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &up, CURLU_URLDECODE) != CURLUE_OK)
		goto out;
	size_t bl = strlen(bp);
	if (!bl || bp[bl - 1] != '/' || strncmp(up, bp, bl) != 0 || !up[bl] ||
	    strlen(up + bl) >= outlen)
		goto out;
	memcpy(out, up + bl, strlen(up + bl) + 1);
	rc = 0;
out:
	curl_free(bp);
	curl_free(up);
	curl_url_cleanup(b);
	curl_url_cleanup(u);
	return rc;
}

int url_resolve_blobs(const char *image_url, const char *blobs, const char *const *allowed,
		      size_t n_allowed, char *out, size_t outlen, char *err, size_t errlen)
{
	char shown[300], img_origin[URL_ORIGIN_MAX], blob_origin[URL_ORIGIN_MAX];
	url_escape_text(blobs, shown, sizeof(shown));
	enum url_scheme is = url_scheme(image_url);
	if (is != URL_HTTP && is != URL_HTTPS && is != URL_FILE) {
		snprintf(err, errlen, "image location '%.300s' is not an http, https or file URL",
			 image_url);
		return -1;
	}
	if (!blobs || !*blobs) {
		snprintf(err, errlen, "the manifest names no blobs location");
		return -1;
	}
	if (!url_is_absolute(blobs)) {
		char joined[URL_MAX];
		if (blobs[0] == '/' || url_join(image_url, blobs, joined, sizeof(joined), err, errlen) < 0) {
			if (blobs[0] == '/')
				snprintf(err, errlen, "blobs location '%s' is an absolute path", shown);
			return -1;
		}
		return with_slash(joined, out, outlen, err, errlen);
	}
	enum url_scheme bs = url_scheme(blobs);
	if (bs == URL_FILE) {
		if (is != URL_FILE) {
			snprintf(err, errlen, "the manifest of a remote image names blobs at '%s': a "
				 "manifest from http(s) may not read local files (file:// is only for "
				 "images opened from the local filesystem)", shown);
			return -1;
		}
		return with_slash(blobs, out, outlen, err, errlen);
	}
	if (bs != URL_HTTP && bs != URL_HTTPS) {
		snprintf(err, errlen, "blobs location '%s' is not an http, https or file URL", shown);
		return -1;
	}
	if (url_origin(blobs, blob_origin, sizeof(blob_origin)) < 0) {
		snprintf(err, errlen, "blobs location '%s' is not a valid URL", shown);
		return -1;
	}
	bool same = is != URL_FILE && url_origin(image_url, img_origin, sizeof(img_origin)) == 0 &&
		    strcmp(img_origin, blob_origin) == 0;
	if (!same && !origin_allowed(blob_origin, allowed, n_allowed)) {
		char bo[URL_ORIGIN_MAX];
		url_escape_text(blob_origin, bo, sizeof(bo));
		snprintf(err, errlen, "the manifest names blobs at '%s', outside the image's origin; "
			 "blobs live with the image unless you allow that origin "
			 "(--allow-blob-origin %s)", shown, bo);
		return -1;
	}
	return with_slash(blobs, out, outlen, err, errlen);
}

int url_validate_origin_option(const char *value, char *err, size_t errlen)
{
	char o[URL_ORIGIN_MAX];
	enum url_scheme s = url_scheme(value);
	if ((s != URL_HTTP && s != URL_HTTPS) || url_origin(value, o, sizeof(o)) < 0) {
		snprintf(err, errlen, "'%.300s' is not an http(s) origin such as https://host:port",
			 value);
		return -1;
	}
	return 0;
}

size_t url_allowed_origins(const struct config *cfg, const char **out, size_t max)
{
	return cfg ? config_get_all(cfg, URL_ALLOW_ORIGIN_OPTION, out, max) : 0;
}
