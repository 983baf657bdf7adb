/*
 * The inode table of the file-request server: nodes by id, names in a hash
 * keyed by (directory, name), each directory's names in a list ordered by
 * readdir cookie. Built from the manifest at fs_create; the guest's
 * changes edit it in place.
 */
#include "fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void fs_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

void fs_upper_name(const struct fs_node *n, char *buf, size_t len)
{
	snprintf(buf, len, "%llu", (unsigned long long)n->id);
}

static size_t name_hash(uint64_t dir, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ dir; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 1099511628211ull;
	}
	return (size_t)(h ^ (h >> 29));
}

struct fs_node *fs_node_get(struct fs *fs, uint64_t id)
{
	if (id == 0 || id >= fs->next_id)
		return NULL;
	return fs->nodes[id];
}

size_t fs_child_pathlen(const struct fs_node *dir, size_t namelen)
{
	return dir->id == 1 ? namelen : dir->pathlen + 1 + namelen;
}

int fs_may_add(const struct fs *fs, bool new_node)
{
	/* Counted against what the image brought, so deleting image files
	 * makes room, and an image larger than the bound still mounts. */
	if (new_node && fs->live_nodes >= fs->image_nodes + fs->max_files)
		return -ENOSPC;
	if (fs->hash_count >= fs->image_names + fs->max_files)
		return -ENOSPC;
	/* Each name is an entry of the manifest write-back makes, and one
	 * past what the format holds would sink every change: refused now,
	 * like a path past MANIFEST_PATH_MAX (the root is an entry too). */
	if (fs->hash_count + 2 > MANIFEST_MAX_ENTRIES)
		return -ENOSPC;
	return 0;
}

/* Visit each directory of the subtree at top (top first), parents before
 * children, with a stack on the heap: a tree of any depth costs no C
 * stack. fn returns nothing; the walk returns 0 or -ENOMEM. */
static int subtree_dirs(struct fs_node *top, void (*fn)(void *ctx, struct fs_node *dir), void *ctx)
{
	size_t n = 0, cap = 64;
	struct fs_node **stack = malloc(cap * sizeof(*stack));
	if (!stack)
		return -ENOMEM;
	stack[n++] = top;
	while (n) {
		struct fs_node *dir = stack[--n];
		fn(ctx, dir);
		for (struct fs_dentry *d = dir->first; d; d = d->dnext) {
			if (!S_ISDIR(d->node->mode))
				continue;
			if (n == cap) {
				struct fs_node **t = realloc(stack, 2 * cap * sizeof(*t));
				if (!t) {
					free(stack);
					return -ENOMEM;
				}
				stack = t;
				cap *= 2;
			}
			stack[n++] = d->node;
		}
	}
	free(stack);
	return 0;
}

struct extent_ctx {
	const struct fs_node *top;
	size_t max;
};

static void extent_dir(void *ctx, struct fs_node *dir)
{
	struct extent_ctx *x = ctx;
	size_t rel = dir == x->top ? 0 : dir->pathlen - x->top->pathlen;
	for (struct fs_dentry *d = dir->first; d; d = d->dnext)
		if (rel + 1 + d->namelen > x->max)
			x->max = rel + 1 + d->namelen;
}

int fs_subtree_extent(struct fs_node *top, size_t *extent)
{
	struct extent_ctx x = {top, 0};
	int rc = subtree_dirs(top, extent_dir, &x);
	*extent = x.max;
	return rc;
}

static void repath_dir(void *ctx, struct fs_node *dir)
{
	for (struct fs_dentry *d = dir->first; d; d = d->dnext)
		if (S_ISDIR(d->node->mode))
			d->node->pathlen = (uint32_t)fs_child_pathlen(dir, d->namelen);
}

int fs_subtree_repath(struct fs_node *top)
{
	return subtree_dirs(top, repath_dir, NULL);
}

struct fs_node *fs_node_new(struct fs *fs, uint32_t mode, uint32_t uid, uint32_t gid)
{
	if (fs->next_id >= fs->n_nodes_cap) {
		uint64_t cap = fs->n_nodes_cap ? fs->n_nodes_cap * 2 : 1024;
		struct fs_node **nn = realloc(fs->nodes, cap * sizeof(*nn));
		if (!nn)
			return NULL;
		memset(nn + fs->n_nodes_cap, 0, (cap - fs->n_nodes_cap) * sizeof(*nn));
		fs->nodes = nn;
		fs->n_nodes_cap = cap;
	}
	struct fs_node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->id = fs->next_id++; /* ids are never reused: no stale-handle aliasing */
	n->mode = mode;
	n->uid = uid;
	n->gid = gid;
	n->nlink = S_ISDIR(mode) ? 2 : 1;
	n->next_pos = 1;
	fs_now(&n->mtime);
	n->atime = n->ctime = n->mtime;
	fs->nodes[n->id] = n;
	fs->live_nodes++;
	return n;
}

