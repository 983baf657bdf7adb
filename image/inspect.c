/*
 * minivmm image inspect URL|DIR: what an image holds.
 * minivmm image verify URL|DIR: is every object of it there and intact?
 * Verify stops at the first bad object and names it (exit 12).
 */
#include "image/image.h"
#include "fetch/fetch.h"
#include "fetch/url.h"
#include "lib/cli.h"
#include "lib/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define INSPECT_DEFAULT_LARGEST 10
#define INSPECT_MAX_BOOT_FILES 64 /* listed on the boot files line; the rest counted */
/* What holds a bzImage's version string: its offset is a 16-bit field
 * counted from 0x200, and image_kernel_version reads up to 255 bytes of
 * it (Documentation/arch/x86/boot.rst, kernel_version). */
#define INSPECT_KERNEL_HEAD (0x10000 + 0x200 + 0x100)
/* The marker image build writes is one line; more is not ours. */
#define INSPECT_MARKER_MAX 4096

#ifndef __clang__ /* clang has no -Wformat-truncation */
#pragma GCC diagnostic ignored "-Wformat-truncation" /* messages may be cut */
#endif

static int one_arg(const struct config *cfg, const char *cmd)
{
	if (cfg->n_args != 1) {
		cli_usage_error(cmd, "give one image directory or URL");
		return -1;
	}
	return 0;
}

/* Open the image named on the command line, with the origins the user
 * allowed its blobs at. */
static struct image_src *open_src(const struct config *cfg, char *err, size_t errlen)
{
	const char *origins[URL_MAX_ALLOWED_ORIGINS];
	size_t n = url_allowed_origins(cfg, origins, URL_MAX_ALLOWED_ORIGINS);
	struct image_src *s = image_src_open(cfg->args[0], err, errlen);
	if (s && image_src_allow_origins(s, origins, n) < 0) {
		snprintf(err, errlen, "out of memory");
		image_src_close(s);
		return NULL;
	}
	return s;
}

/* A failure message: its text may quote a hostile manifest or server. */
static void print_failure(const char *prefix, const char *err)
{
	char shown[8192]; /* \xHH for each control byte: up to 4 per byte of err */
	log_error("%s%s", prefix, url_escape_text(err, shown, sizeof(shown)));
}

static void print_path(const char *p)
{
	for (const unsigned char *c = (const unsigned char *)p; *c; c++)
		if (*c >= 0x20 && *c < 0x7f && *c != '\\')
			putchar(*c);
		else
			printf("\\x%02x", *c);
}

static int cmp_size_desc(const void *a, const void *b)
{
	const struct manifest_entry *x = *(const struct manifest_entry *const *)a;
	const struct manifest_entry *y = *(const struct manifest_entry *const *)b;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* By what is stored: the blob's name, packed or not, the content. */
static int cmp_digest(const void *a, const void *b)
{
	const struct manifest_entry *x = *(const struct manifest_entry *const *)a;
	const struct manifest_entry *y = *(const struct manifest_entry *const *)b;
	int c = memcmp(manifest_blob_name(x), manifest_blob_name(y), MANIFEST_DIGEST_LEN);
	if (c || x->packed != y->packed)
		return c ? c : x->packed - y->packed;
	return memcmp(x->digest, y->digest, MANIFEST_DIGEST_LEN);
}

/* Does e store the same thing as the entry sorted before it? */
static bool same_blob(const struct manifest_entry *e, const struct manifest_entry *prev)
{
	return prev && cmp_digest(&e, &prev) == 0;
}

/* Regular files sorted by digest: one per distinct blob after the caller
 * skips neighbours with equal digests. */
static const struct manifest_entry **regular_by(const struct manifest *m, size_t *n,
						int (*cmp)(const void *, const void *))
{
	const struct manifest_entry **v = malloc((m->n_entries + 1) * sizeof(*v));
	*n = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < m->n_entries; i++)
		if (m->entries[i].type == MF_REG)
			v[(*n)++] = &m->entries[i];
	qsort(v, *n, sizeof(*v), cmp);
	return v;
}

/* The first len bytes of a blob of m into mb (zeroed by the caller, max
 * set): a directory's blobs and a server's alike, through the location
 * image_src_blobs_base checked (a remote manifest names no local file). */
