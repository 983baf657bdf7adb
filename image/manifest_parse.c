/*
 * The manifest parser: JSON (or zstd-compressed JSON) to entries, strict:
 * everything parsed here may come from the network, so every field is
 * type-checked and bounded (manifest_bound.c limits the work first), and
 * the result is validated (manifest_validate.c) before anyone uses it.
 */
#include "image/manifest_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* zstd frame magic, little-endian (RFC 8878 section 3.1.1). */
static const uint8_t zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};

struct pctx {
	char *err;
	size_t errlen;
	char where[300]; /* "entry 5" or "boot" */
};

static int perr(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct pctx *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->where[0])
		manifest_seterr(c->err, c->errlen, "%s: %s", c->where, msg);
	else
		manifest_seterr(c->err, c->errlen, "%s", msg);
	return -1;
}

/* Every key of obj must be one of allowed (NULL-terminated). */
static int check_keys(struct pctx *c, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				ok = true;
		if (!ok)
			return perr(c, "unknown key \"%.60s\"", key);
	}
	return 0;
}

static int get_u64(struct pctx *c, json_t *obj, const char *key, bool required,
		   uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v) {
		if (required)
			return perr(c, "missing \"%s\"", key);
		*out = 0;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return perr(c, "\"%s\" is not an integer from 0 to %llu", key,
			    (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_str(struct pctx *c, json_t *obj, const char *key, bool required, char **out)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v) {
		if (required)
			return perr(c, "missing \"%s\"", key);
		return 0;
	}
	if (!json_is_string(v))
		return perr(c, "\"%s\" is not a string", key);
	if (!(*out = strdup(json_string_value(v))))
		return perr(c, "out of memory");
	return 0;
}

/* A byte string stored as "key" (UTF-8 text) or "key_b64" (base64 of the
 * bytes, for names that are not UTF-8): exactly one of them, no NUL. */
static int get_bytes_str(struct pctx *c, json_t *obj, const char *key, bool required, char **out)
{
	char bkey[64];
	snprintf(bkey, sizeof(bkey), "%s_b64", key);
	json_t *t = json_object_get(obj, key), *b = json_object_get(obj, bkey);
	*out = NULL;
	if (t && b)
		return perr(c, "both \"%s\" and \"%s\"", key, bkey);
	if (!t && !b)
		return required ? perr(c, "missing \"%s\"", key) : 0;
	if (t)
		return get_str(c, obj, key, true, out);
	if (!json_is_string(b))
		return perr(c, "\"%s\" is not a string", bkey);
	size_t n;
	uint8_t *d = manifest_b64_decode(json_string_value(b), json_string_length(b), &n);
	if (!d)
		return perr(c, "\"%s\" is not valid base64", bkey);
	if (memchr(d, '\0', n)) {
		free(d);
		return perr(c, "\"%s\" holds a NUL byte", bkey);
	}
	*out = (char *)d;
	return 0;
}

static int get_digest(struct pctx *c, json_t *v, const char *what, uint8_t out[MANIFEST_DIGEST_LEN])
{
	if (!json_is_string(v) || json_string_length(v) != 2 * MANIFEST_DIGEST_LEN ||
	    manifest_hex_digest(json_string_value(v), out) < 0)
		return perr(c, "%s is not 64 lowercase hex digits", what);
	return 0;
}

static int parse_blob_ref(struct pctx *c, json_t *obj, const char *key, struct manifest_blob_ref *r)
{
	static const char *const keys[] = {"digest", "size", NULL};
	json_t *v = json_object_get(obj, key);
	memset(r, 0, sizeof(*r));
	if (!v || json_is_null(v))
		return 0;
	char saved[sizeof(c->where)];
	memcpy(saved, c->where, sizeof(saved));
	snprintf(c->where, sizeof(c->where), "%.200s.%.60s", saved, key);
	int rc = -1;
	if (!json_is_object(v)) {
		perr(c, "not an object");
		goto out;
	}
	if (check_keys(c, v, keys) < 0 || get_u64(c, v, "size", true, INT64_MAX, &r->size) < 0)
		goto out;
	json_t *d = json_object_get(v, "digest");
	if (!d) {
		perr(c, "missing \"digest\"");
		goto out;
	}
	if (get_digest(c, d, "\"digest\"", r->digest) < 0)
		goto out;
	r->present = true;
	rc = 0;
out:
	memcpy(c->where, saved, sizeof(saved));
	return rc;
}

/* At most max strings are kept; the rest are ignored (a hint list such as
 * the profile must not cost unbounded memory). */
static int parse_strv(struct pctx *c, json_t *obj, const char *key, size_t max, char ***out,
		      size_t *n)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	*n = 0;
	if (!v)
		return 0;
	if (!json_is_array(v))
		return perr(c, "\"%s\" is not an array", key);
	size_t len = json_array_size(v);
	if (len > max)
		len = max;
	if (!len)
		return 0;
	if (!(*out = calloc(len, sizeof(char *))))
		return perr(c, "out of memory");
	for (size_t i = 0; i < len; i++) {
		json_t *s = json_array_get(v, i);
		const char *txt = NULL;
		char *bytes = NULL;
		if (json_is_string(s)) {
			txt = json_string_value(s);
		} else if (json_is_object(s) && json_is_string(json_object_get(s, "b64"))) {
			json_t *b = json_object_get(s, "b64");
			size_t bl;
			bytes = (char *)manifest_b64_decode(json_string_value(b), json_string_length(b), &bl);
			if (!bytes || memchr(bytes, '\0', bl)) {
				free(bytes);
				return perr(c, "\"%s\"[%zu] is not valid base64 of a path", key, i);
			}
		} else {
			return perr(c, "\"%s\"[%zu] is not a path", key, i);
		}
		(*out)[i] = bytes ? bytes : strdup(txt);
		if (!(*out)[i])
			return perr(c, "out of memory");
		(*n)++;
	}
	return 0;
}