void fs_node_maybe_free(struct fs *fs, struct fs_node *n)
{
	if (n->id == 1 || n->nlink > 0 || n->nlookup > 0 || n->nopen > 0 || n->copying)
		return;
	if (n->upper) {
		char name[32];
		fs_upper_name(n, name, sizeof(name));
		unlinkat(fs->upper_fd, name, 0);
	}
	fs->nodes[n->id] = NULL;
	fs->live_nodes--;
	free(n->symlink);
	free(n);
}

struct fs_dentry *fs_dentry_find(struct fs *fs, struct fs_node *dir, const char *name, size_t len)
{
	if (!fs->hash_size)
		return NULL;
	size_t b = name_hash(dir->id, name, len) & (fs->hash_size - 1);
	for (struct fs_dentry *d = fs->hash[b]; d; d = d->hnext)
		if (d->dir == dir && d->namelen == len && memcmp(d->name, name, len) == 0)
			return d;
	return NULL;
}

static int hash_grow(struct fs *fs)
{
	size_t size = fs->hash_size ? fs->hash_size * 2 : 4096;
	struct fs_dentry **h = calloc(size, sizeof(*h));
	if (!h)
		return -1;
	for (size_t i = 0; i < fs->hash_size; i++) {
		struct fs_dentry *d = fs->hash[i], *next;
		for (; d; d = next) {
			next = d->hnext;
			size_t b = name_hash(d->dir->id, d->name, d->namelen) & (size - 1);
			d->hnext = h[b];
			h[b] = d;
		}
	}
	free(fs->hash);
	fs->hash = h;
	fs->hash_size = size;
	return 0;
}

struct fs_dentry *fs_dentry_add(struct fs *fs, struct fs_node *dir, const char *name, size_t len,
				struct fs_node *node)
{
	if (fs->hash_count >= fs->hash_size && hash_grow(fs) < 0)
		return NULL;
	struct fs_dentry *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->name = malloc(len + 1);
	if (!d->name) {
		free(d);
		return NULL;
	}
	memcpy(d->name, name, len);
	d->name[len] = 0;
	d->namelen = len;
	d->dir = dir;
	d->node = node;
	d->pos = dir->next_pos++;
	d->dprev = dir->last;
	if (dir->last)
		dir->last->dnext = d;
	else
		dir->first = d;
	dir->last = d;
	size_t b = name_hash(dir->id, name, len) & (fs->hash_size - 1);
	d->hnext = fs->hash[b];
	fs->hash[b] = d;
	fs->hash_count++;
	dir->nentries++;
	if (S_ISDIR(node->mode)) {
		dir->nsubdirs++;
		node->parent = dir;
		node->pathlen = (uint32_t)fs_child_pathlen(dir, len);
	}
	return d;
}

void fs_dentry_remove(struct fs *fs, struct fs_dentry *d)
{
	struct fs_node *dir = d->dir;
	size_t b = name_hash(dir->id, d->name, d->namelen) & (fs->hash_size - 1);
	for (struct fs_dentry **p = &fs->hash[b]; *p; p = &(*p)->hnext)
		if (*p == d) {
			*p = d->hnext;
			break;
		}
	fs->hash_count--;
	if (d->dprev)
		d->dprev->dnext = d->dnext;
	else
		dir->first = d->dnext;
	if (d->dnext)
		d->dnext->dprev = d->dprev;
	else
		dir->last = d->dprev;
	dir->nentries--;
	if (S_ISDIR(d->node->mode))
		dir->nsubdirs--;
	free(d->name);
	free(d);
}

static uint32_t mf_type_bits(enum manifest_type t)
{
	switch (t) {
	case MF_REG: return S_IFREG;
	case MF_DIR: return S_IFDIR;
	case MF_SYMLINK: return S_IFLNK;
	case MF_CHR: return S_IFCHR;
	case MF_BLK: return S_IFBLK;
	case MF_FIFO: return S_IFIFO;
	case MF_SOCK: return S_IFSOCK;
	default: return 0;
	}
}