static int read_blob_head(const char *blobs, const uint8_t digest[MANIFEST_DIGEST_LEN],
			  uint64_t len, struct fetch_membuf *mb, char *err, size_t errlen)
{
	char loc[4400];
	if (fetch_blob_url(blobs, digest, loc, sizeof(loc)) < 0) {
		snprintf(err, errlen, "blob URL too long");
		return -1;
	}
	struct fetch_opts o = {.allow_file = url_scheme(blobs) == URL_FILE};
	struct fetch_client *fc = fetch_client_create(&o, err, errlen);
	if (!fc)
		return -1;
	int rc = fetch_get_range(fc, loc, 0, len, NULL, fetch_mem_sink, mb, err, errlen);
	fetch_client_destroy(fc);
	return rc;
}

/* The kernel's release, read from the setup header at the start of its
 * blob (the rest of the kernel is not fetched). */
static int kernel_release(const struct manifest *m, const char *blobs, char *ver, size_t len,
			  char *err, size_t errlen)
{
	uint64_t want = m->kernel.size < INSPECT_KERNEL_HEAD ? m->kernel.size : INSPECT_KERNEL_HEAD;
	struct fetch_membuf mb = {.max = INSPECT_KERNEL_HEAD};
	if (read_blob_head(blobs, m->kernel.digest, want, &mb, err, errlen) < 0) {
		free(mb.p);
		return -1;
	}
	/* image_kernel_version reads a file: the bytes in a memory file. */
	int fd = memfd_create("minivmm-kernel-head", MFD_CLOEXEC);
	bool ok = fd >= 0 && write(fd, mb.p, mb.len) == (ssize_t)mb.len;
	free(mb.p);
	char path[64], why[600];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int rc = ok ? image_kernel_version(path, ver, len, why, sizeof(why)) : -1;
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		snprintf(err, errlen, "the kernel's setup header has no readable version");
	return rc;
}

static const struct manifest_entry *lookup_manifest(void *ctx, const char *path)
{
	return manifest_lookup(ctx, path);
}

/* Where the kernel's modules are in the image and where they came from:
 * added by image build (its marker file names the source) or the root
 * filesystem's own. */
static void print_modules(const struct manifest *m, const char *blobs)
{
	char ver[256], err[1200], want[MANIFEST_PATH_MAX + 1], where[MANIFEST_PATH_MAX + 1];
	printf("kernel modules: ");
	if (kernel_release(m, blobs, ver, sizeof(ver), err, sizeof(err)) < 0) {
		printf("unknown (");
		image_print_text(stdout, err);
		printf(")\n");
		return;
	}
	snprintf(want, sizeof(want), "lib/modules/%s", ver);
	enum image_resolve how = image_resolve_path(lookup_manifest, (void *)m, want, true, where,
						    sizeof(where));
	const struct manifest_entry *dir = how == IMAGE_RESOLVE_FOUND ? manifest_lookup(m, where) : NULL;
	if (!dir || dir->type != MF_DIR) {
		printf("none for kernel version ");
		image_print_text(stdout, ver);
		printf(" (no /lib/modules/");
		image_print_text(stdout, ver);
		printf(" in the image)\n");
		return;
	}
	size_t plen = strlen(where), n_files = 0;
	uint64_t bytes = 0;
	char marker[MANIFEST_PATH_MAX + 2];
	snprintf(marker, sizeof(marker), "%s%s%s", where, plen ? "/" : "", IMAGE_MODULES_MARKER);
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct manifest_entry *e = &m->entries[i];
		if (strncmp(e->path, where, plen) != 0 || (plen && e->path[plen] != '/') ||
		    strcmp(e->path, marker) == 0)
			continue;
		if (e->type == MF_REG || e->type == MF_HARDLINK)
			n_files++;
		if (e->type == MF_REG)
			bytes += e->size;
	}
	printf("/");
	print_path(where);
	printf(" (%zu files, %" PRIu64 " bytes, ", n_files, bytes);
	const struct manifest_entry *mk = manifest_lookup(m, marker);
	if (!mk || mk->type != MF_REG) {
		printf("from the root filesystem)\n");
		return;
	}
	struct fetch_membuf mb = {.max = INSPECT_MARKER_MAX};
	size_t tl = strlen(IMAGE_MODULES_MARKER_TEXT);
	if (mk->size > INSPECT_MARKER_MAX || mk->packed ||
	    read_blob_head(blobs, mk->digest, mk->size, &mb, err, sizeof(err)) < 0 ||
	    mb.len <= tl || memcmp(mb.p, IMAGE_MODULES_MARKER_TEXT, tl) != 0) {
		printf("added by image build)\n");
		free(mb.p);
		return;
	}
	/* Its first line names the source: printed escaped, it is the
	 * image's text. */
	char src[INSPECT_MARKER_MAX + 1];
	size_t n = 0;
	for (size_t k = tl; k < mb.len && mb.p[k] != '\n' && mb.p[k] != '\0'; k++)
		src[n++] = mb.p[k];
	src[n] = '\0';
	printf("added by image build from ");
	image_print_text(stdout, src);
	printf(")\n");
	free(mb.p);
}