/* boot.files: bounded, not cut (each is fetched before boot). */
static int parse_boot_files(struct pctx *c, json_t *boot, struct manifest *m)
{
	json_t *v = json_object_get(boot, "files");
	if (json_is_array(v) && json_array_size(v) > MANIFEST_MAX_BOOT_FILES)
		return perr(c, "\"files\" lists %zu paths, more than %d", json_array_size(v),
			    MANIFEST_MAX_BOOT_FILES);
	return parse_strv(c, boot, "files", MANIFEST_MAX_BOOT_FILES, &m->boot_files,
			  &m->n_boot_files);
}

static int parse_type(const char *s, enum manifest_type *t)
{
	for (size_t i = 0; i < manifest_n_types; i++)
		if (strcmp(s, manifest_type_names[i]) == 0) {
			*t = (enum manifest_type)i;
			return 0;
		}
	return -1;
}

static int parse_entry(struct pctx *c, json_t *o, const struct manifest *m,
		       struct manifest_entry *e)
{
	static const char *const keys[] = {
		"path", "path_b64", "type", "mode", "uid", "gid", "mtime", "mtime_nsec",
		"size", "target", "target_b64", "rdev", "digest", "chunks", "xattrs", "blob", NULL};
	if (!json_is_object(o))
		return perr(c, "not an object");
	/* Unknown keys: count the known ones present (one hash lookup each)
	 * rather than comparing every key with the list; the slow check only
	 * runs to name the culprit. 100,000 entries make this worth it. */
	size_t known = 0;
	for (const char *const *k = keys; *k; k++)
		known += json_object_get(o, *k) != NULL;
	if (known != json_object_size(o) && check_keys(c, o, keys) < 0)
		return -1;
	if (get_bytes_str(c, o, "path", true, &e->path) < 0)
		return -1;
	json_t *t = json_object_get(o, "type");
	if (!json_is_string(t) || parse_type(json_string_value(t), &e->type) < 0)
		return perr(c, "\"type\" is missing or not one of reg, dir, symlink, hardlink, "
			    "chr, blk, fifo, sock");
	uint64_t v;
	if (get_u64(c, o, "mode", true, 07777, &v) < 0)
		return -1;
	e->mode = (uint32_t)v;
	if (get_u64(c, o, "uid", true, UINT32_MAX, &v) < 0)
		return -1;
	e->uid = (uint32_t)v;
	if (get_u64(c, o, "gid", true, UINT32_MAX, &v) < 0)
		return -1;
	e->gid = (uint32_t)v;
	json_t *mt = json_object_get(o, "mtime");
	if (!json_is_integer(mt))
		return perr(c, "\"mtime\" is missing or not an integer");
	e->mtime_sec = json_integer_value(mt);
	if (get_u64(c, o, "mtime_nsec", false, 999999999, &v) < 0)
		return -1;
	e->mtime_nsec = (uint32_t)v;
	if (get_u64(c, o, "size", e->type == MF_REG, INT64_MAX, &e->size) < 0 ||
	    get_u64(c, o, "rdev", false, UINT64_MAX >> 1, &e->rdev) < 0 ||
	    get_bytes_str(c, o, "target", false, &e->target) < 0)
		return -1;
	json_t *d = json_object_get(o, "digest");
	if (d) {
		if (get_digest(c, d, "\"digest\"", e->digest) < 0)
			return -1;
		e->has_digest = true;
	}
	json_t *ch = json_object_get(o, "chunks");
	if (ch) {
		if (!json_is_array(ch))
			return perr(c, "\"chunks\" is not an array");
		size_t n = json_array_size(ch);
		/* Checked against the size before allocating, so a forged
		 * list cannot make us allocate more than the file needs. */
		if (e->type != MF_REG || n != manifest_chunk_count(e->size, m->chunk_size))
			return perr(c, "\"chunks\" has %zu digests, size %llu needs %zu", n,
				    (unsigned long long)e->size,
				    e->type == MF_REG ? manifest_chunk_count(e->size, m->chunk_size) : 0);
		if (n && !(e->chunks = malloc(n * sizeof(*e->chunks))))
			return perr(c, "out of memory");
		for (size_t i = 0; i < n; i++) {
			char what[48];
			snprintf(what, sizeof(what), "chunk %zu", i);
			if (get_digest(c, json_array_get(ch, i), what, e->chunks[i]) < 0)
				return -1;
		}
		e->n_chunks = n;
	}
	json_t *pb = json_object_get(o, "blob");
	if (pb) {
		/* A key of version 2: a version 1 reader would not know it. */
		if (m->version < MANIFEST_VERSION_PACKED)
			return perr(c, "unknown key \"blob\" (packed files need manifest version %d)",
				    MANIFEST_VERSION_PACKED);
		if (e->type != MF_REG || !e->n_chunks)
			return perr(c, "\"blob\" on an entry that is not a chunked regular file");
		if (get_digest(c, pb, "\"blob\"", e->blob) < 0)
			return -1;
		e->packed = true;
	}
	json_t *xs = json_object_get(o, "xattrs");
	if (xs) {
		static const char *const xkeys[] = {"name", "value_b64", NULL};
		if (!json_is_array(xs))
			return perr(c, "\"xattrs\" is not an array");
		size_t n = json_array_size(xs);
		if (n && !(e->xattrs = calloc(n, sizeof(*e->xattrs))))
			return perr(c, "out of memory");
		for (size_t i = 0; i < n; i++) {
			json_t *x = json_array_get(xs, i), *val;
			struct manifest_xattr *mx = &e->xattrs[i];
			e->n_xattrs = i + 1;
			if (!json_is_object(x) || check_keys(c, x, xkeys) < 0 ||
			    get_str(c, x, "name", true, &mx->name) < 0)
				return perr(c, "xattr %zu is not {\"name\", \"value_b64\"}", i);
			val = json_object_get(x, "value_b64");
			if (!json_is_string(val) ||
			    !(mx->value = manifest_b64_decode(json_string_value(val), json_string_length(val), &mx->len)))
				return perr(c, "xattr %zu: \"value_b64\" is not valid base64", i);
		}
	}
	return 0;
}

