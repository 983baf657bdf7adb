/*
 * The file-request server: a FUSE server (protocol 7.x, <linux/fuse.h>)
 * with no virtio in it. devices/virtio_fs.c hands it each request's
 * buffers; unit tests and the fuzz target call it directly.
 *
 * The namespace lives in memory: an inode table built from the image's
 * manifest (metadata is answered from it with no fetch) and changed by the
 * guest's writes. File content comes from the backend (fs/backend.h) or,
 * once written, from the upper layer: files named by inode number in the
 * state directory's "upper/" folder. Guest names never become host paths.
 * Deleting is dropping the name from the table (the whiteout is the
 * absence), renames and hard links are table edits, chmod/chown/utimens
 * change the table only; only content changes copy a file up.
 *
 * Thread-safe: fs_handle may be called from several threads at once. The
 * table is under one lock; backend calls and file I/O run without it, so
 * a request that waits on the network does not hold up the others.
 */
#ifndef MINIVMM_FS_H
#define MINIVMM_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/uio.h>

#include "fs/backend.h"
#include "image/manifest.h"

struct fs;

struct fs_options {
	const struct manifest *manifest;    /* borrowed; must outlive the fs */
	const struct fs_backend *backend;   /* content of the manifest's files */
	void *backend_ctx;                  /* owned: backend->destroy at fs_destroy */
	const char *state_dir;              /* upper layer; created if missing */
	bool read_only;                     /* refuse every change with EROFS */
	uint32_t max_write;                 /* 0: FS_DEFAULT_MAX_WRITE */
	/* No WRITE, SETATTR size or FALLOCATE may take a file past this
	 * (EFBIG). 0: FS_DEFAULT_MAX_FILE_SIZE. */
	uint64_t max_file_size;
	/* The guest may add at most this many files (nodes) and as many
	 * names (hard links) on top of the image's; past it, creation fails
	 * with ENOSPC. Each costs the server a few hundred bytes of memory.
	 * 0: FS_DEFAULT_MAX_FILES. */
	uint64_t max_files;
};

/* 1,000,000 files: far above what a VM of this project creates (a Debian
 * image is ~60,000 files), and a bound of about 0.5 GB on the table. */
#define FS_DEFAULT_MAX_FILES 1000000ULL

/* 1 TiB: far above any file of an image, far below what would overflow an
 * off_t or let one guest request ask the host for petabytes. */
#define FS_DEFAULT_MAX_FILE_SIZE (1ULL << 40)

/* Largest WRITE / READ payload offered to the guest at INIT. */
#define FS_DEFAULT_MAX_WRITE (128u * 1024)

/* Returns NULL with a message in err on failure (bad manifest, state dir
 * not usable). */
struct fs *fs_create(const struct fs_options *opts, char *err, size_t errlen);
void fs_destroy(struct fs *fs);

/* Serve one FUSE request: in[] holds the device-readable buffers (the
 * fuse_in_header, the op's body, WRITE data), out[] the device-writable
 * ones. Writes the reply (fuse_out_header and body) into out[] and returns
 * the bytes written, 0 for requests that take no reply (FORGET,
 * BATCH_FORGET) or when out[] cannot even hold a fuse_out_header. Never
 * trusts a length, offset, id or name in the request. */
size_t fs_handle(struct fs *fs, const struct iovec *in, int n_in,
		 const struct iovec *out, int n_out);
/* Is a request with this opcode answered? False for FORGET, BATCH_FORGET
 * and INTERRUPT, which touch no content and never wait: a device may serve
 * them on its own thread. True for opcodes the server does not know (they
 * get ENOSYS). */
bool fs_opcode_has_reply(uint32_t opcode);

/* Figures for the report and --stats. */
struct fs_stats {
	uint64_t requests;           /* FUSE requests served */
	uint64_t files_faulted;      /* distinct files whose content was fetched */
	uint64_t faults;             /* backend calls that went to the server */
	uint64_t faults_failed;      /* content faults that failed (storage down past
					* --fetch-timeout, bad content): the guest got EIO */
	uint64_t bytes_fetched, fetch_requests;
	uint64_t fault_p50_ns, fault_p99_ns, fault_max_ns;
	uint64_t image_bytes;        /* manifest total_bytes */
	uint64_t bytes_read, bytes_written; /* by the guest, through READ / WRITE */
	uint64_t copy_ups;
	uint64_t nodes;              /* inodes in the table now */
};
void fs_get_stats(struct fs *fs, struct fs_stats *st);
/* Requests by opcode, for --stats: a new object {"LOOKUP": 123, ...} with
 * only the opcodes seen ("UNKNOWN" for those the server has no name for);
 * the counts sum to fs_stats.requests. NULL when out of memory. */
json_t *fs_request_counts_json(struct fs *fs);

/* Paths of the image's files whose content was read, in first-read order
 * (a prefetch profile: --record-profile and write-back's): a file counts
 * once its backend delivered the content, fetched or from the cache.
 * Calls fn once per file; stops early if fn returns non-zero. */
void fs_read_order(struct fs *fs, int (*fn)(void *ctx, const char *path), void *ctx);

/* --- the merged tree, for write-back (fs/writeback.c) --- */

/* How a file of the merged tree relates to the image. */
enum fs_walk_content {
	FS_CONTENT_NONE,   /* not a regular file */
	FS_CONTENT_LOWER,  /* unchanged content: lower is the manifest entry */
	FS_CONTENT_UPPER,  /* new or changed content: upper_fd is readable */
};

struct fs_walk_entry {
	const char *path;                /* relative to the root, "" for the root */
	enum manifest_type type;         /* MF_HARDLINK for a second name */
	uint32_t mode, uid, gid;         /* permission bits; owner */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t size, rdev;
	const char *target;              /* symlink text, or hard link's first path */
	enum fs_walk_content content;
	const struct manifest_entry *lower;
	int upper_fd;                    /* FS_CONTENT_UPPER: valid during the callback */
	const struct manifest_xattr *xattrs; /* from the image (the guest cannot set any) */
	size_t n_xattrs;
	/* The path is longer than MANIFEST_PATH_MAX: no manifest can hold it
	 * (only an image or a server older than the ENAMETOOLONG check makes
	 * one). The walk does not go below it; nothing else is filled in. */
	bool too_long;
};

/* Visit the merged tree depth-first, parents first, names in byte order,
 * without recursion (any depth). Returns 0, or the first non-zero value
 * fn returned. Call only while no request is being served (after the
 * guest stopped). */
int fs_walk(struct fs *fs, int (*fn)(void *ctx, const struct fs_walk_entry *e), void *ctx);
/* Has the guest changed anything (content, names or metadata)? */
bool fs_is_dirty(struct fs *fs);

#endif
