/*
 * The content-addressed cache (contract in cache.h, design in
 * docs/storage.md). Cross-process safety rests on three flock rules:
 *   - locks/<hex> LOCK_EX while a process fetches <hex>;
 *   - a blob is held LOCK_SH by every fd handed out (in use);
 *   - eviction takes LOCK_EX|LOCK_NB on the blob, so it skips blobs in use,
 *     and a temporary file is written under LOCK_EX so gc can tell an
 *     abandoned download (unlocked) from a live one.
 */
#include "fetch/cache.h"
#include "lib/io.h"
#include "lib/mkdir_p.h"
#include "lib/sparse.h"
#include "lib/wholefile.h"
#include "vmm/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOUCH_INTERVAL_S 60      /* LRU time is refreshed at most this often */
#define TMP_ABANDONED_S 60       /* an unlocked tmp file this old is garbage */
#define HASH_BUF (1 << 20)
#define AUTO_GC_PERCENT 90       /* automatic gc shrinks to this share of max */
#define OPEN_RETRIES 4
#define WRITEBACK_STEP (8 << 20)  /* bytes between writeback kicks */
#define TRAIL_MIN (16ULL << 20)   /* blobs this large hash on a second thread */
#define NOSPACE_MEMORY_MAX (64ULL << 20) /* disk full: blobs up to this are served from memory */

struct cache {
	char *dir;
	uint64_t max;
	enum cache_verify verify;
	bool nosync;
	pthread_mutex_t lock;
	/* Entries this process has verified (open addressing, linear probe). */
	struct vent *verified;
	size_t n_verified, cap_verified;
	_Atomic uint64_t approx_bytes;
	atomic_flag gc_busy;
	_Atomic uint64_t hits, misses, waits, bytes_fetched, bytes_served, corrupt, evictions,
		bytes_evicted, tmp_removed;
};

/* --- paths --- */

static int path_of(const struct cache *c, const char *sub, const uint8_t d[FETCH_SHA256_LEN],
		   char *out, size_t len)
{
	char hex[FETCH_SHA256_HEX];
	fetch_sha256_to_hex(d, hex);
	int n = snprintf(out, len, "%s/%s/%s", c->dir, sub, hex);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}
#define BLOBS_SUB "blobs/sha256"
#define LOCKS_SUB "locks"
#define TMP_SUB "tmp"

int cache_default_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;
	if (xdg && *xdg == '/')
		n = snprintf(buf, len, "%s/minivmm", xdg);
	else if (home && *home)
		n = snprintf(buf, len, "%s/.cache/minivmm", home);
	else
		return -1;
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* --- the verified set ---
 * An entry verified by this process is not hashed again while it is the
 * same file unchanged: same inode, size and ctime. Any write to it, a
 * chmod, a replacement, changes one of them (ctime cannot be set back by
 * anyone), so an entry corrupted or replaced under a running process is
 * hashed again on its next use and fetched again if bad. What this does
 * not catch is a change below the file system (a disk returning other
 * bytes): hashing on every use would, at about 0.5 s of CPU per GiB, for
 * every chunk a file fault reads from a cached whole blob. */

struct vent {
	uint8_t digest[FETCH_SHA256_LEN];
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec ctime;
};

static bool vent_same_file(const struct vent *v, const struct stat *st)
{
	return v->dev == st->st_dev && v->ino == st->st_ino && v->size == st->st_size &&
	       v->ctime.tv_sec == st->st_ctim.tv_sec && v->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static size_t vset_slot(const uint8_t d[FETCH_SHA256_LEN], size_t cap)
{
	uint64_t h;
	memcpy(&h, d, sizeof(h)); /* a digest is already uniformly spread */
	return (size_t)(h & (cap - 1));
}

static const uint8_t zero_digest[FETCH_SHA256_LEN];

/* The slot of d, or of the empty slot where it would go; NULL if none. */
static struct vent *vset_find_locked(struct cache *c, const uint8_t d[FETCH_SHA256_LEN])
{
	if (!c->cap_verified)
		return NULL;
	for (size_t i = vset_slot(d, c->cap_verified);; i = (i + 1) & (c->cap_verified - 1)) {
		struct vent *v = &c->verified[i];
		if (memcmp(v->digest, d, FETCH_SHA256_LEN) == 0 ||
		    memcmp(v->digest, zero_digest, FETCH_SHA256_LEN) == 0)
			return v;
	}
}

static void vset_insert_locked(struct cache *c, const struct vent *e)
{
	if (memcmp(e->digest, zero_digest, FETCH_SHA256_LEN) == 0)
		return;
	struct vent *v = vset_find_locked(c, e->digest);
	if (v && memcmp(v->digest, zero_digest, FETCH_SHA256_LEN) != 0) {
		*v = *e; /* the same digest, a new file: remember the new one */
		return;
	}
	if ((c->n_verified + 1) * 2 > c->cap_verified) {
		size_t cap = c->cap_verified ? c->cap_verified * 2 : 1024;
		struct vent *old = c->verified;
		size_t old_cap = c->cap_verified;
		c->verified = calloc(cap, sizeof(*c->verified));
		if (!c->verified) { /* forget instead of failing: we verify again */
			c->verified = old;
			return;
		}
		c->cap_verified = cap;
		c->n_verified = 0;
		for (size_t i = 0; i < old_cap; i++)
			if (memcmp(old[i].digest, zero_digest, FETCH_SHA256_LEN) != 0)
				vset_insert_locked(c, &old[i]);
		free(old);
		v = vset_find_locked(c, e->digest);
	}
	*v = *e;
	c->n_verified++;
}

/* Has this process verified d as the file st is now? */
static bool vset_has(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], const struct stat *st)
{
	pthread_mutex_lock(&c->lock);
	struct vent *v = vset_find_locked(c, d);
	bool r = v && memcmp(v->digest, d, FETCH_SHA256_LEN) == 0 && vent_same_file(v, st);
	pthread_mutex_unlock(&c->lock);
	return r;
}

