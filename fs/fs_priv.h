/*
 * Inside the file-request server: the inode table (fs/tree.c) shared by
 * the FUSE wire layer (fs/fuse_wire.c) and the op files (fs/fuse_ops.h).
 * Not for use outside fs/.
 *
 * Every field of a node or dentry is read and written under fs->lock.
 * A node lives while it has a name (nlink > 0), the guest holds a lookup
 * reference (nlookup > 0) or a handle is open on it (nopen > 0).
 */
#ifndef MINIVMM_FS_PRIV_H
#define MINIVMM_FS_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/fs.h"
#include "fs/fuse_wire.h"

#define FS_NAME_MAX 255      /* NAME_MAX: longest name accepted from the guest */
#define FS_SYMLINK_MAX 4095  /* PATH_MAX - 1: longest symlink target */
/* Longest path from the root a name may have: what a manifest can hold
 * (MANIFEST_PATH_MAX). A name past it could never be written back, so the
 * guest gets ENAMETOOLONG when it makes one (issue 13, item 4). */
#define FS_PATH_MAX MANIFEST_PATH_MAX
#define FS_MAX_HANDLES 65536
#define FS_LAT_SAMPLES 65536

struct fs_node;

struct fs_dentry {
	struct fs_node *dir;            /* the directory holding the name */
	char *name;
	size_t namelen;
	struct fs_node *node;
	uint64_t pos;                   /* readdir cookie, increasing in dir order */
	struct fs_dentry *dprev, *dnext; /* siblings, in pos order */
	struct fs_dentry *hnext;        /* hash chain */
};

struct fs_node {
	uint64_t id;                    /* FUSE node id and st_ino */
	uint32_t mode;                  /* S_IFMT | permission bits */
	uint32_t uid, gid, nlink;
	uint64_t rdev, size;
	struct timespec atime, mtime, ctime;
	char *symlink;                  /* S_IFLNK: the target */
	const struct manifest_entry *lower; /* S_IFREG content in the image, or NULL */
	const struct manifest_entry *image; /* the image's entry (xattrs), or NULL */
	bool upper;                     /* content is upper/<id> */
	bool copying;                   /* a copy-up is running (fs->cond) */
	bool faulted;                   /* its content was fetched once */
	bool read_recorded;             /* in the first-read order (fs_read_order) */
	uint64_t nlookup;
	uint32_t nopen;
	/* directories */
	struct fs_dentry *first, *last;
	uint64_t next_pos;
	uint32_t nentries, nsubdirs;
	struct fs_node *parent;         /* the root is its own parent */
	uint32_t pathlen;               /* length of its path from the root ("" is 0) */
};

struct fs_fh {
	struct fs_node *node;
	uint32_t slot;                  /* index in fs->fhs; the fh is slot + 1 */
	bool released, is_dir, readable, writable;
	int fd;                         /* lower content, or -1 (chunked / empty) */
	int upper_fd;                   /* upper content, or -1 */
	uint32_t refs;                  /* table reference + requests in flight */
};

struct fs {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	const struct manifest *mf;
	const struct fs_backend *backend;
	void *backend_ctx;
	int upper_fd;                   /* state_dir/upper */
	bool read_only;
	uint32_t max_write;
	bool initialized;
	uint32_t proto_minor;
	bool dirty;

	struct fs_node **nodes;         /* by id; NULL when freed */
	uint64_t n_nodes_cap, next_id, live_nodes;

	struct fs_dentry **hash;
	size_t hash_size, hash_count;

	struct fs_fh **fhs;             /* by fh - 1; NULL when free. Each handle
					 * is its own allocation, so a pointer
					 * stays valid across the lock drops. */
	uint32_t n_fhs;

	/* figures */
	uint64_t st_requests, st_files_faulted, st_faults, st_bytes_fetched, st_fetch_requests;
	uint64_t st_bytes_read, st_bytes_written, st_copy_ups;
	uint64_t max_file_size;         /* fs_options.max_file_size */
	uint64_t max_files;             /* fs_options.max_files */
	uint64_t image_nodes, image_names; /* nodes and names the image brought */
	uint64_t st_faults_failed;      /* backend calls that failed (the guest got an error) */
	uint64_t *lat;                  /* fault latencies, first FS_LAT_SAMPLES */
	size_t n_lat;
	uint64_t lat_max;
	const char **order;             /* manifest paths, in first-read order */
	size_t n_order, cap_order;
	/* Requests by opcode (FUSE_WIRE_UNKNOWN: the rest); atomic, read
	 * without the lock. They sum to st_requests. */
	uint64_t st_ops[FUSE_WIRE_UNKNOWN + 1];
};

/* tree.c */
int fs_tree_build(struct fs *fs, char *err, size_t errlen);
void fs_tree_free(struct fs *fs);
struct fs_node *fs_node_get(struct fs *fs, uint64_t id);
struct fs_node *fs_node_new(struct fs *fs, uint32_t mode, uint32_t uid, uint32_t gid);
void fs_node_maybe_free(struct fs *fs, struct fs_node *n);
struct fs_dentry *fs_dentry_find(struct fs *fs, struct fs_node *dir, const char *name, size_t len);
struct fs_dentry *fs_dentry_add(struct fs *fs, struct fs_node *dir, const char *name, size_t len,
				struct fs_node *node);
void fs_dentry_remove(struct fs *fs, struct fs_dentry *d);
void fs_upper_name(const struct fs_node *n, char *buf, size_t len);
/* Length of the path of a name namelen bytes long in dir. */
size_t fs_child_pathlen(const struct fs_node *dir, size_t namelen);
/* Longest path below directory top, counted from top's own path (0 for
 * an empty directory): moving top to a path of length L makes paths of
 * L + extent. Returns 0 or -ENOMEM. */
int fs_subtree_extent(struct fs_node *top, size_t *extent);
/* After top moved: recompute the pathlen of every directory below it.
 * Returns 0 or -ENOMEM (then some are stale: only under exhaustion). */
int fs_subtree_repath(struct fs_node *top);
/* May the guest add a node (new_node) or only a name? 0 or -ENOSPC past
 * --fs-max-files (fs_options.max_files). */
int fs_may_add(const struct fs *fs, bool new_node);
void fs_now(struct timespec *ts);
/* Record what a backend call cost, ns measured with clock_now_ns (lib/clock.h). */
void fs_note_fetch(struct fs *fs, struct fs_node *n, const struct fs_fetch_info *info, uint64_t ns);

#endif
