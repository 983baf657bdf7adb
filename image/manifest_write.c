/*
 * The manifest writer: entries to deterministic JSON (zstd-compressed on
 * request), validated first; and the tree digest, the SHA-256 of the
 * uncompressed form.
 */
#include "image/manifest_priv.h"
#include "lib/io.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#define MANIFEST_ZSTD_LEVEL 19

/* --- writing --- */

static int set_bytes_str(json_t *o, const char *key, const char *s)
{
	size_t n = strlen(s);
	if (manifest_utf8_valid((const unsigned char *)s, n))
		return json_object_set_new(o, key, json_stringn(s, n));
	char bkey[64];
	snprintf(bkey, sizeof(bkey), "%s_b64", key);
	char *b = manifest_b64_encode((const uint8_t *)s, n);
	if (!b)
		return -1;
	int rc = json_object_set_new(o, bkey, json_string(b));
	free(b);
	return rc;
}

static json_t *path_value(const char *s)
{
	size_t n = strlen(s);
	if (manifest_utf8_valid((const unsigned char *)s, n))
		return json_stringn(s, n);
	char *b = manifest_b64_encode((const uint8_t *)s, n);
	json_t *o = json_object();
	json_object_set_new(o, "b64", json_string(b ? b : ""));
	free(b);
	return o;
}

static json_t *digest_value(const uint8_t d[MANIFEST_DIGEST_LEN])
{
	char hex[2 * MANIFEST_DIGEST_LEN + 1];
	manifest_digest_hex(d, hex);
	return json_string(hex);
}

static json_t *blob_ref_value(const struct manifest_blob_ref *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "digest", digest_value(r->digest));
	json_object_set_new(o, "size", json_integer((json_int_t)r->size));
	return o;
}

static json_t *entry_value(const struct manifest_entry *e)
{
	json_t *o = json_object();
	set_bytes_str(o, "path", e->path);
	json_object_set_new(o, "type", json_string(manifest_type_name(e->type)));
	json_object_set_new(o, "mode", json_integer(e->mode));
	json_object_set_new(o, "uid", json_integer(e->uid));
	json_object_set_new(o, "gid", json_integer(e->gid));
	json_object_set_new(o, "mtime", json_integer(e->mtime_sec));
	if (e->mtime_nsec)
		json_object_set_new(o, "mtime_nsec", json_integer(e->mtime_nsec));
	if (e->type == MF_REG || e->type == MF_SYMLINK)
		json_object_set_new(o, "size", json_integer((json_int_t)e->size));
	if (e->target)
		set_bytes_str(o, "target", e->target);
	if (e->type == MF_CHR || e->type == MF_BLK)
		json_object_set_new(o, "rdev", json_integer((json_int_t)e->rdev));
	if (e->has_digest)
		json_object_set_new(o, "digest", digest_value(e->digest));
	if (e->n_chunks) {
		json_t *a = json_array();
		for (size_t i = 0; i < e->n_chunks; i++)
			json_array_append_new(a, digest_value(e->chunks[i]));
		json_object_set_new(o, "chunks", a);
	}
	if (e->packed)
		json_object_set_new(o, "blob", digest_value(e->blob));
	if (e->n_xattrs) {
		json_t *a = json_array();
		for (size_t i = 0; i < e->n_xattrs; i++) {
			json_t *x = json_object();
			char *b = manifest_b64_encode(e->xattrs[i].value, e->xattrs[i].len);
			json_object_set_new(x, "name", json_string(e->xattrs[i].name));
			json_object_set_new(x, "value_b64", json_string(b ? b : ""));
			free(b);
			json_array_append_new(a, x);
		}
		json_object_set_new(o, "xattrs", a);
	}
	return o;
}

int manifest_tree_digest(const struct manifest *m, uint8_t out[MANIFEST_DIGEST_LEN])
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < m->n_entries; i++)
		if (json_array_append_new(a, entry_value(&m->entries[i])) < 0)
			break;
	char *js = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	unsigned dl = 0;
	int rc = js && EVP_Digest(js, strlen(js), out, &dl, EVP_sha256(), NULL) == 1 ? 0 : -1;
	free(js);
	json_decref(a);
	return rc;
}