static void vset_add(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], const struct stat *st)
{
	struct vent e = {.dev = st->st_dev, .ino = st->st_ino, .size = st->st_size,
			 .ctime = st->st_ctim};
	memcpy(e.digest, d, FETCH_SHA256_LEN);
	pthread_mutex_lock(&c->lock);
	vset_insert_locked(c, &e);
	pthread_mutex_unlock(&c->lock);
}

/* --- open / close --- */

static uint64_t scan_bytes(struct cache *c);

struct cache *cache_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen)
{
	char def[PATH_MAX];
	if (!dir) {
		if (cache_default_dir(def, sizeof(def)) < 0) {
			snprintf(err, errlen, "no cache directory: set --cache-dir, XDG_CACHE_HOME or HOME");
			return NULL;
		}
		dir = def;
	}
	struct cache *c = calloc(1, sizeof(*c));
	if (!c || !(c->dir = strdup(dir))) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t l = strlen(c->dir);
	while (l > 1 && c->dir[l - 1] == '/')
		c->dir[--l] = '\0';
	c->max = max_bytes ? max_bytes : CACHE_DEFAULT_MAX;
	c->verify = CACHE_VERIFY_FIRST_USE;
	pthread_mutex_init(&c->lock, NULL);
	atomic_flag_clear(&c->gc_busy);
	static const char *const subs[] = {BLOBS_SUB, LOCKS_SUB, TMP_SUB};
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", c->dir, subs[i]);
		if (mkdir_p(p, 0755) < 0) {
			snprintf(err, errlen, "cache directory %s: %s", p, strerror(errno));
			cache_close(c);
			return NULL;
		}
	}
	atomic_store(&c->approx_bytes, scan_bytes(c));
	return c;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->verified);
	free(c->dir);
	free(c);
}

void cache_set_verify(struct cache *c, enum cache_verify v) { c->verify = v; }
void cache_set_sync(struct cache *c, bool sync) { c->nosync = !sync; }
const char *cache_dir(const struct cache *c) { return c->dir; }

/* --- entries --- */