static int parse_json(json_t *root, struct manifest *m, char *err, size_t errlen)
{
	static const char *const keys[] = {"version", "name", "chunk_size", "blobs", "total_bytes",
					   "boot", "disk", "entries", NULL};
	static const char *const boot_keys[] = {"kernel", "initrd_lazy", "initrd_full", "cmdline",
						"files", "profile", NULL};
	struct pctx c = {err, errlen, ""};
	uint64_t v;
	if (!json_is_object(root))
		return perr(&c, "the manifest is not a JSON object");
	json_t *ver = json_object_get(root, "version");
	if (!json_is_integer(ver))
		return perr(&c, "missing or non-integer \"version\"");
	if (json_integer_value(ver) < MANIFEST_VERSION_MIN ||
	    json_integer_value(ver) > MANIFEST_VERSION)
		return perr(&c, "unsupported manifest version %lld (this minivmm reads versions %d "
			    "to %d)", (long long)json_integer_value(ver), MANIFEST_VERSION_MIN,
			    MANIFEST_VERSION);
	m->version = (int)json_integer_value(ver);
	if (check_keys(&c, root, keys) < 0 || get_str(&c, root, "name", false, &m->name) < 0 ||
	    get_u64(&c, root, "chunk_size", true, MANIFEST_MAX_CHUNK, &m->chunk_size) < 0 ||
	    get_str(&c, root, "blobs", true, &m->blobs_url) < 0 ||
	    get_u64(&c, root, "total_bytes", true, UINT64_MAX >> 1, &v) < 0)
		return -1;
	m->total_bytes = v;
	if (m->chunk_size < MANIFEST_MIN_CHUNK || (m->chunk_size & (m->chunk_size - 1)))
		return perr(&c, "chunk_size %llu is not a power of two from %llu to %llu",
			    (unsigned long long)m->chunk_size, MANIFEST_MIN_CHUNK, MANIFEST_MAX_CHUNK);

	json_t *boot = json_object_get(root, "boot");
	if (boot) {
		snprintf(c.where, sizeof(c.where), "boot");
		if (!json_is_object(boot))
			return perr(&c, "not an object");
		if (check_keys(&c, boot, boot_keys) < 0 ||
		    parse_blob_ref(&c, boot, "kernel", &m->kernel) < 0 ||
		    parse_blob_ref(&c, boot, "initrd_lazy", &m->initrd_lazy) < 0 ||
		    parse_blob_ref(&c, boot, "initrd_full", &m->initrd_full) < 0 ||
		    get_str(&c, boot, "cmdline", false, &m->cmdline) < 0 ||
		    parse_boot_files(&c, boot, m) < 0 ||
		    parse_strv(&c, boot, "profile", MANIFEST_MAX_PROFILE, &m->profile,
			       &m->n_profile) < 0)
			return -1;
		c.where[0] = '\0';
	}
	json_t *disk = json_object_get(root, "disk");
	if (disk) {
		static const char *const dkeys[] = {"digest", "size", "format", "tree", NULL};
		snprintf(c.where, sizeof(c.where), "disk");
		json_t *fmt = json_object_get(disk, "format");
		if (!json_is_object(disk) || check_keys(&c, disk, dkeys) < 0)
			return perr(&c, "not an object with digest, size, format");
		if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "ext4") != 0)
			return perr(&c, "\"format\" is not \"ext4\"");
		if (get_u64(&c, disk, "size", true, INT64_MAX, &m->disk.size) < 0 ||
		    get_digest(&c, json_object_get(disk, "digest"), "\"digest\"", m->disk.digest) < 0)
			return -1;
		json_t *tree = json_object_get(disk, "tree");
		if (tree && get_digest(&c, tree, "\"tree\"", m->disk_tree) < 0)
			return -1;
		m->disk_tree_present = tree != NULL;
		m->disk.present = true;
		c.where[0] = '\0';
	}

	json_t *entries = json_object_get(root, "entries");
	if (!json_is_array(entries))
		return perr(&c, "missing \"entries\" array");
	size_t n = json_array_size(entries);
	if (!n)
		return perr(&c, "\"entries\" is empty (the root directory is missing)");
	if (n > MANIFEST_MAX_ENTRIES)
		return perr(&c, "%zu entries, more than the %u an image may have", n,
			    MANIFEST_MAX_ENTRIES);
	if (!(m->entries = calloc(n, sizeof(*m->entries))))
		return perr(&c, "out of memory");
	for (size_t i = 0; i < n; i++) {
		snprintf(c.where, sizeof(c.where), "entry %zu", i);
		m->n_entries = i + 1;
		if (parse_entry(&c, json_array_get(entries, i), m, &m->entries[i]) < 0)
			return -1;
	}
	return manifest_validate(m, err, errlen);
}

