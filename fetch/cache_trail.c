/*
 * The cache's trailing hash: SHA-256 of a large download on a second
 * thread, which reads back from the page cache what the network thread
 * has written so far, so hashing overlaps receiving instead of adding to
 * it (contract in cache_priv.h).
 */
#include "fetch/cache_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *trail_main(void *arg)
{
	struct trail *t = arg;
	char *buf = malloc(HASH_BUF);
	if (!buf)
		t->failed = true;
	while (buf) {
		pthread_mutex_lock(&t->m);
		while (t->hashed == t->avail && !t->done)
			pthread_cond_wait(&t->cv, &t->m);
		uint64_t upto = t->avail;
		bool done = t->done;
		pthread_mutex_unlock(&t->m);
		while (t->hashed < upto) {
			size_t want = upto - t->hashed < HASH_BUF ? (size_t)(upto - t->hashed) : HASH_BUF;
			ssize_t n = pread(t->fd, buf, want, (off_t)t->hashed);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				t->failed = true;
				goto out;
			}
			EVP_DigestUpdate(t->md, buf, (size_t)n);
			pthread_mutex_lock(&t->m);
			t->hashed += (uint64_t)n;
			pthread_mutex_unlock(&t->m);
		}
		if (done)
			break;
	}
out:
	free(buf);
	return NULL;
}

int cache_trail_start(struct trail *t, int fd)
{
	memset(t, 0, sizeof(*t));
	t->fd = fd;
	t->md = EVP_MD_CTX_new();
	if (!t->md || EVP_DigestInit_ex(t->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(t->md);
		return -1;
	}
	pthread_mutex_init(&t->m, NULL);
	pthread_cond_init(&t->cv, NULL);
	if (pthread_create(&t->th, NULL, trail_main, t) != 0) {
		pthread_mutex_destroy(&t->m);
		pthread_cond_destroy(&t->cv);
		EVP_MD_CTX_free(t->md);
		return -1;
	}
	return 0;
}

void cache_trail_feed(struct trail *t, uint64_t avail)
{
	pthread_mutex_lock(&t->m);
	t->avail = avail;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->m);
}

/* Wait for the hasher; 0 with the digest, -1 if it could not read. */
int cache_trail_finish(struct trail *t, uint8_t out[FETCH_SHA256_LEN])
{
	pthread_mutex_lock(&t->m);
	t->done = true;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->m);
	pthread_join(t->th, NULL);
	unsigned dl = 0;
	int rc = !t->failed && t->hashed == t->avail && EVP_DigestFinal_ex(t->md, out, &dl) == 1 &&
			 dl == FETCH_SHA256_LEN ? 0 : -1;
	EVP_MD_CTX_free(t->md);
	pthread_mutex_destroy(&t->m);
	pthread_cond_destroy(&t->cv);
	return rc;
}