static int hash_fd(int fd, uint64_t off, uint64_t len, uint8_t out[FETCH_SHA256_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *buf = malloc(HASH_BUF);
	int rc = -1;
	if (!md || !buf || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	while (len) {
		size_t want = len < HASH_BUF ? (size_t)len : HASH_BUF;
		ssize_t got = pread(fd, buf, want, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			goto out;
		EVP_DigestUpdate(md, buf, (size_t)got);
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	unsigned dl;
	rc = EVP_DigestFinal_ex(md, out, &dl) == 1 && dl == FETCH_SHA256_LEN ? 0 : -1;
out:
	free(buf);
	EVP_MD_CTX_free(md);
	return rc;
}

enum { ENTRY_ABSENT = 0, ENTRY_OK = 1, ENTRY_BAD = 2 };

/* A name under blobs/ that is no entry minivmm wrote (a symlink, a
 * directory, a FIFO, an unreadable file): ENTRY_BAD, removed if remove_bad
 * (so that a fetch can take the name), or -1 with a message saying what
 * is in the way if it cannot be removed (a non-empty directory). */
static int entry_foreign(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], const char *path,
			 bool remove_bad, const char *what, char *err, size_t errlen)
{
	char hex[FETCH_SHA256_HEX];
	fetch_sha256_to_hex(d, hex);
	if (!remove_bad)
		return ENTRY_BAD;
	log_warn("cache: entry sha256:%s is %s, not a cache entry: replacing it", hex, what);
	if (unlink(path) < 0 && errno != ENOENT && (errno != EISDIR || rmdir(path) < 0) &&
	    errno != ENOENT) {
		snprintf(err, errlen, "%s is %s, not a cache entry, and cannot be removed (%s): "
			 "remove it by hand", path, what, strerror(errno));
		return -1;
	}
	atomic_fetch_add(&c->corrupt, 1);
	return ENTRY_BAD;
}

/* Open the entry for digest, held LOCK_SH. Returns ENTRY_OK with *fd,
 * ENTRY_ABSENT, ENTRY_BAD (wrong size or digest; removed if remove_bad,
 * which the caller may only ask while holding the fetch lock), or -1. */
static int entry_open(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], uint64_t size,
		      bool remove_bad, int *fd, char *err, size_t errlen)
{
	char path[PATH_MAX];
	if (path_of(c, BLOBS_SUB, d, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "cache path too long");
		return -1;
	}
	for (int tries = 0; tries < OPEN_RETRIES; tries++) {
		/* The directory may hold foreign files under an entry's name: a
		 * symlink (never followed: ELOOP), a FIFO (O_NONBLOCK: the open
		 * does not wait for a writer), a directory, a file we may not
		 * read. None is served; each is replaced by a fresh fetch. */
		int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (f < 0) {
			if (errno == ENOENT)
				return ENTRY_ABSENT;
			if (errno == ELOOP || errno == EACCES || errno == EPERM)
				return entry_foreign(c, d, path, remove_bad,
						     errno == ELOOP ? "a symbolic link" : "not readable",
						     err, errlen);
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		struct stat st;
		if (fstat(f, &st) < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			close(f);
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			close(f);
			return entry_foreign(c, d, path, remove_bad,
					     S_ISDIR(st.st_mode) ? "a directory" : "not a regular file",
					     err, errlen);
		}
		fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
		flock(f, LOCK_SH);
		if (fstat(f, &st) < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			close(f);
			return -1;
		}
		if (st.st_nlink == 0) { /* evicted between open and lock */
			close(f);
			continue;
		}
		bool bad = size != UINT64_MAX && (uint64_t)st.st_size != size;
		const char *why = "wrong size";
		bool verified = false;
		if (!bad && (c->verify == CACHE_VERIFY_ALWAYS ||
			     (c->verify == CACHE_VERIFY_FIRST_USE && !vset_has(c, d, &st)))) {
			uint8_t got[FETCH_SHA256_LEN];
			if (hash_fd(f, 0, (uint64_t)st.st_size, got) < 0 ||
			    memcmp(got, d, FETCH_SHA256_LEN) != 0) {
				bad = true;
				why = "wrong content";
			} else {
				verified = true;
			}
		}
		if (bad) {
			char hex[FETCH_SHA256_HEX];
			fetch_sha256_to_hex(d, hex);
			if (remove_bad) {
				log_warn("cache: entry sha256:%s is corrupt (%s), fetching it again", hex, why);
				struct stat now;
				/* Remove the name only if it still is the bad file. */
				if (stat(path, &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev)
					unlink(path);
				atomic_fetch_add(&c->corrupt, 1);
			}
			close(f);
			return ENTRY_BAD;
		}
		/* LRU: best effort, a read-only cache still works. Our own
		 * touch changes ctime: a file verified before stays verified. */
		if (time(NULL) - st.st_mtime >= TOUCH_INTERVAL_S && futimens(f, NULL) == 0 &&
		    !verified && vset_has(c, d, &st))
			verified = true;
		if (verified && fstat(f, &st) == 0)
			vset_add(c, d, &st);
		*fd = f;
		return ENTRY_OK;
	}
	snprintf(err, errlen, "%s: evicted repeatedly while opening", path);
	return -1;
}

/* Take the fetch lock of d; returns the lock fd or -1. *waited is set if
 * another process or thread held it. */
static int fetch_lock(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], bool block, bool *waited,
		      char *err, size_t errlen)
{
	char path[PATH_MAX];
	if (path_of(c, LOCKS_SUB, d, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "cache path too long");
		return -1;
	}
	bool foreign_removed = false;
	for (;;) {
		int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (lfd < 0 && errno == ELOOP && !foreign_removed) {
			/* A symlink planted as a lock file: never followed (it
			 * could point anywhere), removed once. */
			foreign_removed = true;
			if (unlink(path) == 0 || errno == ENOENT)
				continue;
		}
		if (lfd < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK || !block) {
				if (errno != EWOULDBLOCK)
					snprintf(err, errlen, "%s: flock: %s", path, strerror(errno));
				else
					err[0] = '\0';
				close(lfd);
				return -1;
			}
			if (waited)
				*waited = true;
			if (flock(lfd, LOCK_EX) < 0) {
				snprintf(err, errlen, "%s: flock: %s", path, strerror(errno));
				close(lfd);
				return -1;
			}
		}
		/* gc may have removed the lock file while we waited for it. */
		struct stat a, b;
		if (fstat(lfd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev)
			return lfd;
		close(lfd);
	}
}

/* Drop the fetch lock and its file, so locks/ holds only fetches in
 * progress. A waiter that opened the old file notices (fetch_lock compares
 * inodes) and locks a fresh one, then finds the entry. */
static void fetch_unlock(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], int lfd)
{
	char path[PATH_MAX];
	if (path_of(c, LOCKS_SUB, d, path, sizeof(path)) == 0)
		unlink(path);
	close(lfd);
}

/* A download in progress: a tmp file under LOCK_EX. */
struct trail;
struct pending {
	int fd;
	int werr;              /* errno of a failed write to the tmp file */
	uint64_t written, flushed;
	uint64_t max;          /* bytes the download may have (0: no bound) */
	struct trail *trail;   /* hashing on another thread, or NULL */
	char tmp[PATH_MAX];    /* the fallback's name, or dir for an unnamed file */
	bool named;            /* the O_TMPFILE fallback: a name under tmp/ */
	char dir[PATH_MAX];    /* DIR/tmp */
	char hex[FETCH_SHA256_HEX];
};

static int pending_create(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], struct pending *p,
			  char *err, size_t errlen)
{
	fetch_sha256_to_hex(d, p->hex);
	if (snprintf(p->dir, sizeof(p->dir), "%s/%s", c->dir, TMP_SUB) >= (int)sizeof(p->dir)) {
		snprintf(err, errlen, "cache path too long");
		return -1;
	}
	p->written = p->flushed = p->max = 0;
	p->werr = 0;
	p->trail = NULL;
	/* Unnamed until verified and complete: a process killed mid-download
	 * leaves nothing (a named fallback is swept by gc). */
	p->fd = wholefile_open(p->dir, p->hex, p->tmp, sizeof(p->tmp));
	if (p->fd < 0) {
		snprintf(err, errlen, "%s: %s", p->dir, strerror(errno));
		return -1;
	}
	p->named = p->tmp[0] != '\0';
	if (p->named)
		flock(p->fd, LOCK_EX); /* tells gc it is not abandoned */
	else
		memcpy(p->tmp, p->dir, sizeof(p->tmp)); /* for messages */
	return 0;
}

static const char *pending_name(const struct pending *p)
{
	return p->named ? p->tmp : NULL;
}

static void pending_abort(struct pending *p)
{
	wholefile_discard(p->fd, pending_name(p));
	p->fd = -1;
}

static void maybe_gc(struct cache *c);

/* Make a finished download an entry: fsync, name it, open it read-only
 * under LOCK_SH. The bytes were verified while they streamed. */
static int pending_commit(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], struct pending *p,
			  uint64_t bytes, bool synced, int *fd, char *err, size_t errlen)
{
	char path[PATH_MAX];
	path_of(c, BLOBS_SUB, d, path, sizeof(path));
	if (fchmod(p->fd, 0444) < 0 || (!synced && !c->nosync && fsync(p->fd) < 0) ||
	    wholefile_publish(p->fd, pending_name(p), p->dir, p->hex, path) < 0) {
		snprintf(err, errlen, "cache: cannot store %s: %s", p->tmp, strerror(errno));
		pending_abort(p);
		return -1;
	}
	struct stat st;
	if (fstat(p->fd, &st) == 0) /* after the rename, which may change ctime */
		vset_add(c, d, &st);
	int f = -1;
	if (fd) {
		f = open(path, O_RDONLY | O_CLOEXEC);
		if (f < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			close(p->fd);
			return -1;
		}
	}
	close(p->fd);
	p->fd = -1;
	if (fd) {
		flock(f, LOCK_SH);
		*fd = f;
	}
	atomic_fetch_add(&c->bytes_fetched, bytes);
	atomic_fetch_add(&c->approx_bytes, bytes);
	maybe_gc(c);
	return 0;
}

