/*
 * Two writers from one base (fs/writeback_priv.h, docs/storage.md "Two
 * writers"): the manifest on the server compared with the one a run
 * started from and, when another writer published in between, merged
 * three-way on paths. No I/O here: write-back loads the manifests.
 */
#include "fs/writeback_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

int wb_keep_boot_files(struct manifest *m)
{
	if (!m->n_boot_files)
		return 0;
	char **kept = malloc(m->n_boot_files * sizeof(*kept));
	if (!kept)
		return -1;
	size_t n = 0;
	for (size_t i = 0; i < m->n_boot_files; i++) {
		if (manifest_lookup(m, m->boot_files[i]))
			kept[n++] = m->boot_files[i];
		else
			log_info("fs: boot file %s is gone: no longer fetched before boot",
				 m->boot_files[i]);
	}
	m->boot_files = kept;
	m->n_boot_files = n;
	return 0;
}

/* The manifest without where its blobs live, as JSON bytes: what two
 * manifests must share to be the same image. */
static int canonical(const struct manifest *m, void **out, size_t *len, char *err, size_t errlen)
{
	struct manifest c = *m;
	c.blobs_url = (char *)MANIFEST_DEFAULT_BLOBS;
	return manifest_write(&c, false, out, len, err, errlen);
}

static bool xattrs_equal(const struct manifest_entry *a, const struct manifest_entry *b)
{
	if (a->n_xattrs != b->n_xattrs)
		return false;
	for (size_t i = 0; i < a->n_xattrs; i++)
		if (strcmp(a->xattrs[i].name, b->xattrs[i].name) || a->xattrs[i].len != b->xattrs[i].len ||
		    memcmp(a->xattrs[i].value, b->xattrs[i].value, a->xattrs[i].len))
			return false;
	return true;
}

/* Same entry? (*mtime_only: they differ in their mtime alone.) */
static bool entry_equal(const struct manifest_entry *a, const struct manifest_entry *b,
			bool *mtime_only)
{
	if (mtime_only)
		*mtime_only = false;
	if (!a || !b)
		return a == b;
	bool same = a->type == b->type && a->mode == b->mode && a->uid == b->uid &&
		    a->gid == b->gid && a->size == b->size && a->rdev == b->rdev &&
		    a->has_digest == b->has_digest &&
		    !memcmp(a->digest, b->digest, MANIFEST_DIGEST_LEN) &&
		    a->packed == b->packed && !memcmp(a->blob, b->blob, MANIFEST_DIGEST_LEN) &&
		    !(a->target || b->target ? !a->target || !b->target || strcmp(a->target, b->target)
					     : false) &&
		    xattrs_equal(a, b);
	if (!same)
		return false;
	if (a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec)
		return true;
	if (mtime_only)
		*mtime_only = true;
	return false;
}

/* A deep copy: every field (packed, blob ...) by value, then the
 * pointers. */
static int entry_copy(struct manifest_entry *d, const struct manifest_entry *s)
{
	*d = *s;
	d->path = strdup(s->path);
	d->target = s->target ? strdup(s->target) : NULL;
	d->chunks = NULL;
	d->xattrs = NULL;
	d->n_xattrs = 0;
	if (!d->path || (s->target && !d->target))
		return -1;
	if (s->n_chunks) {
		d->chunks = malloc(s->n_chunks * MANIFEST_DIGEST_LEN);
		if (!d->chunks)
			return -1;
		memcpy(d->chunks, s->chunks, s->n_chunks * MANIFEST_DIGEST_LEN);
	}
	if (s->n_xattrs) {
		d->xattrs = calloc(s->n_xattrs, sizeof(*d->xattrs));
		if (!d->xattrs)
			return -1;
		for (size_t i = 0; i < s->n_xattrs; i++, d->n_xattrs++) {
			d->xattrs[i].name = strdup(s->xattrs[i].name);
			d->xattrs[i].value = malloc(s->xattrs[i].len ? s->xattrs[i].len : 1);
			d->xattrs[i].len = s->xattrs[i].len;
			if (!d->xattrs[i].name || !d->xattrs[i].value)
				return -1;
			memcpy(d->xattrs[i].value, s->xattrs[i].value, s->xattrs[i].len);
		}
	}
	return 0;
}

struct merge {
	struct manifest_entry *e;
	size_t n;
	size_t ours, theirs; /* paths taken from each side's changes */
};

/* Decide path (present in at least one of o, t): append the result. */
static int merge_path(struct merge *r, const struct manifest_entry *b,
		      const struct manifest_entry *o, const struct manifest_entry *t,
		      char *err, size_t errlen)
{
	bool o_mt, t_mt, ot_mt;
	bool ours = !entry_equal(b, o, &o_mt), theirs = !entry_equal(b, t, &t_mt);
	const struct manifest_entry *pick = t;
	if (ours && theirs && !entry_equal(o, t, &ot_mt)) {
		if (!(ot_mt && o->type == MF_DIR)) {
			const char *p = o ? o->path : t->path;
			snprintf(err, errlen, "image changed since this run started: '%s' was changed both "
			    "by this run and by another writer", p);
			return -1;
		}
		/* a directory both sides added names to */
		pick = o->mtime_sec > t->mtime_sec || (o->mtime_sec == t->mtime_sec &&
						       o->mtime_nsec > t->mtime_nsec) ? o : t;
	} else if (ours) {
		pick = o;
		r->ours++;
	} else if (theirs) {
		r->theirs++;
	}
	if (!pick)
		return 0; /* deleted */
	if (entry_copy(&r->e[r->n], pick) < 0) {
		manifest_entry_free(&r->e[r->n]);
		snprintf(err, errlen, "out of memory merging");
		return -1;
	}
	r->n++;
	return 0;
}

