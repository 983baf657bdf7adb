/*
 * Scatter-gather arrays (lib/iov.c): the byte range of an iovec array seen
 * as one buffer, as a virtqueue chain or a FUSE request holds it. Offsets
 * and lengths come from the guest: every function stays inside the array
 * (iov[0..n)) and says when the range is not all there.
 */
#ifndef MINIVMM_LIB_IOV_H
#define MINIVMM_LIB_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Slice [off, off + len) of iov[0..n) into out (at most max entries),
 * without copying data: out's entries point into iov's buffers. Returns
 * the number of entries (0 for len 0), or -1 if the range is not all
 * there or needs more than max entries (never more than n). */
int iov_slice(const struct iovec *iov, int n, uint64_t off, uint64_t len,
	      struct iovec *out, int max);

/* Copy up to len bytes from offset off of iov[0..n) into dst; returns the
 * bytes copied, less than len when the array ends first. */
size_t iov_copy_from(const struct iovec *iov, int n, uint64_t off, void *dst, size_t len);
/* Copy up to len bytes of src into iov[0..n) at offset off; returns the
 * bytes copied, less than len when the array ends first. */
size_t iov_copy_to(const struct iovec *iov, int n, uint64_t off, const void *src, size_t len);

#endif