/* SHA-256 of a large download on a second thread, which reads back from
 * the page cache what the network thread has written so far: hashing then
 * overlaps receiving instead of adding to it. Bytes are appended in order
 * exactly once (fetch.h), so the file's prefix is always final. */
struct trail {
	pthread_t th;
	int fd;
	pthread_mutex_t m;
	pthread_cond_t cv;
	uint64_t avail, hashed;
	bool done, failed;
	EVP_MD_CTX *md;
};

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

static int trail_start(struct trail *t, int fd)
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

static void trail_feed(struct trail *t, uint64_t avail)
{
	pthread_mutex_lock(&t->m);
	t->avail = avail;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->m);
}

/* Wait for the hasher; 0 with the digest, -1 if it could not read. */
static int trail_finish(struct trail *t, uint8_t out[FETCH_SHA256_LEN])
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

static int sink_write(void *ctx, const void *data, size_t len)
{
	struct pending *p = ctx;
	const char *s = data;
	if (p->max && len > p->max - p->written)
		return -1; /* more than the blob can be: never written */
	if (write_all(p->fd, s, len) < 0) {
		p->werr = errno; /* ENOSPC, EDQUOT, EIO: named in the error */
		return -1;
	}
	p->written += len;
	if (p->trail)
		trail_feed(p->trail, p->written);
	/* Start writeback while the rest streams in, so the final fsync of
	 * a large blob waits for the tail only. */
	if (p->written - p->flushed >= WRITEBACK_STEP) {
		sync_file_range(p->fd, (off_t)p->flushed, (off_t)(p->written - p->flushed),
				SYNC_FILE_RANGE_WRITE);
		p->flushed = p->written;
	}
	return 0;
}

static void count_hit(struct cache *c, int fd)
{
	struct stat st;
	atomic_fetch_add(&c->hits, 1);
	if (fstat(fd, &st) == 0)
		atomic_fetch_add(&c->bytes_served, (uint64_t)st.st_size);
}

static void name_err(char *err, size_t errlen, const uint8_t d[FETCH_SHA256_LEN], const char *what)
{
	char hex[FETCH_SHA256_HEX];
	fetch_sha256_to_hex(d, hex);
	if (!err || !errlen)
		return;
	int n = snprintf(err, errlen, "blob sha256:%s: ", hex);
	if (n < 0 || (size_t)n >= errlen)
		return;
	/* what may be err itself's source buffer: copy with bounds, truncating. */
	size_t room = errlen - (size_t)n - 1, wl = strlen(what);
	memmove(err + n, what, wl < room ? wl : room);
	err[n + (wl < room ? wl : room)] = '\0';
}

/* [off, off+len) of url (len 0: all of it), size bytes that must hash to d,
 * into an anonymous memory file: for a full cache disk. */
struct capped {
	struct pending p;
	uint64_t max;
};

static int sink_capped(void *ctx, const void *data, size_t len)
{
	struct capped *m = ctx;
	if (len > m->max - m->p.written)
		return -1; /* more than the blob's size: never held in memory */
	return sink_write(&m->p, data, len);
}

