/*
 * S3 request signing for the fetch client (fetch/s3.c, docs/storage.md
 * "S3 (SigV4)"): when AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set
 * together with AWS_REGION (or AWS_DEFAULT_REGION), every http(s) request
 * is signed by libcurl (CURLOPT_AWS_SIGV4, service "s3"), with
 * AWS_SESSION_TOKEN sent when set. The payload is not signed: blobs carry
 * their own digest.
 */
#ifndef MINIVMM_FETCH_S3_H
#define MINIVMM_FETCH_S3_H

#include <curl/curl.h>
#include <stdbool.h>

struct fetch_s3 {
	char sigv4[160];          /* "aws:amz:REGION:s3"; "" when not signing */
	char *user, *pass;        /* the access key and its secret */
	struct curl_slist *hdrs;  /* x-amz-* headers libcurl signs too */
};

/* Read the credentials from the environment into s3 (zeroed first);
 * without all three, s3 signs nothing. */
void fetch_s3_from_env(struct fetch_s3 *s3);
/* Sign the requests of handle e (an http or https URL) when s3 has
 * credentials. */
void fetch_s3_apply(const struct fetch_s3 *s3, CURL *e);
void fetch_s3_free(struct fetch_s3 *s3);

#endif
