/*
 * minivmm image build: a root filesystem (directory or tarball) and a
 * kernel in, an image directory out (docs/image-format.md):
 *
 *   OUT/manifest.json, OUT/manifest.json.zst   every file's metadata and digest
 *   OUT/blobs/sha256/<hex>                     contents, kernel, initramfs, disk
 *
 * Nothing here needs root: a tarball's owners and modes are taken from its
 * headers (libarchive), and the ext4 disk image is made by `mkfs.ext4 -d`
 * from a staging directory, with debugfs fixing what an unprivileged
 * staging directory cannot hold (owners, device nodes). Same input, same
 * digests: sorted walk, fixed timestamps, UUID and hash seed derived from
 * the content.
 *
 * This file holds the collected entries and the command (build_main); the
 * inputs are build_dir.c and build_tar.c, the kernel's modules
 * build_modules.c, the boot files build_boot.c, the disk build_disk.c
 * (shared declarations in build_priv.h).
 */
#include "image/build_priv.h"
#include "lib/clock.h"
#include "lib/mkdir_p.h"
#include "lib/cli.h"
#include "lib/log.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUILD_DEFAULT_BUSYBOX "/bin/busybox"
#define BUILD_DEFAULT_CMDLINE "console=ttyS0"
#define BUILD_DEFAULT_INIT "/sbin/init"
/* A fixed time for what the build generates (mkfs); SOURCE_DATE_EPOCH
 * overrides it (reproducible-builds.org). 2024-01-01T00:00:00Z. */
#define BUILD_FIXED_TIME 1704067200LL

struct bentry *build_add_entry(struct build *b, const char *path)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		void *p = realloc(b->v, cap * sizeof(*b->v));
		if (!p)
			return NULL;
		b->v = p, b->cap = cap;
	}
	struct bentry *be = &b->v[b->n];
	memset(be, 0, sizeof(*be));
	if (!(be->e.path = strdup(path)))
		return NULL;
	be->seq = b->n++;
	return be;
}

/* Messages show names with C escapes: a newline in a file name must not
 * forge a line of output. */
const char *build_shown(const char *s, char *buf, size_t len)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < len; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\')
			buf[o++] = (char)*p;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
	}
	buf[o] = '\0';
	return buf;
}

void build_set_meta(struct manifest_entry *e, const struct stat *st)
{
	e->mode = st->st_mode & 07777;
	e->uid = st->st_uid;
	e->gid = st->st_gid;
	e->mtime_sec = st->st_mtim.tv_sec;
	e->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
}

/* --- from the collected entries to a valid manifest --- */

