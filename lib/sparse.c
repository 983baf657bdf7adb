/* lib/sparse.h */
#include "lib/sparse.h"
#include "lib/io.h"

#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

bool sparse_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	/* Word at a time where aligned; the tail byte by byte. */
	while (len && ((uintptr_t)p & (sizeof(uint64_t) - 1)))
		if (len--, *p++)
			return false;
	for (; len >= sizeof(uint64_t); p += sizeof(uint64_t), len -= sizeof(uint64_t)) {
		uint64_t w;
		memcpy(&w, p, sizeof(w));
		if (w)
			return false;
	}
	while (len)
		if (len--, *p++)
			return false;
	return true;
}

size_t sparse_run(const void *buf, size_t len, bool *zero)
{
	const unsigned char *p = buf;
	size_t first = len < SPARSE_BLOCK ? len : SPARSE_BLOCK;
	*zero = sparse_is_zero(p, first);
	size_t run = first;
	while (run < len) {
		size_t n = len - run < SPARSE_BLOCK ? len - run : SPARSE_BLOCK;
		if (sparse_is_zero(p + run, n) != *zero)
			break;
		run += n;
	}
	return run;
}

int sparse_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	const unsigned char *p = buf;
	while (len) {
		bool zero;
		size_t run = sparse_run(p, len, &zero);
		if (!zero && pwrite_all(fd, p, run, off) < 0)
			return -1;
		p += run, off += (off_t)run, len -= run;
	}
	return 0;
}

/* 1 MiB: large reads, on the heap (a thread-local megabyte would be
 * charged to every thread, vCPU threads with small stacks included). */
#define SPARSE_COPY_BUF (1u << 20)

int sparse_copy(int in, int out, uint64_t size, uint64_t *data_bytes)
{
	char *buf = malloc(SPARSE_COPY_BUF);
	if (!buf)
		return -1;
	int rc = 0;
	for (uint64_t pos = 0; rc == 0 && pos < size;) {
		off_t data = lseek(in, (off_t)pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* a hole to the end */
		if (data < 0)
			data = (off_t)pos; /* no SEEK_DATA: all data */
		off_t hole = lseek(in, data, SEEK_HOLE);
		uint64_t end = hole < 0 || (uint64_t)hole > size ? size : (uint64_t)hole;
		for (pos = (uint64_t)data; pos < end;) {
			size_t want = end - pos > SPARSE_COPY_BUF ? SPARSE_COPY_BUF : (size_t)(end - pos);
			ssize_t n = pread(in, buf, want, (off_t)pos);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || sparse_pwrite(out, buf, (size_t)n, (off_t)pos) < 0) {
				if (n == 0)
					errno = EIO;
				rc = -1;
				break;
			}
			if (data_bytes)
				*data_bytes += (uint64_t)n;
			pos += (uint64_t)n;
		}
	}
	int saved = errno;
	free(buf);
	if (rc == 0 && ftruncate(out, (off_t)size) < 0)
		return -1;
	errno = saved;
	return rc;
}