static int get_uncached(struct fetch_client *fc, const char *url, uint64_t off, uint64_t len,
			const uint8_t d[FETCH_SHA256_LEN], uint64_t size, int *fd, char *err,
			size_t errlen)
{
	struct capped cm = {.p = {.fd = memfd_create("minivmm-blob", MFD_CLOEXEC)}, .max = size};
	struct pending *mp = &cm.p;
	if (mp->fd < 0) {
		char what[FETCH_ERR_LEN];
		snprintf(what, sizeof(what), "cache disk full, and no memory file: %s", strerror(errno));
		name_err(err, errlen, d, what);
		return -1;
	}
	struct fetch_req q = {.url = url, .method = FETCH_GET, .offset = off, .length = len,
			      .sha256 = d, .sink = sink_capped, .sink_ctx = &cm};
	fetch_run(fc, &q, 1);
	if (q.result == 0 && q.bytes != size) {
		q.result = -1;
		snprintf(q.err, sizeof(q.err), "%s: %" PRIu64 " bytes, expected %" PRIu64, url, q.bytes, size);
	}
	if (q.result != 0) {
		if (mp->werr)
			snprintf(q.err, sizeof(q.err), "cache disk full, and memory too: %s", strerror(mp->werr));
		name_err(err, errlen, d, q.err);
		close(mp->fd);
		return -1;
	}
	*fd = mp->fd;
	return 0;
}

/* A blob the cache cannot hold is refused before a byte is fetched: the
 * manifest's size for it is the server's word, and writing gigabytes only
 * to evict them (or fail the digest) helps nobody. */
static int cache_refuse_size(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], uint64_t size,
			     char *err, size_t errlen)
{
	if (size == UINT64_MAX || size <= c->max)
		return 0;
	char what[200];
	snprintf(what, sizeof(what), "%" PRIu64 " bytes, more than the cache may hold "
		 "(--cache-max %" PRIu64 "): not fetching it", size, c->max);
	name_err(err, errlen, d, what);
	return -1;
}

/* The core of every get: the entry named d, which is [off, off+len) of url
 * (len 0: all of it) and must be size bytes long (UINT64_MAX: unknown). */