static int cmp_bentry(const void *x, const void *y)
{
	const struct bentry *a = x, *b = y;
	int c = strcmp(a->e.path, b->e.path);
	if (c)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int finish_entries(struct build *b, const char *src)
{
	char show[600];
	qsort(b->v, b->n, sizeof(*b->v), cmp_bentry);
	/* A tarball may name a path twice: the last one wins, as for tar. A
	 * replaced file that was a hard-link target keeps its content. */
	size_t o = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (i + 1 < b->n && strcmp(b->v[i].e.path, b->v[i + 1].e.path) == 0) {
			manifest_entry_free(&b->v[i].e);
			continue;
		}
		b->v[o++] = b->v[i];
	}
	b->n = o;
	/* Parents a tarball did not list are made: directories 0755 root. */
	size_t n0 = b->n;
	for (size_t i = 0; i < n0; i++) {
		char parent[MANIFEST_PATH_MAX + 1];
		snprintf(parent, sizeof(parent), "%s", b->v[i].e.path);
		char *slash;
		while ((slash = strrchr(parent, '/'))) {
			*slash = '\0';
			bool found = false;
			for (size_t k = i; k-- > 0 && !found;)
				found = strcmp(b->v[k].e.path, parent) == 0;
			for (size_t k = n0; k < b->n && !found; k++)
				found = strcmp(b->v[k].e.path, parent) == 0;
			if (found)
				break;
			struct bentry *d = build_add_entry(b, parent);
			if (!d) {
				snprintf(b->err, sizeof(b->err), "out of memory");
				return -1;
			}
			d->e.type = MF_DIR;
			d->e.mode = 0755;
		}
	}
	if (b->n != n0)
		qsort(b->v, b->n, sizeof(*b->v), cmp_bentry);

	/* Hard links: the smallest path of a group is the regular file, the
	 * others name it. */
	size_t *primary = calloc(b->n_groups + 1, sizeof(size_t));
	size_t *holder = calloc(b->n_groups + 1, sizeof(size_t));
	if (!primary || !holder) {
		free(primary), free(holder);
		snprintf(b->err, sizeof(b->err), "out of memory");
		return -1;
	}
	for (size_t i = b->n; i-- > 0;) {
		struct bentry *be = &b->v[i];
		if (!be->group)
			continue;
		primary[be->group] = i + 1;
		if (be->e.has_digest)
			holder[be->group] = i + 1;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct bentry *be = &b->v[i];
		if (!be->group)
			continue;
		size_t p = primary[be->group] - 1, h = holder[be->group];
		if (!h) {
			snprintf(b->err, sizeof(b->err), "rootfs %s: hard links to '%s' lost their content",
				 src, build_shown(be->e.path, show, sizeof(show)));
			free(primary), free(holder);
			return -1;
		}
		if (i == p) {
			if (!be->e.has_digest) {
				const struct bentry *c = &b->v[h - 1];
				be->e.has_digest = true;
				memcpy(be->e.digest, c->e.digest, MANIFEST_DIGEST_LEN);
				be->e.packed = c->e.packed;
				memcpy(be->e.blob, c->e.blob, MANIFEST_DIGEST_LEN);
				be->e.size = c->e.size;
				be->data_bytes = c->data_bytes;
				be->e.n_chunks = c->e.n_chunks;
				if (c->e.n_chunks) {
					be->e.chunks = malloc(c->e.n_chunks * MANIFEST_DIGEST_LEN);
					if (be->e.chunks)
						memcpy(be->e.chunks, c->e.chunks, c->e.n_chunks * MANIFEST_DIGEST_LEN);
				}
			}
			continue;
		}
		free(be->e.chunks);
		be->e.chunks = NULL;
		be->e.n_chunks = 0;
		be->e.has_digest = false;
		be->e.packed = false;
		be->e.size = 0;
		be->data_bytes = 0;
		be->e.type = MF_HARDLINK;
		be->e.target = strdup(b->v[p].e.path);
	}
	free(primary);
	free(holder);
	return 0;
}

/* --- the command --- */

static int validate_chunk(const char *v, char *err, size_t errlen)
{
	uint64_t s;
	if (parse_size(v, &s) < 0 || s < MANIFEST_MIN_CHUNK || s > MANIFEST_MAX_CHUNK || (s & (s - 1))) {
		snprintf(err, errlen, "'%s' is not a power of two from 4K to 1G", v);
		return -1;
	}
	return 0;
}

CLI_OPTION(.command = "image build", .name = "rootfs", .argname = "DIR|TARBALL",
	   .help = "the root filesystem: a directory or a tarball (any compression)")
CLI_OPTION(.command = "image build", .name = "kernel", .argname = "FILE",
	   .help = "the guest kernel (bzImage), e.g. /boot/vmlinuz-*")
CLI_OPTION(.command = "image build", .name = "modules", .argname = "DIR",
	   .help = "the kernel's modules, for the initramfs and for the image's "
		   "/lib/modules/<kernel version> when the rootfs has none there "
		   "(default /lib/modules/<kernel version>)")
CLI_OPTION(.command = "image build", .name = "no-modules",
	   .help = "add no kernel modules to the image's /lib/modules (the initramfs still gets its few)")
CLI_OPTION(.command = "image build", .name = "cmdline", .argname = "STR",
	   .help = "kernel command line (default \"console=ttyS0\"); init=PATH picks the image's init")
CLI_OPTION(.command = "image build", .name = "chunk-size", .argname = "SIZE",
	   .help = "files larger than this get per-chunk digests (default 1M)",
	   .validate = validate_chunk)