CLI_OPTION(.command = "image inspect", .name = "largest", .argname = "N",
	   .help = "how many of the largest files to list (default 10)",
	   .kind = CLI_UINT)

static int inspect_main(const struct config *cfg)
{
	if (one_arg(cfg, "image inspect") < 0)
		return EXIT_USAGE;
	char err[1200], blobs[4200];
	struct image_src *s = open_src(cfg, err, sizeof(err));
	if (!s) {
		print_failure("image inspect: ", err);
		return EXIT_FAILURE_IO;
	}
	struct manifest m;
	const char *which = NULL;
	if (image_src_manifest(s, &m, &which, err, sizeof(err)) < 0) {
		print_failure("image inspect: ", err);
		image_src_close(s);
		return EXIT_FAILURE_IO;
	}
	if (image_src_blobs_base(s, &m, blobs, sizeof(blobs), err, sizeof(err)) < 0) {
		print_failure("image inspect: refusing the image: ", err);
		manifest_free(&m);
		image_src_close(s);
		return EXIT_FAILURE_IO;
	}
	size_t counts[8] = {0}, n_reg, n_blobs = 0, n_packed = 0;
	uint64_t blob_bytes = 0, packed_zeros = 0;
	for (size_t i = 0; i < m.n_entries; i++)
		counts[m.entries[i].type]++;
	const struct manifest_entry **v = regular_by(&m, &n_reg, cmp_digest);
	for (size_t i = 0; v && i < n_reg; i++)
		if (!same_blob(v[i], i ? v[i - 1] : NULL)) {
			uint64_t stored = manifest_blob_size(v[i], m.chunk_size);
			n_blobs++;
			blob_bytes += stored;
			n_packed += v[i]->packed;
			packed_zeros += v[i]->size - stored;
		}
	uint64_t boot_files_bytes = 0;
	for (size_t i = 0; i < m.n_boot_files; i++) {
		const struct manifest_entry *e = manifest_lookup(&m, m.boot_files[i]);
		if (e && e->type == MF_HARDLINK)
			e = manifest_lookup(&m, e->target);
		if (e && e->type == MF_REG)
			boot_files_bytes += e->size;
	}
	printf("image:        ");
	image_print_text(stdout, image_src_where(s));
	printf("\nname:         ");
	image_print_text(stdout, m.name ? m.name : "(none)");
	printf("\nmanifest:     %s, version %d, chunk size %" PRIu64 ", blobs at ", which,
	       m.version, m.chunk_size);
	image_print_text(stdout, blobs);
	printf("\n");
	printf("entries:      %zu (%zu regular, %zu dirs, %zu symlinks, %zu hard links, "
	       "%zu devices, %zu fifos, %zu sockets)\n", m.n_entries, counts[MF_REG], counts[MF_DIR],
	       counts[MF_SYMLINK], counts[MF_HARDLINK], counts[MF_CHR] + counts[MF_BLK],
	       counts[MF_FIFO], counts[MF_SOCK]);
	printf("total bytes:  %" PRIu64 " (%zu distinct blobs, %" PRIu64 " bytes after dedup)\n",
	       m.total_bytes, n_blobs, blob_bytes);
	if (n_packed)
		printf("packed:       %zu files stored without their %" PRIu64 " bytes of zero "
		       "chunks\n", n_packed, packed_zeros);
	uint64_t boot = m.kernel.size + m.initrd_lazy.size + boot_files_bytes;
	printf("boot portion: %" PRIu64 " bytes + the manifest (kernel %" PRIu64 ", lazy initramfs %"
	       PRIu64 ", %zu boot files %" PRIu64 ")\n", boot, m.kernel.size, m.initrd_lazy.size,
	       m.n_boot_files, boot_files_bytes);
	if (m.initrd_full.present)
		printf("full initramfs: %" PRIu64 " bytes\n", m.initrd_full.size);
	if (m.disk.present) {
		char hex[65];
		manifest_digest_hex(m.disk.digest, hex);
		printf("disk image:   %" PRIu64 " bytes ext4, sha256 %s\n", m.disk.size, hex);
	} else {
		printf("disk image:   none (no full mode)\n");
	}
	printf("cmdline:      ");
	image_print_text(stdout, m.cmdline ? m.cmdline : "");
	printf("\n");
	printf("boot files:  ");
	for (size_t i = 0; i < m.n_boot_files && i < INSPECT_MAX_BOOT_FILES; i++) {
		printf(" /");
		print_path(m.boot_files[i]);
	}
	if (m.n_boot_files > INSPECT_MAX_BOOT_FILES)
		printf(" (and %zu more)", m.n_boot_files - INSPECT_MAX_BOOT_FILES);
	printf("\n");
	print_modules(&m, blobs);
	free(v);
	size_t largest = (size_t)config_get_uint(cfg, "largest", INSPECT_DEFAULT_LARGEST);
	v = regular_by(&m, &n_reg, cmp_size_desc);
	if (largest && n_reg)
		printf("largest files:\n");
	for (size_t i = 0; v && i < n_reg && i < largest; i++) {
		printf("  %12" PRIu64 "  /", v[i]->size);
		print_path(v[i]->path);
		printf("\n");
	}
	free(v);
	manifest_free(&m);
	image_src_close(s);
	return EXIT_OK;
}