/* Walk path (relative, '/'-separated) to its node, or NULL. */
static struct fs_node *resolve(struct fs *fs, const char *path)
{
	struct fs_node *n = fs->nodes[1];
	const char *p = path;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (!S_ISDIR(n->mode))
			return NULL;
		struct fs_dentry *d = fs_dentry_find(fs, n, p, len);
		if (!d)
			return NULL;
		n = d->node;
		p += len;
		if (*p == '/')
			p++;
	}
	return n;
}

static bool path_ok(const char *path)
{
	/* Checked again here although image/ validates: the table must never
	 * hold a name the guest could not have created. */
	const char *p = path;
	if (!*p)
		return false;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 0 || len > FS_NAME_MAX || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += len;
		if (*p == '/' && !*++p)
			return false;
	}
	return true;
}

int fs_tree_build(struct fs *fs, char *err, size_t errlen)
{
	const struct manifest *mf = fs->mf;
	fs->next_id = 1;
	struct fs_node *root = fs_node_new(fs, S_IFDIR | 0755, 0, 0);
	if (!root || hash_grow(fs) < 0)
		goto nomem;
	root->parent = root;
	root->nlookup = 1; /* the kernel holds the root without a LOOKUP */
	for (int pass = 0; pass < 2; pass++) {
		/* Pass 0: everything but hard links; pass 1: hard links, whose
		 * target may sort after them. */
		for (size_t i = 0; i < mf->n_entries; i++) {
			const struct manifest_entry *e = &mf->entries[i];
			if ((e->type == MF_HARDLINK) != (pass == 1))
				continue;
			if (e->path[0] == 0) { /* the root */
				if (e->type != MF_DIR) {
					snprintf(err, errlen, "manifest: the root is not a directory");
					return -1;
				}
				root->mode = S_IFDIR | (e->mode & 07777);
				root->uid = e->uid;
				root->gid = e->gid;
				root->mtime.tv_sec = e->mtime_sec;
				root->mtime.tv_nsec = e->mtime_nsec;
				root->atime = root->ctime = root->mtime;
				continue;
			}
			if (!path_ok(e->path)) {
				snprintf(err, errlen, "manifest: bad path '%s'", e->path);
				return -1;
			}
			const char *slash = strrchr(e->path, '/');
			const char *base = slash ? slash + 1 : e->path;
			struct fs_node *dir = root;
			if (slash) {
				char *dpath = strndup(e->path, (size_t)(slash - e->path));
				if (!dpath)
					goto nomem;
				dir = resolve(fs, dpath);
				free(dpath);
			}
			if (!dir || !S_ISDIR(dir->mode)) {
				snprintf(err, errlen, "manifest: '%s' has no parent directory", e->path);
				return -1;
			}
			size_t blen = strlen(base);
			if (fs_dentry_find(fs, dir, base, blen)) {
				snprintf(err, errlen, "manifest: '%s' appears twice", e->path);
				return -1;
			}
			struct fs_node *n;
			if (e->type == MF_HARDLINK) {
				n = e->target ? resolve(fs, e->target) : NULL;
				if (!n || S_ISDIR(n->mode)) {
					snprintf(err, errlen, "manifest: hard link '%s' to a missing or "
						 "directory entry", e->path);
					return -1;
				}
				n->nlink++;
			} else {
				uint32_t t = mf_type_bits(e->type);
				if (!t) {
					snprintf(err, errlen, "manifest: '%s' has an unknown type", e->path);
					return -1;
				}
				n = fs_node_new(fs, t | (e->mode & 07777), e->uid, e->gid);
				if (!n)
					goto nomem;
				n->mtime.tv_sec = e->mtime_sec;
				n->mtime.tv_nsec = e->mtime_nsec;
				n->atime = n->ctime = n->mtime;
				n->rdev = e->rdev;
				n->image = e;
				if (e->type == MF_REG) {
					n->size = e->size;
					n->lower = e;
				} else if (e->type == MF_SYMLINK) {
					if (!e->target || strlen(e->target) > FS_SYMLINK_MAX) {
						snprintf(err, errlen, "manifest: symlink '%s' has no target",
							 e->path);
						return -1;
					}
					n->symlink = strdup(e->target);
					if (!n->symlink)
						goto nomem;
					n->size = strlen(e->target);
				}
				if (e->type == MF_DIR)
					dir->nlink++;
			}
			if (!fs_dentry_add(fs, dir, base, blen, n))
				goto nomem;
		}
	}
	fs->image_nodes = fs->live_nodes;
	fs->image_names = fs->hash_count;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory building the file table");
	return -1;
}