int manifest_parse(const void *buf, size_t len, struct manifest *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	void *plain = NULL;
	if (len >= 4 && memcmp(buf, zstd_magic, 4) == 0) {
		if (!(plain = manifest_zstd_unpack(buf, len, &len, err, errlen)))
			return -1;
		buf = plain;
	} else {
		struct json_scan sc = {0};
		if (len > MANIFEST_MAX_BYTES) {
			manifest_seterr(err, errlen, "manifest larger than %llu bytes", MANIFEST_MAX_BYTES);
			return -1;
		}
		if (manifest_scan_feed(&sc, buf, len, err, errlen) < 0)
			return -1;
	}
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(plain);
	if (!root) {
		manifest_seterr(err, errlen, "not valid JSON (truncated or damaged?): %s at line %d column %d",
		       jerr.text, jerr.line, jerr.column);
		return -1;
	}
	int rc = parse_json(root, m, err, errlen);
	json_decref(root);
	if (rc < 0)
		manifest_free(m);
	return rc;
}

static int read_whole(const char *path, void **out, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		manifest_seterr(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MANIFEST_MAX_BYTES) {
		manifest_seterr(err, errlen, "%s: not a regular file, or larger than %llu bytes", path,
		       MANIFEST_MAX_BYTES);
		close(fd);
		return -1;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		manifest_seterr(err, errlen, "%s: short read", path);
		free(buf);
		return -1;
	}
	*out = buf;
	*len = got;
	return 0;
}

int manifest_load_file(const char *path, struct manifest *m, char *err, size_t errlen)
{
	void *buf;
	size_t len;
	memset(m, 0, sizeof(*m));
	if (read_whole(path, &buf, &len, err, errlen) < 0)
		return -1;
	char why[512];
	int rc = manifest_parse(buf, len, m, why, sizeof(why));
	free(buf);
	if (rc < 0)
		manifest_seterr(err, errlen, "%s: %s", path, why);
	return rc;
}

