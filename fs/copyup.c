/*
 * The upper layer: files the guest changed live in state_dir/upper/<id>
 * (named by inode number, never by a guest's name). Copy-up brings a
 * file's content there from the image before the first change: fetched
 * whole, or chunk by chunk for a chunked file, holes kept as holes.
 * Concurrent copy-ups of one node wait for the first (n->copying).
 */
#include "fs/fuse_ops.h"
#include "lib/clock.h"
#include "lib/sparse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Copy-up moves content in pieces of this size. */
#define FS_COPY_BUF (1u << 20)

int fs_upper_open(struct fs *fs, struct fs_node *n, int flags)
{
	char name[32];
	fs_upper_name(n, name, sizeof(name));
	int fd = openat(fs->upper_fd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

int fs_copy_up(struct fs *fs, struct fs_node *n, bool truncate)
{
	while (n->copying)
		pthread_cond_wait(&fs->cond, &fs->lock);
	if (n->upper)
		return 0;
	n->copying = true;
	const struct manifest_entry *e = n->lower;
	uint64_t size = n->size;
	pthread_mutex_unlock(&fs->lock);

	int rc = 0, src = -1;
	bool fault_failed = false;
	struct fs_fetch_info info = {0};
	uint64_t t0 = clock_now_ns();
	int dst = fs_upper_open(fs, n, O_CREAT | O_TRUNC | O_RDWR);
	uint8_t *buf = NULL;
	if (dst < 0) {
		rc = dst;
		goto out;
	}
	if (!truncate && e && size > 0) {
		bool ranged = e->n_chunks > 0 && fs->backend->read_range;
		if (!ranged) {
			src = fs->backend->open_content(fs->backend_ctx, e, &info);
			if (src < 0) {
				rc = src;
				fault_failed = true;
				goto out;
			}
		}
		buf = malloc(FS_COPY_BUF);
		if (!buf) {
			rc = -ENOMEM;
			goto out;
		}
		for (uint64_t off = 0; off < size;) {
			size_t want = size - off < FS_COPY_BUF ? (size_t)(size - off) : FS_COPY_BUF;
			ssize_t got;
			if (ranged) {
				struct fs_fetch_info ri = {0};
				got = fs->backend->read_range(fs->backend_ctx, e, off, buf, want, &ri);
				info.fetched |= ri.fetched;
				info.bytes += ri.bytes;
				info.requests += ri.requests;
			} else {
				got = pread(src, buf, want, (off_t)off);
				if (got < 0)
					got = -errno;
			}
			if (got < 0) {
				rc = (int)got;
				fault_failed = ranged;
				goto out;
			}
			if (got == 0)
				break; /* content shorter than the manifest says: zeros follow */
			/* dst is new and empty: zeros need not be written (the
			 * ftruncate below sizes it), so holes stay holes. */
			if (sparse_pwrite(dst, buf, (size_t)got, (off_t)off) < 0) {
				rc = -EIO;
				goto out;
			}
			off += (uint64_t)got;
		}
	}
	if (ftruncate(dst, truncate ? 0 : (off_t)size) < 0)
		rc = -errno;
out:
	free(buf);
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
	uint64_t ns = clock_now_ns() - t0;
	pthread_mutex_lock(&fs->lock);
	fs_note_fetch(fs, n, &info, ns);
	fs->st_faults_failed += fault_failed;
	n->copying = false;
	if (rc == 0) {
		n->upper = true;
		if (truncate)
			n->size = 0;
		fs->st_copy_ups++;
		fs->dirty = true;
	} else {
		char name[32];
		fs_upper_name(n, name, sizeof(name));
		unlinkat(fs->upper_fd, name, 0);
	}
	pthread_cond_broadcast(&fs->cond);
	return rc;
}