void fs_tree_free(struct fs *fs)
{
	for (size_t i = 0; i < fs->hash_size; i++) {
		struct fs_dentry *d = fs->hash[i], *next;
		for (; d; d = next) {
			next = d->hnext;
			free(d->name);
			free(d);
		}
	}
	free(fs->hash);
	fs->hash = NULL;
	fs->hash_size = fs->hash_count = 0;
	for (uint64_t i = 0; i < fs->next_id; i++)
		if (fs->nodes && fs->nodes[i]) {
			free(fs->nodes[i]->symlink);
			free(fs->nodes[i]);
		}
	free(fs->nodes);
	fs->nodes = NULL;
}

/* The one recorder of the order in which the image's files were first
 * read, for --record-profile and write-back's profile alike: a file counts
 * when the backend delivered its content, from the network or from the
 * cache, so a warm run records what a cold one does. */
static void note_read(struct fs *fs, struct fs_node *n, const struct fs_fetch_info *info)
{
	if (!n || !n->lower || n->read_recorded || !(info->served || info->fetched))
		return;
	if (fs->n_order == fs->cap_order) {
		size_t cap = fs->cap_order ? fs->cap_order * 2 : 256;
		const char **o = realloc(fs->order, cap * sizeof(*o));
		if (!o)
			return; /* left out of the profile: a hint, not a promise */
		fs->order = o;
		fs->cap_order = cap;
	}
	n->read_recorded = true;
	fs->order[fs->n_order++] = n->lower->path;
}

void fs_note_fetch(struct fs *fs, struct fs_node *n, const struct fs_fetch_info *info, uint64_t ns)
{
	note_read(fs, n, info);
	if (!info->fetched)
		return;
	fs->st_faults++;
	fs->st_bytes_fetched += info->bytes;
	fs->st_fetch_requests += info->requests;
	if (fs->n_lat < FS_LAT_SAMPLES)
		fs->lat[fs->n_lat++] = ns;
	if (ns > fs->lat_max)
		fs->lat_max = ns;
	if (n && !n->faulted) {
		n->faulted = true;
		fs->st_files_faulted++;
	}
}

/* --- creation, figures, the walk --- */

