/*
 * The content-addressed cache (contract in cache.h, design in
 * docs/storage.md): opening it, entries and their verification, the fetch
 * locks and pending downloads. Downloads are in cache_get.c, eviction and
 * stats in cache_gc.c, the trailing hash in cache_trail.c. Cross-process safety rests on three flock rules:
 *   - locks/<hex> LOCK_EX while a process fetches <hex>;
 *   - a blob is held LOCK_SH by every fd handed out (in use);
 *   - eviction takes LOCK_EX|LOCK_NB on the blob, so it skips blobs in use,
 *     and a temporary file is written under LOCK_EX so gc can tell an
 *     abandoned download (unlocked) from a live one.
 */
#include "fetch/cache_priv.h"
#include "lib/mkdir_p.h"
#include "lib/wholefile.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOUCH_INTERVAL_S 60      /* LRU time is refreshed at most this often */
#define OPEN_RETRIES 4

/* --- paths --- */

int cache_path_of(const struct cache *c, const char *sub, const uint8_t d[FETCH_SHA256_LEN],
		  char *out, size_t len)
{
	char hex[FETCH_SHA256_HEX];
	fetch_sha256_to_hex(d, hex);
	int n = snprintf(out, len, "%s/%s/%s", c->dir, sub, hex);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

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
	atomic_store(&c->approx_bytes, cache_scan_bytes(c));
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

int cache_hash_fd(int fd, uint64_t off, uint64_t len, uint8_t out[FETCH_SHA256_LEN])
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
int cache_entry_open(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], uint64_t size,
		     bool remove_bad, int *fd, char *err, size_t errlen)
{
	char path[PATH_MAX];
	if (cache_path_of(c, BLOBS_SUB, d, path, sizeof(path)) < 0) {
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
			if (cache_hash_fd(f, 0, (uint64_t)st.st_size, got) < 0 ||
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
int cache_fetch_lock(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], bool block,
		     bool *waited, char *err, size_t errlen)
{
	char path[PATH_MAX];
	if (cache_path_of(c, LOCKS_SUB, d, path, sizeof(path)) < 0) {
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
 * progress. A waiter that opened the old file notices (cache_fetch_lock compares
 * inodes) and locks a fresh one, then finds the entry. */
void cache_fetch_unlock(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], int lfd)
{
	char path[PATH_MAX];
	if (cache_path_of(c, LOCKS_SUB, d, path, sizeof(path)) == 0)
		unlink(path);
	close(lfd);
}

int cache_pending_create(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], struct pending *p,
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

void cache_pending_abort(struct pending *p)
{
	wholefile_discard(p->fd, pending_name(p));
	p->fd = -1;
}

/* Make a finished download an entry: fsync, name it, open it read-only
 * under LOCK_SH. The bytes were verified while they streamed. */
int cache_pending_commit(struct cache *c, const uint8_t d[FETCH_SHA256_LEN], struct pending *p,
			 uint64_t bytes, int *fd, char *err, size_t errlen)
{
	char path[PATH_MAX];
	cache_path_of(c, BLOBS_SUB, d, path, sizeof(path));
	if (fchmod(p->fd, 0444) < 0 || (!c->nosync && fsync(p->fd) < 0) ||
	    wholefile_publish(p->fd, pending_name(p), p->dir, p->hex, path) < 0) {
		snprintf(err, errlen, "cache: cannot store %s: %s", p->tmp, strerror(errno));
		cache_pending_abort(p);
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
	cache_maybe_gc(c);
	return 0;
}

void cache_count_hit(struct cache *c, int fd)
{
	struct stat st;
	atomic_fetch_add(&c->hits, 1);
	if (fstat(fd, &st) == 0)
		atomic_fetch_add(&c->bytes_served, (uint64_t)st.st_size);
}

void cache_name_err(char *err, size_t errlen, const uint8_t d[FETCH_SHA256_LEN], const char *what)
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

bool cache_has(struct cache *c, const uint8_t digest[FETCH_SHA256_LEN], uint64_t size)
{
	char path[PATH_MAX];
	struct stat st;
	if (cache_path_of(c, BLOBS_SUB, digest, path, sizeof(path)) < 0 || stat(path, &st) < 0)
		return false;
	return size == UINT64_MAX || (uint64_t)st.st_size == size;
}