CLI_OPTION(.command = "image build", .name = "out", .argname = "DIR",
	   .help = "where to write the image (manifest and blobs)")
CLI_OPTION(.command = "image build", .name = "name", .argname = "NAME",
	   .help = "the image's name in the manifest (default: the rootfs's name)")
CLI_OPTION(.command = "image build", .name = "busybox", .argname = "FILE",
	   .help = "static busybox for the initramfs (default /bin/busybox)")
CLI_OPTION(.command = "image build", .name = "profile", .argname = "FILE",
	   .help = "store FILE (from `run --record-profile`) as the image's prefetch profile")
CLI_OPTION(.command = "image build", .name = "no-disk",
	   .help = "skip the ext4 disk image (no full mode)")

static int build_main(const struct config *cfg)
{
	const char *rootfs = config_get(cfg, "rootfs"), *kernel = config_get(cfg, "kernel");
	const char *out = config_get(cfg, "out"), *modules = config_get(cfg, "modules");
	const char *busybox = config_get(cfg, "busybox");
	const char *cs = config_get(cfg, "chunk-size");
	if (!rootfs || !kernel || !out) {
		return cli_usage_error("image build", "--rootfs, --kernel and --out are required");
	}
	if (cfg->n_args) {
		return cli_usage_error("image build", "unexpected argument '%s'", cfg->args[0]);
	}
	double t0 = clock_now_s();
	char err[1024], ver[128], moddir[4200];
	/* The kernel first: a missing or wrong kernel fails before any work. */
	if (image_kernel_version(kernel, ver, sizeof(ver), err, sizeof(err)) < 0) {
		log_error("image build: %s", err);
		return EXIT_SETUP;
	}
	if (!modules) {
		snprintf(moddir, sizeof(moddir), "/lib/modules/%s", ver);
		modules = moddir;
	}
	struct stat st;
	if (stat(rootfs, &st) < 0) {
		log_error("image build: rootfs %s: %s", rootfs, strerror(errno));
		return EXIT_SETUP;
	}
	if (mkdir_p(out, 0755) < 0) {
		log_error("image build: %s: %s", out, strerror(errno));
		return EXIT_SETUP;
	}
	/* An output inside the tree would be walked while it grows. */
	char rabs[4096], oabs[4096];
	if (S_ISDIR(st.st_mode) && realpath(rootfs, rabs) && realpath(out, oabs)) {
		size_t rl = strlen(rabs);
		if (strncmp(oabs, rabs, rl) == 0 && (oabs[rl] == '/' || oabs[rl] == '\0' || rl == 1)) {
			log_error("image build: --out %s is inside the rootfs %s", out, rootfs);
			return EXIT_USAGE;
		}
	}
	int64_t fixed_time = BUILD_FIXED_TIME;
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	if (sde && *sde)
		fixed_time = strtoll(sde, NULL, 10);

	struct build b = {.out = out, .chunk = MANIFEST_DEFAULT_CHUNK};
	if (cs)
		parse_size(cs, &b.chunk);
	struct manifest m = {0};
	int status = EXIT_SETUP;
	int rc = S_ISDIR(st.st_mode) ? build_read_dir(&b, rootfs) : build_read_tarball(&b, rootfs);
	struct build_modules mods = {.how = BUILD_MODULES_SKIPPED};
	bool no_modules = config_flag(cfg, "no-modules");
	if (rc == 0 && !no_modules)
		rc = build_add_modules(&b, modules, ver, &mods);
	if (rc == 0)
		rc = finish_entries(&b, rootfs);
	if (rc < 0) {
		log_error("image build: %s", b.err);
		goto out;
	}
	double t_walk = clock_now_s();

	m.version = MANIFEST_VERSION;
	const char *name = config_get(cfg, "name");
	if (!name) {
		const char *slash = strrchr(rootfs, '/');
		name = slash && slash[1] ? slash + 1 : rootfs;
	}
	m.name = strdup(name);
	m.chunk_size = b.chunk;
	m.blobs_url = strdup(MANIFEST_DEFAULT_BLOBS);
	m.cmdline = strdup(config_get(cfg, "cmdline") ? config_get(cfg, "cmdline") : BUILD_DEFAULT_CMDLINE);
	m.entries = calloc(b.n, sizeof(*m.entries));
	if (!m.name || !m.blobs_url || !m.cmdline || !m.entries) {
		log_error("image build: out of memory");
		goto out;
	}
	uint64_t data_bytes = 0;
	for (size_t i = 0; i < b.n; i++) {
		m.entries[i] = b.v[i].e;
		memset(&b.v[i].e, 0, sizeof(b.v[i].e));
		if (m.entries[i].type == MF_REG)
			m.total_bytes += m.entries[i].size;
		data_bytes += b.v[i].data_bytes;
	}
	m.n_entries = b.n;
	if (manifest_validate(&m, err, sizeof(err)) < 0) {
		log_error("image build: rootfs %s: %s", rootfs, err);
		goto out;
	}
	/* The guest's init and what it runs first. */
	const char *init = BUILD_DEFAULT_INIT;
	char initbuf[MANIFEST_PATH_MAX + 1];
	const char *ip = strstr(m.cmdline, "init=");
	while (ip && ip != m.cmdline && ip[-1] != ' ')
		ip = strstr(ip + 1, "init=");
	if (ip) {
		snprintf(initbuf, sizeof(initbuf), "%.*s", (int)strcspn(ip + 5, " "), ip + 5);
		init = initbuf;
	}
	build_add_boot_chain(&m, out, init, 0);
	if (!m.n_boot_files)
		log_warn("image build: the image has no %s (its init)", init), b.warnings++;

	/* Kernel and the two initramfs images. */
	if (image_blob_from_file(out, kernel, b.chunk, &m.kernel, err, sizeof(err)) < 0) {
		log_error("image build: %s", err);
		goto out;
	}
	for (int lazy = 1; lazy >= 0; lazy--) {
		void *ird = NULL;
		size_t ilen;
		rc = image_initramfs_build(modules, lazy, busybox ? busybox : BUILD_DEFAULT_BUSYBOX,
					   &ird, &ilen, err, sizeof(err));
		if (rc == 0)
			rc = image_blob_from_buf(out, ird, ilen, lazy ? &m.initrd_lazy : &m.initrd_full,
						 err, sizeof(err));
		free(ird);
		if (rc < 0) {
			log_error("image build: %s initramfs: %s", lazy ? "lazy" : "full", err);
			goto out;
		}
	}
	double t_boot = clock_now_s();

	if (!config_flag(cfg, "no-disk")) {
		/* UUID and hash seed from the content: same files, same disk. */
		void *js;
		size_t jlen;
		uint8_t seed[MANIFEST_DIGEST_LEN];
		unsigned dl;
		if (manifest_write(&m, false, &js, &jlen, err, sizeof(err)) < 0) {
			log_error("image build: %s", err);
			goto out;
		}
		EVP_Digest(js, jlen, seed, &dl, EVP_sha256(), NULL);
		free(js);
		if (build_disk(&b, &m, seed, fixed_time, err, sizeof(err)) < 0) {
			log_error("image build: disk image: %s", err);
			goto out;
		}
		/* What the disk holds, so that verify tells when the files
		 * changed after it was built (a write-back). */
		if (manifest_tree_digest(&m, m.disk_tree) < 0) {
			log_error("image build: out of memory");
			goto out;
		}
		m.disk_tree_present = true;
	}
	double t_disk = clock_now_s();

	/* After the disk: its seed is the manifest without the profile, so
	 * the same files give the same disk with or without one. */
	const char *prof = config_get(cfg, "profile");
	if (prof) {
		char **pv;
		size_t pn, bad, kept, skipped;
		if (manifest_profile_read(prof, &pv, &pn, &bad, err, sizeof(err)) < 0) {
			log_error("image build: --profile: %s", err);
			goto out;
		}
		int prc = manifest_profile_set(&m, pv, pn, &kept, &skipped, err, sizeof(err));
		manifest_profile_free(pv, pn);
		if (prc < 0) {
			log_error("image build: --profile: %s", err);
			goto out;
		}
		if (skipped + bad)
			log_warn("image build: --profile: %zu entries are not files of "
				"the image: skipped", skipped + bad);
	}

	char mpath[4200], zpath[4200];
	snprintf(mpath, sizeof(mpath), "%s/%s", out, MANIFEST_FILE);
	snprintf(zpath, sizeof(zpath), "%s/%s", out, MANIFEST_FILE_ZST);
	if (manifest_write_file(&m, mpath, false, err, sizeof(err)) < 0 ||
	    manifest_write_file(&m, zpath, true, err, sizeof(err)) < 0) {
		log_error("image build: %s", err);
		goto out;
	}
	struct stat ms, zs;
	stat(mpath, &ms);
	stat(zpath, &zs);
	size_t counts[8] = {0};
	for (size_t i = 0; i < m.n_entries; i++)
		counts[m.entries[i].type]++;
	uint64_t boot_bytes = m.kernel.size + m.initrd_lazy.size + (uint64_t)zs.st_size;
	for (size_t i = 0; i < m.n_boot_files; i++) {
		const struct manifest_entry *e = manifest_lookup(&m, m.boot_files[i]);
		if (e && e->type == MF_REG)
			boot_bytes += e->size;
	}
	printf("image %s (%s) in %s\n", m.name, ver, out);
	printf("  entries: %zu (%zu regular, %zu dirs, %zu symlinks, %zu hard links, %zu other)\n",
	       m.n_entries, counts[MF_REG], counts[MF_DIR], counts[MF_SYMLINK], counts[MF_HARDLINK],
	       counts[MF_CHR] + counts[MF_BLK] + counts[MF_FIFO] + counts[MF_SOCK]);
	printf("  content: %" PRIu64 " bytes (%" PRIu64 " not in holes)\n", m.total_bytes, data_bytes);
	printf("  boot portion: %" PRIu64 " bytes (kernel %" PRIu64 ", lazy initramfs %" PRIu64
	       ", manifest.json.zst %lld, %zu boot files)\n", boot_bytes, m.kernel.size,
	       m.initrd_lazy.size, (long long)zs.st_size, m.n_boot_files);
	printf("  full initramfs: %" PRIu64 " bytes\n", m.initrd_full.size);
	char show[600];
	if (mods.how == BUILD_MODULES_ADDED)
		printf("  kernel modules: /%s (%zu files, %" PRIu64 " bytes, %zu symlinks kept) added "
		       "from %s, owned by root, files 0644, dirs 0755\n",
		       build_shown(mods.where, show, sizeof(show)), mods.n_files, mods.bytes,
		       mods.n_symlinks, modules);
	else if (mods.how == BUILD_MODULES_OWN)
		printf("  kernel modules: /%s from the rootfs (its own, left as they are)\n",
		       build_shown(mods.where, show, sizeof(show)));
	else
		printf("  kernel modules: none added for %s%s\n", ver,
		       no_modules ? " (--no-modules)" : "");
	if (m.disk.present) {
		char hex[65];
		manifest_digest_hex(m.disk.digest, hex);
		printf("  disk image: %" PRIu64 " bytes, ext4, sha256 %s\n", m.disk.size, hex);
	}
	printf("  manifest: %lld bytes (%lld zstd)\n", (long long)ms.st_size, (long long)zs.st_size);
	printf("  time: %.2f s (walk+hash %.2f, boot %.2f, disk %.2f)%s\n", clock_now_s() - t0,
	       t_walk - t0, t_boot - t_walk, t_disk - t_boot,
	       b.warnings ? ", with warnings above" : "");
	status = EXIT_OK;
out:
	for (size_t i = 0; i < b.n; i++)
		manifest_entry_free(&b.v[i].e);
	free(b.v);
	free(b.inodes);
	manifest_free(&m);
	return status;
}

CLI_COMMAND(.name = "image build", .usage = "",
	    .summary = "build an image (manifest, blobs, boot portion, ext4 disk) from a root filesystem",
	    .main = build_main)