struct fs *fs_create(const struct fs_options *opts, char *err, size_t errlen)
{
	struct fs *fs = calloc(1, sizeof(*fs));
	if (!fs) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->cond, NULL);
	fs->mf = opts->manifest;
	fs->backend = opts->backend;
	fs->backend_ctx = opts->backend_ctx;
	fs->read_only = opts->read_only;
	fs->max_write = opts->max_write ? opts->max_write : FS_DEFAULT_MAX_WRITE;
	fs->max_file_size = opts->max_file_size ? opts->max_file_size : FS_DEFAULT_MAX_FILE_SIZE;
	fs->max_files = opts->max_files ? opts->max_files : FS_DEFAULT_MAX_FILES;
	fs->upper_fd = -1;
	fs->lat = calloc(FS_LAT_SAMPLES, sizeof(uint64_t));
	if (!fs->lat) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!opts->state_dir) {
		snprintf(err, errlen, "no state directory for the upper layer");
		goto fail;
	}
	if (mkdir(opts->state_dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", opts->state_dir, strerror(errno));
		goto fail;
	}
	int sfd = open(opts->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", opts->state_dir, strerror(errno));
		goto fail;
	}
	if (mkdirat(sfd, "upper", 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s/upper: %s", opts->state_dir, strerror(errno));
		close(sfd);
		goto fail;
	}
	fs->upper_fd = openat(sfd, "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(sfd);
	if (fs->upper_fd < 0) {
		snprintf(err, errlen, "cannot open %s/upper: %s", opts->state_dir, strerror(errno));
		goto fail;
	}
	if (fs_tree_build(fs, err, errlen) < 0)
		goto fail;
	return fs;
fail:
	fs->backend_ctx = NULL; /* not ours until success */
	fs_destroy(fs);
	return NULL;
}

void fs_destroy(struct fs *fs)
{
	if (!fs)
		return;
	for (uint32_t i = 0; i < fs->n_fhs; i++) {
		struct fs_fh *h = fs->fhs[i];
		if (!h)
			continue;
		if (h->fd >= 0)
			close(h->fd);
		if (h->upper_fd >= 0)
			close(h->upper_fd);
		free(h);
	}
	free(fs->fhs);
	fs_tree_free(fs);
	if (fs->upper_fd >= 0)
		close(fs->upper_fd);
	if (fs->backend && fs->backend->destroy && fs->backend_ctx)
		fs->backend->destroy(fs->backend_ctx);
	free(fs->lat);
	free(fs->order);
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->cond);
	free(fs);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *sorted, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

void fs_get_stats(struct fs *fs, struct fs_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&fs->lock);
	st->requests = fs->st_requests;
	st->files_faulted = fs->st_files_faulted;
	st->faults = fs->st_faults;
	st->faults_failed = fs->st_faults_failed;
	st->bytes_fetched = fs->st_bytes_fetched;
	st->fetch_requests = fs->st_fetch_requests;
	st->bytes_read = fs->st_bytes_read;
	st->bytes_written = fs->st_bytes_written;
	st->copy_ups = fs->st_copy_ups;
	st->nodes = fs->live_nodes;
	st->image_bytes = fs->mf->total_bytes;
	st->fault_max_ns = fs->lat_max;
	size_t n = fs->n_lat;
	uint64_t *copy = n ? malloc(n * sizeof(*copy)) : NULL;
	if (copy)
		memcpy(copy, fs->lat, n * sizeof(*copy));
	pthread_mutex_unlock(&fs->lock);
	if (copy) {
		qsort(copy, n, sizeof(*copy), cmp_u64);
		st->fault_p50_ns = pct(copy, n, 50);
		st->fault_p99_ns = pct(copy, n, 99);
		free(copy);
	}
}

void fs_read_order(struct fs *fs, int (*fn)(void *ctx, const char *path), void *ctx)
{
	pthread_mutex_lock(&fs->lock);
	size_t n = fs->n_order;
	pthread_mutex_unlock(&fs->lock);
	/* order[] only grows and manifest paths are immutable. */
	for (size_t i = 0; i < n; i++)
		if (fn(ctx, fs->order[i]))
			break;
}

bool fs_is_dirty(struct fs *fs)
{
	pthread_mutex_lock(&fs->lock);
	bool d = fs->dirty;
	pthread_mutex_unlock(&fs->lock);
	return d;
}

static enum manifest_type node_mf_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR: return MF_DIR;
	case S_IFLNK: return MF_SYMLINK;
	case S_IFCHR: return MF_CHR;
	case S_IFBLK: return MF_BLK;
	case S_IFIFO: return MF_FIFO;
	case S_IFSOCK: return MF_SOCK;
	default: return MF_REG;
	}
}

struct walk_state {
	struct fs *fs;
	int (*fn)(void *ctx, const struct fs_walk_entry *e);
	void *ctx;
	char **first_path; /* by node id: first path of a multiply-linked file */
	char *path;        /* the path being visited, grown as needed */
	size_t plen, path_cap;
	struct walk_frame *frames; /* the directories open, root first */
	size_t depth, cap_frames;
};

static int cmp_dentry(const void *a, const void *b)
{
	const struct fs_dentry *x = *(struct fs_dentry *const *)a, *y = *(struct fs_dentry *const *)b;
	size_t l = x->namelen < y->namelen ? x->namelen : y->namelen;
	int c = memcmp(x->name, y->name, l);
	return c ? c : (x->namelen > y->namelen) - (x->namelen < y->namelen);
}

/* Report node n (path w->path) to fn. Returns fn's value; *descend says
 * whether the walk goes into it (a directory with names, representable). */