/* Every blob m names (boot portion, then each distinct file content):
 * present and matching. 0, or -1 with the first bad object in err. */
static int verify_blobs(struct image_src *s, const struct manifest *m, size_t *n_checked,
			uint64_t *bytes, char *err, size_t errlen)
{
	struct { const char *what; const struct manifest_blob_ref *r; } boot[] = {
		{"kernel", &m->kernel}, {"lazy initramfs", &m->initrd_lazy},
		{"full initramfs", &m->initrd_full}, {"disk image", &m->disk}};
	*n_checked = 0;
	*bytes = 0;
	for (size_t i = 0; i < sizeof(boot) / sizeof(boot[0]); i++) {
		if (!boot[i].r->present)
			continue;
		char why[1000];
		if (image_src_check_blob(s, m, boot[i].r->digest, boot[i].r->size, why, sizeof(why))) {
			snprintf(err, errlen, "%s: %s", boot[i].what, why);
			return -1;
		}
		(*n_checked)++;
		*bytes += boot[i].r->size;
	}
	size_t n_reg;
	const struct manifest_entry **v = regular_by(m, &n_reg, cmp_digest);
	for (size_t i = 0; v && i < n_reg; i++) {
		if (same_blob(v[i], i ? v[i - 1] : NULL))
			continue;
		char why[1000];
		if (v[i]->packed ? image_src_check_packed(s, m, v[i], why, sizeof(why)) :
		    image_src_check_blob(s, m, v[i]->digest, v[i]->size, why, sizeof(why))) {
			char shown[400];
			size_t o = 0;
			for (const unsigned char *c = (const unsigned char *)v[i]->path; *c && o < 380; c++)
				o += (size_t)snprintf(shown + o, sizeof(shown) - o,
						      *c >= 0x20 && *c < 0x7f && *c != '\\' ? "%c" : "\\x%02x", *c);
			shown[o] = '\0';
			snprintf(err, errlen, "file /%s: %s", shown, why);
			free(v);
			return -1;
		}
		(*n_checked)++;
		*bytes += manifest_blob_size(v[i], m->chunk_size);
	}
	free(v);
	return 0;
}

