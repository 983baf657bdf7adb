/* Scatter-gather arrays (lib/iov.h). */
#include "lib/iov.h"

#include <stdbool.h>
#include <string.h>

int iov_slice(const struct iovec *iov, int n, uint64_t off, uint64_t len,
	      struct iovec *out, int max)
{
	int k = 0;
	for (int i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		uint64_t chunk = iov[i].iov_len - off;
		if (chunk > len)
			chunk = len;
		if (k == max)
			return -1;
		out[k].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[k].iov_len = chunk;
		k++;
		len -= chunk;
		off = 0;
	}
	return len ? -1 : k;
}

/* The walk both copies share; to_iov says which way the bytes go. */
static size_t iov_copy(const struct iovec *iov, int n, uint64_t off, uint8_t *buf,
		       size_t len, bool to_iov)
{
	size_t done = 0;
	for (int i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t chunk = iov[i].iov_len - (size_t)off;
		if (chunk > len - done)
			chunk = len - done;
		if (to_iov)
			memcpy((uint8_t *)iov[i].iov_base + off, buf + done, chunk);
		else
			memcpy(buf + done, (const uint8_t *)iov[i].iov_base + off, chunk);
		done += chunk;
		off = 0;
	}
	return done;
}

size_t iov_copy_from(const struct iovec *iov, int n, uint64_t off, void *dst, size_t len)
{
	return iov_copy(iov, n, off, dst, len, false);
}

size_t iov_copy_to(const struct iovec *iov, int n, uint64_t off, const void *src, size_t len)
{
	return iov_copy(iov, n, off, (uint8_t *)src, len, true);
}
