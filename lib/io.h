/*
 * Writes that finish (lib/io.c): write(2) and pwrite(2) may write less
 * than asked (a signal, a pipe, a full disk reached mid-way) and a caller
 * that forgets to loop loses the tail silently. These loop until every
 * byte is written or an error that a retry cannot cure.
 */
#ifndef MINIVMM_LIB_IO_H
#define MINIVMM_LIB_IO_H

#include <stddef.h>
#include <sys/types.h>

/* Write all len bytes of buf to fd, going on after EINTR and short
 * writes. 0, or -1 with errno (EIO when write(2) wrote nothing without an
 * error). Bytes written before a failure stay written. */
int write_all(int fd, const void *buf, size_t len);
/* The same at offset off with pwrite(2): fd's file offset is untouched,
 * so threads may share fd. */
int pwrite_all(int fd, const void *buf, size_t len, off_t off);

#endif