int manifest_write(const struct manifest *m, bool compress, void **out, size_t *outlen,
		   char *err, size_t errlen)
{
	char why[512];
	if (manifest_validate(m, why, sizeof(why)) < 0) {
		manifest_seterr(err, errlen, "refusing to write an invalid manifest: %s", why);
		return -1;
	}
	json_t *root = json_object();
	/* The version the content needs: an image without packed files
	 * stays readable by a minivmm that knows version 1 only. */
	json_object_set_new(root, "version", json_integer(manifest_has_packed(m) ?
							  MANIFEST_VERSION_PACKED : MANIFEST_VERSION_MIN));
	if (m->name)
		json_object_set_new(root, "name", json_string(m->name));
	json_object_set_new(root, "chunk_size", json_integer((json_int_t)m->chunk_size));
	json_object_set_new(root, "blobs", json_string(m->blobs_url));
	json_object_set_new(root, "total_bytes", json_integer((json_int_t)m->total_bytes));
	json_t *boot = json_object();
	if (m->kernel.present)
		json_object_set_new(boot, "kernel", blob_ref_value(&m->kernel));
	if (m->initrd_lazy.present)
		json_object_set_new(boot, "initrd_lazy", blob_ref_value(&m->initrd_lazy));
	if (m->initrd_full.present)
		json_object_set_new(boot, "initrd_full", blob_ref_value(&m->initrd_full));
	if (m->cmdline)
		json_object_set_new(boot, "cmdline", json_string(m->cmdline));
	json_t *files = json_array(), *prof = json_array();
	for (size_t i = 0; i < m->n_boot_files; i++)
		json_array_append_new(files, path_value(m->boot_files[i]));
	for (size_t i = 0; i < m->n_profile; i++)
		json_array_append_new(prof, path_value(m->profile[i]));
	json_object_set_new(boot, "files", files);
	json_object_set_new(boot, "profile", prof);
	json_object_set_new(root, "boot", boot);
	if (m->disk.present) {
		json_t *d = blob_ref_value(&m->disk);
		if (m->disk_tree_present)
			json_object_set_new(d, "tree", digest_value(m->disk_tree));
		json_object_set_new(d, "format", json_string("ext4"));
		json_object_set_new(root, "disk", d);
	}
	json_t *entries = json_array();
	for (size_t i = 0; i < m->n_entries; i++)
		json_array_append_new(entries, entry_value(&m->entries[i]));
	json_object_set_new(root, "entries", entries);

	/* Compact: the manifest travels before boot; jq pretty-prints it. */
	char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text) {
		manifest_seterr(err, errlen, "out of memory writing the manifest");
		return -1;
	}
	size_t len = strlen(text);
	if (!compress) {
		*out = text;
		*outlen = len;
		return 0;
	}
	size_t cap = ZSTD_compressBound(len);
	void *z = malloc(cap);
	size_t zlen = z ? ZSTD_compress(z, cap, text, len, MANIFEST_ZSTD_LEVEL) : 0;
	free(text);
	if (!z || ZSTD_isError(zlen)) {
		free(z);
		manifest_seterr(err, errlen, "zstd compression of the manifest failed");
		return -1;
	}
	*out = z;
	*outlen = zlen;
	return 0;
}

int manifest_write_file(const struct manifest *m, const char *path, bool compress,
			char *err, size_t errlen)
{
	void *buf;
	size_t len;
	if (manifest_write(m, compress, &buf, &len, err, errlen) < 0)
		return -1;
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	bool ok = fd >= 0 && write_all(fd, buf, len) == 0 && fsync(fd) == 0;
	int saved = errno;
	free(buf);
	if (fd >= 0 && close(fd) < 0 && ok)
		ok = false, saved = errno;
	if (ok && rename(tmp, path) < 0)
		ok = false, saved = errno;
	if (!ok) {
		manifest_seterr(err, errlen, "%s: %s", path, saved ? strerror(saved) : "short write");
		unlink(tmp);
		return -1;
	}
	return 0;
}