static int get_object(struct cache *c, struct fetch_client *fc, const char *url, uint64_t off,
		      uint64_t len, const uint8_t d[FETCH_SHA256_LEN], uint64_t size, int *fd,
		      bool *hit, char *err, size_t errlen)
{
	if (cache_refuse_size(c, d, size, err, errlen) < 0)
		return -1;
	int r = entry_open(c, d, size, false, fd, err, errlen);
	if (r < 0)
		return -1;
	if (r == ENTRY_OK) {
		count_hit(c, *fd);
		if (hit)
			*hit = true;
		return 0;
	}
	bool waited = false;
	int lfd = fetch_lock(c, d, true, &waited, err, errlen);
	if (lfd < 0)
		return -1;
	if (waited)
		atomic_fetch_add(&c->waits, 1);
	int rc = -1;
	r = entry_open(c, d, size, true, fd, err, errlen);
	if (r == ENTRY_OK) {
		count_hit(c, *fd);
		if (hit)
			*hit = true;
		rc = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	atomic_fetch_add(&c->misses, 1);
	if (hit)
		*hit = false;
	struct pending p;
	if (pending_create(c, d, &p, err, errlen) < 0)
		goto out;
	/* A large (or unknown) whole blob is hashed on a second thread. */
	struct trail t;
	bool trailing = !off && !len && (size == UINT64_MAX || size >= TRAIL_MIN) &&
			trail_start(&t, p.fd) == 0;
	p.trail = trailing ? &t : NULL;
	/* Never more bytes than the blob has (or, size unknown, than the
	 * cache holds). */
	p.max = size != UINT64_MAX ? size : c->max;
	struct fetch_req q = {.url = url, .method = FETCH_GET, .offset = off, .length = len,
			      .sha256 = trailing ? NULL : d, .sink = sink_write, .sink_ctx = &p,
			      .max_bytes = p.max};
	fetch_run(fc, &q, 1);
	if (trailing) {
		uint8_t got[FETCH_SHA256_LEN];
		int tr = trail_finish(&t, got);
		if (q.result == 0 && (tr < 0 || memcmp(got, d, FETCH_SHA256_LEN) != 0)) {
			char want_hex[FETCH_SHA256_HEX], got_hex[FETCH_SHA256_HEX];
			fetch_sha256_to_hex(d, want_hex);
			fetch_sha256_to_hex(got, got_hex);
			q.result = -1;
			if (tr < 0)
				snprintf(q.err, sizeof(q.err), "%s: cannot hash the download", url);
			else
				snprintf(q.err, sizeof(q.err), "%s: sha256 mismatch: expected %s, got %s", url,
					 want_hex, got_hex);
		}
	}
	if (q.result != 0) {
		int werr = p.werr;
		if (werr)
			snprintf(q.err, sizeof(q.err), "cache: cannot write %.400s: %s", p.tmp, strerror(werr));
		pending_abort(&p);
		uint64_t want = len ? len : size;
		if ((werr == ENOSPC || werr == EDQUOT) && fd && want != UINT64_MAX &&
		    want <= NOSPACE_MEMORY_MAX) {
			/* The disk is full, not the network down: fetch again into
			 * memory, verified the same way, and serve that uncached. */
			char hex[FETCH_SHA256_HEX];
			fetch_sha256_to_hex(d, hex);
			log_warn("cache: %s; serving sha256:%s (%" PRIu64 " bytes) from memory, uncached",
				 q.err, hex, want);
			rc = get_uncached(fc, url, off, len, d, want, fd, err, errlen);
			goto out;
		}
		name_err(err, errlen, d, q.err);
		goto out;
	}
	if (size != UINT64_MAX && q.bytes != size) {
		char what[FETCH_ERR_LEN];
		snprintf(what, sizeof(what), "%s: %" PRIu64 " bytes, expected %" PRIu64, url, q.bytes, size);
		name_err(err, errlen, d, what);
		pending_abort(&p);
		goto out;
	}
	rc = pending_commit(c, d, &p, q.bytes, false, fd, err, errlen);
out:
	fetch_unlock(c, d, lfd);
	return rc;
}

int cache_get_url(struct cache *c, struct fetch_client *fc, const char *url,
		  const uint8_t digest[FETCH_SHA256_LEN], uint64_t size, int *fd, bool *hit,
		  char *err, size_t errlen)
{
	return get_object(c, fc, url, 0, 0, digest, size, fd, hit, err, errlen);
}

int cache_get_blob(struct cache *c, struct fetch_client *fc, const char *blobs_base_url,
		   const uint8_t digest[FETCH_SHA256_LEN], uint64_t size, int *fd, bool *hit,
		   char *err, size_t errlen)
{
	char url[4096];
	if (fetch_blob_url(blobs_base_url, digest, url, sizeof(url)) < 0) {
		snprintf(err, errlen, "blob URL too long");
		return -1;
	}
	return get_object(c, fc, url, 0, 0, digest, size, fd, hit, err, errlen);
}

uint64_t cache_chunk_len(uint64_t blob_size, uint64_t chunk_size, uint64_t chunk_index)
{
	uint64_t start = chunk_index * chunk_size;
	return blob_size - start < chunk_size ? blob_size - start : chunk_size;
}

bool cache_has_chunk(struct cache *c, const uint8_t blob_digest[FETCH_SHA256_LEN],
		     uint64_t blob_size, uint64_t chunk_size, uint64_t chunk_index,
		     const uint8_t chunk_digest[FETCH_SHA256_LEN])
{
	return cache_has(c, chunk_digest, cache_chunk_len(blob_size, chunk_size, chunk_index)) ||
	       cache_has(c, blob_digest, blob_size);
}

int cache_get_chunk(struct cache *c, struct fetch_client *fc, const char *blobs_base_url,
		    const uint8_t blob_digest[FETCH_SHA256_LEN], uint64_t blob_size,
		    uint64_t chunk_size, uint64_t chunk_index,
		    const uint8_t chunk_digest[FETCH_SHA256_LEN],
		    int *fd, uint64_t *offset, uint64_t *len, char *err, size_t errlen)
{
	return cache_get_chunk_from(c, fc, blobs_base_url, blob_digest, blob_size, chunk_size,
				    chunk_index, chunk_digest, blob_digest, chunk_index * chunk_size,
				    fd, offset, len, err, errlen);
}

int cache_get_chunk_from(struct cache *c, struct fetch_client *fc, const char *blobs_base_url,
			 const uint8_t blob_digest[FETCH_SHA256_LEN], uint64_t blob_size,
			 uint64_t chunk_size, uint64_t chunk_index,
			 const uint8_t chunk_digest[FETCH_SHA256_LEN],
			 const uint8_t src[FETCH_SHA256_LEN], uint64_t src_offset,
			 int *fd, uint64_t *offset, uint64_t *len, char *err, size_t errlen)
{
	if (!chunk_size || blob_size == UINT64_MAX || chunk_index >= (blob_size + chunk_size - 1) / chunk_size) {
		name_err(err, errlen, blob_digest, "chunk index out of range");
		return -1;
	}
	uint64_t start = chunk_index * chunk_size;
	uint64_t clen = cache_chunk_len(blob_size, chunk_size, chunk_index);
	*len = clen;
	/* The whole blob, if present, serves every chunk. */
	int r = entry_open(c, blob_digest, blob_size, false, fd, err, errlen);
	if (r < 0)
		return -1;
	if (r == ENTRY_OK) {
		atomic_fetch_add(&c->hits, 1);
		atomic_fetch_add(&c->bytes_served, clen);
		*offset = start;
		return 0;
	}
	char url[4096];
	if (fetch_blob_url(blobs_base_url, src, url, sizeof(url)) < 0) {
		snprintf(err, errlen, "blob URL too long");
		return -1;
	}
	*offset = 0;
	return get_object(c, fc, url, src_offset, clen, chunk_digest, clen, fd, NULL, err, errlen);
}

/* The packed blob as it streams in, written at the file's own offsets:
 * each byte goes to the next chunk that is not a hole. Blocks of zeros
 * are skipped too (the file is new and empty), so the entry is sparse. */
struct expand {
	struct pending *p;
	const bool *hole;
	size_t n_chunks, chunk;
	uint64_t chunk_size, size, in_chunk;
};

static int sink_expand(void *ctx, const void *data, size_t len)
{
	struct expand *x = ctx;
	const uint8_t *d = data;
	while (len) {
		while (x->chunk < x->n_chunks && x->in_chunk == 0 && x->hole[x->chunk])
			x->chunk++;
		if (x->chunk >= x->n_chunks)
			return -1; /* more than the file's chunks hold */
		uint64_t at = (uint64_t)x->chunk * x->chunk_size;
		uint64_t clen = cache_chunk_len(x->size, x->chunk_size, x->chunk);
		size_t n = clen - x->in_chunk < len ? (size_t)(clen - x->in_chunk) : len;
		if (sparse_pwrite(x->p->fd, d, n, (off_t)(at + x->in_chunk)) < 0) {
			x->p->werr = errno;
			return -1;
		}
		x->p->written += n;
		d += n, len -= n, x->in_chunk += n;
		if (x->in_chunk == clen)
			x->chunk++, x->in_chunk = 0;
	}
	return 0;
}

int cache_get_packed(struct cache *c, struct fetch_client *fc, const char *blobs_base_url,
		     const uint8_t digest[FETCH_SHA256_LEN], uint64_t size, uint64_t chunk_size,
		     const bool *hole, size_t n_chunks, const uint8_t src[FETCH_SHA256_LEN],
		     uint64_t src_size, int *fd, bool *hit, char *err, size_t errlen)
{
	if (!chunk_size || n_chunks != (size + chunk_size - 1) / chunk_size || src_size > size) {
		name_err(err, errlen, digest, "packed file: chunks and size disagree");
		return -1;
	}
	if (cache_refuse_size(c, digest, size, err, errlen) < 0)
		return -1;
	int r = entry_open(c, digest, size, false, fd, err, errlen);
	if (r == ENTRY_OK) {
		count_hit(c, *fd);
		if (hit)
			*hit = true;
		return 0;
	}
	if (r < 0)
		return -1;
	bool waited = false;
	int lfd = fetch_lock(c, digest, true, &waited, err, errlen);
	if (lfd < 0)
		return -1;
	if (waited)
		atomic_fetch_add(&c->waits, 1);
	int rc = -1;
	r = entry_open(c, digest, size, true, fd, err, errlen);
	if (r == ENTRY_OK) {
		count_hit(c, *fd);
		if (hit)
			*hit = true;
		rc = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	atomic_fetch_add(&c->misses, 1);
	if (hit)
		*hit = false;
	char url[4096];
	struct pending p;
	if (fetch_blob_url(blobs_base_url, src, url, sizeof(url)) < 0) {
		name_err(err, errlen, digest, "blob URL too long");
		goto out;
	}
	if (pending_create(c, digest, &p, err, errlen) < 0)
		goto out;
	struct expand x = {.p = &p, .hole = hole, .n_chunks = n_chunks, .chunk_size = chunk_size,
			   .size = size};
	/* The packed bytes must be the blob src names; the file they expand
	 * to must be the one digest names: only then does it get that name. */
	struct fetch_req q = {.url = url, .method = FETCH_GET, .sha256 = src, .sink = sink_expand,
			      .sink_ctx = &x, .max_bytes = src_size};
	fetch_run(fc, &q, 1);
	uint8_t got[FETCH_SHA256_LEN];
	if (q.result == 0 && q.bytes != src_size) {
		q.result = -1;
		snprintf(q.err, sizeof(q.err), "%.400s: %" PRIu64 " bytes, expected %" PRIu64, url,
			 q.bytes, src_size);
	}
	if (q.result == 0 && (ftruncate(p.fd, (off_t)size) < 0 || hash_fd(p.fd, 0, size, got) < 0 ||
			      memcmp(got, digest, FETCH_SHA256_LEN) != 0)) {
		q.result = -1;
		snprintf(q.err, sizeof(q.err), "%.400s: expanded, it does not match the file's digest", url);
	}
	if (q.result != 0) {
		if (p.werr)
			snprintf(q.err, sizeof(q.err), "cache: cannot write %.400s: %s", p.tmp,
				 strerror(p.werr));
		pending_abort(&p);
		name_err(err, errlen, digest, q.err);
		goto out;
	}
	rc = pending_commit(c, digest, &p, q.bytes, false, fd, err, errlen);
out:
	fetch_unlock(c, digest, lfd);
	return rc;
}

bool cache_has(struct cache *c, const uint8_t digest[FETCH_SHA256_LEN], uint64_t size)
{
	char path[PATH_MAX];
	struct stat st;
	if (path_of(c, BLOBS_SUB, digest, path, sizeof(path)) < 0 || stat(path, &st) < 0)
		return false;
	return size == UINT64_MAX || (uint64_t)st.st_size == size;
}

/* --- stats, usage, gc --- */

void cache_get_stats(struct cache *c, struct cache_stats *o)
{
	o->hits = atomic_load(&c->hits);
	o->misses = atomic_load(&c->misses);
	o->waits = atomic_load(&c->waits);
	o->bytes_fetched = atomic_load(&c->bytes_fetched);
	o->bytes_served_from_cache = atomic_load(&c->bytes_served);
	o->corrupt_refetched = atomic_load(&c->corrupt);
	o->evictions = atomic_load(&c->evictions);
	o->bytes_evicted = atomic_load(&c->bytes_evicted);
	o->tmp_removed = atomic_load(&c->tmp_removed);
}

struct ent {
	char name[FETCH_SHA256_HEX];
	uint64_t size;
	struct timespec mtime;
};

/* Every entry under blobs/ (names that are not 64 hex digits are ignored). */
static int list_entries(struct cache *c, struct ent **out, size_t *n)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", c->dir, BLOBS_SUB);
	DIR *dp = opendir(path);
	if (!dp)
		return -1;
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	struct dirent *de;
	uint8_t d[FETCH_SHA256_LEN];
	while ((de = readdir(dp))) {
		if (fetch_hex_to_sha256(de->d_name, d) < 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			struct ent *p = realloc(*out, cap * sizeof(**out));
			if (!p) {
				closedir(dp);
				free(*out);
				*out = NULL;
				return -1;
			}
			*out = p;
		}
		struct ent *en = &(*out)[(*n)++];
		fetch_sha256_to_hex(d, en->name);
		en->size = (uint64_t)st.st_size;
		en->mtime = st.st_mtim;
	}
	closedir(dp);
	return 0;
}

static uint64_t scan_bytes(struct cache *c)
{
	struct ent *e;
	size_t n;
	uint64_t sum = 0;
	if (list_entries(c, &e, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		sum += e[i].size;
	free(e);
	return sum;
}

static int cmp_lru(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Seconds since st's mtime; 0 for a time ahead of ours. File times can be
 * finer-grained than time(2) (multigrain timestamps, Linux 6.13), so a file
 * written this instant may look up to a second in the future: as an
 * unsigned difference that was an age of 2^64 s, and gc removed a download
 * in progress as "abandoned". */
static uint64_t file_age_s(const struct stat *st)
{
	int64_t age = (int64_t)time(NULL) - (int64_t)st->st_mtime;
	return age > 0 ? (uint64_t)age : 0;
}

/* Remove dir/sub/name if nobody holds a lock on it: 1 removed, 0 in use. */
static int remove_if_unlocked(struct cache *c, const char *sub, const char *name, uint64_t min_age_s)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s/%s", c->dir, sub, name);
	int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0)
		return 0;
	int removed = 0;
	struct stat a, b;
	if (flock(f, LOCK_EX | LOCK_NB) == 0 && fstat(f, &a) == 0 &&
	    file_age_s(&a) >= min_age_s && stat(path, &b) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev && unlink(path) == 0)
		removed = 1;
	close(f);
	return removed;
}

/* Remove what nobody holds in dir/sub; returns how many. */
static uint64_t sweep_dir(struct cache *c, const char *sub, uint64_t min_age_s, bool locks_of_absent)
{
	char path[PATH_MAX];
	uint64_t removed = 0;
	snprintf(path, sizeof(path), "%s/%s", c->dir, sub);
	DIR *dp = opendir(path);
	if (!dp)
		return 0;
	struct dirent *de;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		if (locks_of_absent) {
			uint8_t d[FETCH_SHA256_LEN];
			if (fetch_hex_to_sha256(de->d_name, d) < 0 || cache_has(c, d, UINT64_MAX))
				continue;
		}
		removed += (uint64_t)remove_if_unlocked(c, sub, de->d_name, min_age_s);
	}
	closedir(dp);
	return removed;
}

static long gc_to(struct cache *c, uint64_t target, uint64_t tmp_age_s)
{
	struct ent *e;
	size_t n;
	if (list_entries(c, &e, &n) < 0)
		return -1;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += e[i].size;
	long evicted = 0;
	if (total > target) {
		qsort(e, n, sizeof(*e), cmp_lru);
		for (size_t i = 0; i < n && total > target; i++) {
			if (!remove_if_unlocked(c, BLOBS_SUB, e[i].name, 0))
				continue; /* in use by a running VM */
			total -= e[i].size;
			evicted++;
			atomic_fetch_add(&c->evictions, 1);
			atomic_fetch_add(&c->bytes_evicted, e[i].size);
		}
	}
	atomic_store(&c->approx_bytes, total);
	free(e);
	/* Downloads of killed processes: unlocked, and old enough not to be
	 * one that has not taken its lock yet. */
	atomic_fetch_add(&c->tmp_removed, sweep_dir(c, TMP_SUB, tmp_age_s, false));
	sweep_dir(c, LOCKS_SUB, 0, true);
	return evicted;
}

long cache_gc(struct cache *c, uint64_t max_bytes)
{
	return gc_to(c, max_bytes == UINT64_MAX ? c->max : max_bytes, TMP_ABANDONED_S);
}

long cache_clear(struct cache *c)
{
	return gc_to(c, 0, 0);
}

static void maybe_gc(struct cache *c)
{
	if (atomic_load(&c->approx_bytes) <= c->max)
		return;
	if (atomic_flag_test_and_set(&c->gc_busy))
		return; /* another thread is at it */
	long n = gc_to(c, c->max / 100 * AUTO_GC_PERCENT, TMP_ABANDONED_S);
	if (n > 0)
		log_debug("cache: evicted %ld blobs", n);
	atomic_flag_clear(&c->gc_busy);
}

int cache_usage(struct cache *c, struct cache_usage *u)
{
	memset(u, 0, sizeof(*u));
	struct ent *e;
	size_t n;
	if (list_entries(c, &e, &n) < 0)
		return -1;
	char path[PATH_MAX];
	for (size_t i = 0; i < n; i++) {
		u->blobs++;
		u->bytes += e[i].size;
		snprintf(path, sizeof(path), "%s/%s/%s", c->dir, BLOBS_SUB, e[i].name);
		int f = open(path, O_RDONLY | O_CLOEXEC);
		if (f < 0)
			continue;
		if (flock(f, LOCK_EX | LOCK_NB) < 0)
			u->in_use++;
		close(f);
	}
	free(e);
	snprintf(path, sizeof(path), "%s/%s", c->dir, TMP_SUB);
	DIR *dp = opendir(path);
	if (dp) {
		struct dirent *de;
		while ((de = readdir(dp)))
			if (de->d_name[0] != '.')
				u->tmp_files++;
		closedir(dp);
	}
	return 0;
}