static int walk_one(struct walk_state *w, struct fs_node *n, bool *descend)
{
	struct fs *fs = w->fs;
	const char *path = w->path;
	struct fs_walk_entry e = {
		.path = path, .type = node_mf_type(n->mode), .mode = n->mode & 07777,
		.uid = n->uid, .gid = n->gid, .mtime_sec = n->mtime.tv_sec,
		.mtime_nsec = (uint32_t)n->mtime.tv_nsec, .size = n->size, .rdev = n->rdev,
		.target = n->symlink, .content = FS_CONTENT_NONE, .upper_fd = -1,
	};
	*descend = false;
	if (w->plen > MANIFEST_PATH_MAX) {
		e.too_long = true;
		return w->fn(w->ctx, &e);
	}
	if (S_ISREG(n->mode) && n->nlink > 1) {
		if (w->first_path[n->id]) {
			e.type = MF_HARDLINK;
			e.target = w->first_path[n->id];
			return w->fn(w->ctx, &e);
		}
		w->first_path[n->id] = strdup(path);
		if (!w->first_path[n->id])
			return -ENOMEM;
	}
	if (n->image && n->image->n_xattrs) {
		e.xattrs = n->image->xattrs;
		e.n_xattrs = n->image->n_xattrs;
	}
	if (S_ISREG(n->mode)) {
		if (n->upper) {
			char name[32];
			fs_upper_name(n, name, sizeof(name));
			e.upper_fd = openat(fs->upper_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (e.upper_fd < 0)
				return -errno;
			e.content = FS_CONTENT_UPPER;
		} else if (n->lower) {
			e.content = FS_CONTENT_LOWER;
			e.lower = n->lower;
		}
	}
	int rc = w->fn(w->ctx, &e);
	if (e.upper_fd >= 0)
		close(e.upper_fd);
	*descend = rc == 0 && S_ISDIR(n->mode) && n->nentries > 0;
	return rc;
}

/* One directory being walked: its names sorted, the next to visit, and
 * the length of its path in w->path. */
struct walk_frame {
	struct fs_dentry **kids;
	size_t n, i, plen;
};

static int push_frame(struct walk_state *w, struct fs_node *dir)
{
	if (w->depth == w->cap_frames) {
		size_t cap = w->cap_frames ? 2 * w->cap_frames : 64;
		struct walk_frame *t = realloc(w->frames, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		w->frames = t;
		w->cap_frames = cap;
	}
	struct walk_frame *f = &w->frames[w->depth];
	f->kids = malloc(dir->nentries * sizeof(*f->kids));
	if (!f->kids)
		return -ENOMEM;
	f->n = 0;
	for (struct fs_dentry *d = dir->first; d; d = d->dnext)
		f->kids[f->n++] = d;
	qsort(f->kids, f->n, sizeof(*f->kids), cmp_dentry);
	f->i = 0;
	f->plen = w->plen;
	w->depth++;
	return 0;
}

/* Set w->path to the frame's path + "/" + name (no slash at the root). */
static int set_child_path(struct walk_state *w, const struct walk_frame *f,
			  const struct fs_dentry *d)
{
	size_t len = f->plen + (f->plen ? 1 : 0) + d->namelen;
	if (len + 1 > w->path_cap) {
		size_t cap = 2 * (len + 1);
		char *t = realloc(w->path, cap);
		if (!t)
			return -ENOMEM;
		w->path = t;
		w->path_cap = cap;
	}
	size_t at = f->plen;
	if (f->plen)
		w->path[at++] = '/';
	memcpy(w->path + at, d->name, d->namelen);
	w->path[len] = 0;
	w->plen = len;
	return 0;
}

int fs_walk(struct fs *fs, int (*fn)(void *ctx, const struct fs_walk_entry *e), void *ctx)
{
	pthread_mutex_lock(&fs->lock);
	struct walk_state w = {.fs = fs, .fn = fn, .ctx = ctx,
			       .first_path = calloc(fs->next_id, sizeof(char *)),
			       .path = calloc(1, 256), .path_cap = 256};
	int rc = -ENOMEM;
	bool descend = false;
	if (w.first_path && w.path)
		rc = walk_one(&w, fs->nodes[1], &descend);
	if (rc == 0 && descend)
		rc = push_frame(&w, fs->nodes[1]);
	while (rc == 0 && w.depth) {
		struct walk_frame *f = &w.frames[w.depth - 1];
		if (f->i == f->n) {
			free(f->kids);
			w.depth--;
			continue;
		}
		struct fs_dentry *d = f->kids[f->i++];
		rc = set_child_path(&w, f, d);
		if (rc == 0)
			rc = walk_one(&w, d->node, &descend);
		if (rc == 0 && descend)
			rc = push_frame(&w, d->node);
	}
	while (w.depth)
		free(w.frames[--w.depth].kids);
	free(w.frames);
	free(w.path);
	if (w.first_path)
		for (uint64_t i = 0; i < fs->next_id; i++)
			free(w.first_path[i]);
	free(w.first_path);
	pthread_mutex_unlock(&fs->lock);
	return rc;
}
