/* S3 request signing (fetch/s3.h). */
#include "fetch/s3.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fetch_s3_from_env(struct fetch_s3 *s3)
{
	memset(s3, 0, sizeof(*s3));
	const char *key = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *region = getenv("AWS_REGION");
	if (!region || !*region)
		region = getenv("AWS_DEFAULT_REGION");
	if (!key || !*key || !secret || !*secret || !region || !*region)
		return;
	snprintf(s3->sigv4, sizeof(s3->sigv4), "aws:amz:%s:s3", region);
	s3->user = strdup(key);
	s3->pass = strdup(secret);
	/* S3 wants the payload's hash in a header; blobs are verified end to
	 * end by their own digest, so the payload is left unsigned (streaming
	 * a PUT would otherwise need two reads). libcurl signs every x-amz-*
	 * header it is given. */
	s3->hdrs = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	const char *token = getenv("AWS_SESSION_TOKEN");
	if (token && *token) {
		char *h = NULL;
		if (asprintf(&h, "x-amz-security-token: %s", token) > 0) {
			s3->hdrs = curl_slist_append(s3->hdrs, h);
			free(h);
		}
	}
	log_debug("fetch: signing requests with SigV4 (region %s)", region);
}

void fetch_s3_apply(const struct fetch_s3 *s3, CURL *e)
{
	if (!s3->sigv4[0])
		return;
	curl_easy_setopt(e, CURLOPT_AWS_SIGV4, s3->sigv4);
	curl_easy_setopt(e, CURLOPT_USERNAME, s3->user);
	curl_easy_setopt(e, CURLOPT_PASSWORD, s3->pass);
	if (s3->hdrs)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, s3->hdrs);
}

void fetch_s3_free(struct fetch_s3 *s3)
{
	curl_slist_free_all(s3->hdrs);
	free(s3->user);
	free(s3->pass);
	memset(s3, 0, sizeof(*s3));
}