/* The full-copy disk holds the tree the manifest describes: a disk built
 * before the files changed would boot the old files. 0, or -1 with err. */
static int verify_disk_tree(const struct manifest *m, char *err, size_t errlen)
{
	if (!m->disk.present)
		return 0;
	if (!m->disk_tree_present) {
		printf("verify: note: the disk image records no tree (built by an older minivmm): "
		       "not checked against the files\n");
		return 0;
	}
	uint8_t now[MANIFEST_DIGEST_LEN];
	if (manifest_tree_digest(m, now) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (memcmp(now, m->disk_tree, MANIFEST_DIGEST_LEN) != 0) {
		snprintf(err, errlen, "disk image: stale: it was built from another tree than the "
			 "manifest's files (they changed after the disk was built), so --mode full "
			 "would boot other files than --mode lazy; rebuild it with minivmm image build");
		return -1;
	}
	return 0;
}

static int verify_main(const struct config *cfg)
{
	if (one_arg(cfg, "image verify") < 0)
		return EXIT_USAGE;
	char err[1200];
	struct image_src *s = open_src(cfg, err, sizeof(err));
	struct manifest m = {0}, plain = {0};
	int status = EXIT_FAILURE_IO;
	if (!s)
		goto bad;
	int forms = image_src_check_manifests(s, err, sizeof(err));
	char blobs[4200];
	if (forms < 0 || image_src_manifest(s, &m, NULL, err, sizeof(err)) < 0 ||
	    image_src_blobs_base(s, &m, blobs, sizeof(blobs), err, sizeof(err)) < 0)
		goto bad;
	size_t n_checked;
	uint64_t bytes;
	if (verify_blobs(s, &m, &n_checked, &bytes, err, sizeof(err)) < 0 ||
	    verify_disk_tree(&m, err, sizeof(err)) < 0)
		goto bad;
	if (forms == 1) {
		/* A write-back stopped between its two manifest uploads (blobs
		 * go first, so each form is a whole image): readers that take
		 * the .zst see one image, those that take the plain form the
		 * other. Both are checked; `minivmm writeback` finishes it. */
		char note[1200];
		snprintf(note, sizeof(note), "%s", err);
		size_t n2;
		uint64_t b2;
		if (image_src_manifest_plain(s, &plain, err, sizeof(err)) < 0)
			goto bad;
		if (verify_blobs(s, &plain, &n2, &b2, err, sizeof(err)) < 0) {
			char why[1200];
			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, sizeof(err), "%s: %.1000s", MANIFEST_FILE, why);
			goto bad;
		}
		printf("verify: note: ");
		image_print_text(stdout, note);
		printf(": each is a whole image (a write-back was interrupted "
		       "between them; `minivmm writeback STATE_DIR` completes it)\n");
	}
	printf("verify: OK: ");
	image_print_text(stdout, image_src_where(s));
	printf(": manifest well-formed, %zu entries, %zu blobs (%" PRIu64
	       " bytes) present and matching\n", m.n_entries, n_checked, bytes);
	status = EXIT_OK;
	goto out;
bad:
	print_failure("image verify: FAILED: ", err);
out:
	manifest_free(&m);
	manifest_free(&plain);
	image_src_close(s);
	return status;
}

CLI_OPTION(.command = "image inspect", .name = URL_ALLOW_ORIGIN_OPTION, .argname = "URL",
	   .help = URL_ALLOW_ORIGIN_HELP, .validate = url_validate_origin_option)
CLI_OPTION(.command = "image verify", .name = URL_ALLOW_ORIGIN_OPTION, .argname = "URL",
	   .help = URL_ALLOW_ORIGIN_HELP, .validate = url_validate_origin_option)

CLI_COMMAND(.name = "image inspect", .usage = "URL|DIR",
	    .summary = "show an image's files, sizes, boot portion and largest files",
	    .main = inspect_main)
CLI_COMMAND(.name = "image verify", .usage = "URL|DIR",
	    .summary = "check that every blob of an image is present and matches its digest",
	    .main = verify_main)