/* Replace *ours with the three-way merge of base, theirs and ours. */
static int merge(struct manifest *ours, const struct manifest *base, struct manifest *theirs,
		 bool *conflict, char *err, size_t errlen)
{
	*conflict = true; /* until the merge succeeds */
	if (theirs->chunk_size != base->chunk_size) {
		snprintf(err, errlen, "image changed since this run started: its chunk size changed");
		return -1;
	}
	struct merge r = {.e = calloc(ours->n_entries + theirs->n_entries + 1, sizeof(*r.e))};
	if (!r.e) {
		snprintf(err, errlen, "out of memory merging");
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < ours->n_entries && rc == 0; i++) {
		const struct manifest_entry *o = &ours->entries[i];
		rc = merge_path(&r, manifest_lookup(base, o->path), o,
				manifest_lookup(theirs, o->path), err, errlen);
	}
	for (size_t i = 0; i < theirs->n_entries && rc == 0; i++) {
		const struct manifest_entry *t = &theirs->entries[i];
		if (!manifest_lookup(ours, t->path))
			rc = merge_path(&r, manifest_lookup(base, t->path), NULL, t, err, errlen);
	}
	struct manifest m = *theirs; /* their boot portion, name and profile */
	m.disk = (struct manifest_blob_ref){0}; /* of a tree that is no more */
	m.disk_tree_present = false;
	m.entries = r.e;
	m.n_entries = r.n;
	m.blobs_url = ours->blobs_url;
	m.total_bytes = 0;
	for (size_t i = 0; i < r.n; i++)
		if (r.e[i].type == MF_REG)
			m.total_bytes += r.e[i].size;
	char **their_boot = m.boot_files;
	size_t n_their_boot = m.n_boot_files;
	if (rc == 0) {
		manifest_sort(&m);
		if (wb_keep_boot_files(&m) < 0) {
			snprintf(err, errlen, "out of memory merging");
			rc = -1;
		}
	}
	if (rc == 0) {
		char why[512];
		if (manifest_validate(&m, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "image changed since this run started, and the changes do not "
			    "merge: %s", why);
			rc = -1;
		}
	}
	if (m.boot_files != their_boot) {
		/* kept borrows theirs' strings: on success it owns them, the
		 * ones left out and theirs' array go; on failure theirs keeps
		 * its own. */
		if (rc == 0) {
			for (size_t i = 0; i < n_their_boot; i++)
				if (!manifest_lookup(&m, their_boot[i]))
					free(their_boot[i]);
			free(their_boot);
		} else {
			free(m.boot_files);
		}
	}
	if (rc < 0) {
		for (size_t i = 0; i < r.n; i++)
			manifest_entry_free(&r.e[i]);
		free(r.e);
		return -1;
	}
	*conflict = false;
	log_warn("fs: the image changed since this run started (another writer published): "
		 "merged, keeping their %zu changed paths with our %zu", r.theirs, r.ours);
	/* theirs gives its fields to the result; ours goes. */
	char *bu = ours->blobs_url;
	ours->blobs_url = NULL;
	for (size_t i = 0; i < theirs->n_entries; i++)
		manifest_entry_free(&theirs->entries[i]);
	free(theirs->entries);
	free(theirs->blobs_url);
	theirs->entries = NULL;
	theirs->n_entries = 0;
	manifest_free(ours);
	*ours = m;
	ours->blobs_url = bu;
	memset(theirs, 0, sizeof(*theirs));
	return 0;
}


int wb_check_base(const struct manifest *base, struct manifest *theirs, struct manifest *newm,
		  bool *conflict, char *err, size_t errlen)
{
	void *a = NULL, *b = NULL;
	size_t al = 0, bl = 0;
	*conflict = false;
	int rc = canonical(base, &a, &al, err, errlen);
	if (rc == 0)
		rc = canonical(theirs, &b, &bl, err, errlen);
	bool changed = rc == 0 && (al != bl || memcmp(a, b, al));
	if (changed) {
		/* Our own manifest already there (a push killed after its
		 * manifest PUT, completed again): nothing to merge. */
		void *c = NULL;
		size_t cl = 0;
		rc = canonical(newm, &c, &cl, err, errlen);
		changed = rc == 0 && (cl != bl || memcmp(c, b, cl));
		free(c);
	}
	if (changed)
		rc = merge(newm, base, theirs, conflict, err, errlen);
	free(a);
	free(b);
	return rc;
}
