/*
 * The generated initramfs: a newc cpio archive (the format the kernel
 * unpacks, Documentation/driver-api/early-userspace/buffer-format.rst)
 * written in memory with fixed timestamps and inode numbers, so the same
 * busybox and modules give the same bytes; zstd-compressed (the stock
 * Debian kernel has CONFIG_RD_ZSTD).
 */
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#define CPIO_NEWC_MAGIC "070701"
#define CPIO_TRAILER "TRAILER!!!"
/* Lazy mode fetches its initramfs before boot: worth the slower level. */
#define INITRAMFS_ZSTD_LEVEL_LAZY 19
#define INITRAMFS_ZSTD_LEVEL_FULL 9
#define INITRAMFS_MAX_MODULES 64
#define MODULE_MAX_BYTES (64 << 20)

/* What each mode loads, in this order, each after its modules.dep deps.
 * crc32c_generic: ext4 and jbd2 ask for "crypto-crc32c" (a softdep in
 * modules.softdep) through modprobe, which the initramfs does not have. */
static const char *const lazy_modules[] = {"virtio_mmio", "virtiofs", NULL};
static const char *const full_modules[] = {"virtio_mmio", "virtio_blk", "?crc32c_generic", "ext4", NULL};

/* Applets the init script uses (busybox is installed once, these link to it). */
static const char *const applets[] = {"sh", "mount", "umount", "insmod", "switch_root", "sleep",
				      "cat", "mkdir", "poweroff", "echo", "test", "grep", "ls", NULL};

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_add(struct buf *b, const void *data, size_t n)
{
	if (b->oom || n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1 << 20;
		while (cap < b->len + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p, b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void buf_pad4(struct buf *b)
{
	static const char z[4];
	buf_add(b, z, (4 - b->len % 4) % 4);
}

static unsigned cpio_ino = 1;

static void cpio_add(struct buf *b, const char *name, uint32_t mode, const void *data,
		     size_t len, uint32_t rmaj, uint32_t rmin)
{
	char hdr[160];
	size_t nlen = strlen(name) + 1;
	/* ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
	 * rdevmajor, rdevminor, namesize, check: 8 hex digits each. mtime 0
	 * and sequential inode numbers keep the archive reproducible. */
	snprintf(hdr, sizeof(hdr), "%s%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X",
		 CPIO_NEWC_MAGIC, cpio_ino++, mode, 0, 0, S_ISDIR(mode) ? 2 : 1, 0, len, 0, 0,
		 rmaj, rmin, nlen, 0);
	buf_add(b, hdr, 110);
	buf_add(b, name, nlen);
	buf_pad4(b);
	buf_add(b, data, len);
	buf_pad4(b);
}

static int read_file(const char *path, char **out, size_t *len, size_t max, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		snprintf(err, errlen, "%s: %s", path,
			 fd < 0 ? strerror(errno) : "not a regular file of a sane size");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	char *p = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (p && got < (size_t)st.st_size) {
		ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!p || got != (size_t)st.st_size) {
		snprintf(err, errlen, "%s: short read", path);
		free(p);
		return -1;
	}
	p[got] = '\0';
	*out = p;
	*len = got;
	return 0;
}

/* Modules compressed by the distribution (.ko.xz, .ko.zst) are
 * decompressed here, so busybox insmod gets a plain ELF object. */
static int load_module(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	size_t n = strlen(path);
	if (n > 4 && strcmp(path + n - 4, ".zst") == 0) {
		char *z;
		size_t zlen;
		if (read_file(path, &z, &zlen, MODULE_MAX_BYTES, err, errlen) < 0)
			return -1;
		unsigned long long size = ZSTD_getFrameContentSize(z, zlen);
		if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
		    size > MODULE_MAX_BYTES) {
			snprintf(err, errlen, "%s: cannot tell its decompressed size", path);
			free(z);
			return -1;
		}
		char *p = malloc(size ? size : 1);
		size_t r = p ? ZSTD_decompress(p, size, z, zlen) : 0;
		free(z);
		if (!p || ZSTD_isError(r) || r != size) {
			snprintf(err, errlen, "%s: zstd decompression failed", path);
			free(p);
			return -1;
		}
		*out = p, *len = r;
		return 0;
	}
	if (n > 3 && strcmp(path + n - 3, ".xz") == 0) {
		/* No liblzma in the build: the xz tool, without a shell. */
		int pfd[2];
		if (pipe(pfd) < 0)
			goto xz_fail;
		pid_t pid = fork();
		if (pid == 0) {
			dup2(pfd[1], 1);
			close(pfd[0]);
			close(pfd[1]);
			execlp("xz", "xz", "-dc", "--", path, (char *)NULL);
			_exit(127);
		}
		close(pfd[1]);
		struct buf b = {0};
		char tmp[65536];
		ssize_t r;
		while ((r = read(pfd[0], tmp, sizeof(tmp))) > 0 && b.len < MODULE_MAX_BYTES)
			buf_add(&b, tmp, (size_t)r);
		close(pfd[0]);
		int status = 0;
		while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (pid < 0 || b.oom || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			free(b.p);
			goto xz_fail;
		}
		*out = b.p, *len = b.len;
		return 0;
	xz_fail:
		snprintf(err, errlen, "%s: cannot decompress (is xz-utils installed?)", path);
		return -1;
	}
	return read_file(path, out, len, MODULE_MAX_BYTES, err, errlen);
}

/* modules.dep: "kernel/fs/fuse/virtiofs.ko: kernel/fs/fuse/fuse.ko ..." */
struct moddep {
	char *text;
	char **lines;
	size_t n;
};

static bool name_matches(const char *relpath, const char *want)
{
	/* The module's own path ends at the ':' of a modules.dep line. */
	size_t plen = strcspn(relpath, ":");
	const char *base = relpath;
	for (size_t i = 0; i < plen; i++)
		if (relpath[i] == '/')
			base = relpath + i + 1;
	size_t i = 0;
	for (; want[i]; i++) {
		char a = base[i] == '-' ? '_' : base[i], b = want[i] == '-' ? '_' : want[i];
		if (a != b)
			return false;
	}
	return strncmp(base + i, ".ko", 3) == 0 && (base[i + 3] == '\0' || base[i + 3] == '.' ||
						     base[i + 3] == ':');
}

static const char *dep_find(const struct moddep *d, const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (name_matches(d->lines[i], name))
			return d->lines[i];
	return NULL;
}

static const char *dep_find_path(const struct moddep *d, const char *path, size_t len)
{
	for (size_t i = 0; i < d->n; i++)
		if (strncmp(d->lines[i], path, len) == 0 && d->lines[i][len] == ':')
			return d->lines[i];
	return NULL;
}

struct modlist {
	char *paths[INITRAMFS_MAX_MODULES];
	size_t n;
};

/* Add line's module after its dependencies. modules.dep lists a module's
 * dependencies deepest last, so they load in reverse order. */
static int add_with_deps(const struct moddep *d, const char *line, struct modlist *out,
			 int depth, char *err, size_t errlen)
{
	size_t plen = strcspn(line, ":");
	if (depth > 32) {
		snprintf(err, errlen, "modules.dep: dependency loop at %.*s", (int)plen, line);
		return -1;
	}
	for (size_t i = 0; i < out->n; i++)
		if (strlen(out->paths[i]) == plen && strncmp(out->paths[i], line, plen) == 0)
			return 0;
	const char *deps = line + plen + (line[plen] == ':');
	/* Walk the dependency words from the last to the first. */
	const char *end = deps + strlen(deps);
	while (end > deps) {
		while (end > deps && end[-1] == ' ')
			end--;
		const char *start = end;
		while (start > deps && start[-1] != ' ')
			start--;
		if (start == end)
			break;
		const char *dl = dep_find_path(d, start, (size_t)(end - start));
		if (!dl) {
			snprintf(err, errlen, "modules.dep: %.*s needs %.*s, which is not listed",
				 (int)plen, line, (int)(end - start), start);
			return -1;
		}
		if (add_with_deps(d, dl, out, depth + 1, err, errlen) < 0)
			return -1;
		end = start;
	}
	for (size_t i = 0; i < out->n; i++)
		if (strlen(out->paths[i]) == plen && strncmp(out->paths[i], line, plen) == 0)
			return 0;
	if (out->n == INITRAMFS_MAX_MODULES) {
		snprintf(err, errlen, "too many modules");
		return -1;
	}
	out->paths[out->n++] = strndup(line, plen);
	return 0;
}

static bool is_builtin(const char *modules_dir, const char *name)
{
	char path[4200], *text;
	size_t len;
	char e[16];
	snprintf(path, sizeof(path), "%s/modules.builtin", modules_dir);
	if (read_file(path, &text, &len, 16 << 20, e, sizeof(e)) < 0)
		return false;
	bool found = false;
	for (char *line = strtok(text, "\n"); line && !found; line = strtok(NULL, "\n"))
		found = name_matches(line, name);
	free(text);
	return found;
}

static const char init_head[] =
	"#!/bin/sh\n"
	"# minivmm initramfs init (generated by minivmm image build).\n"
	"export PATH=/bin\n"
	"mount -t proc proc /proc\n"
	"mount -t sysfs sysfs /sys\n"
	"mount -t devtmpfs devtmpfs /dev\n"
	"for m in $(cat /lib/modules/load-order); do\n"
	"\tinsmod /lib/modules/$m || echo \"minivmm-init: insmod $m failed\"\n"
	"done\n"
	"echo " IMAGE_INIT_MARKER "\n"
	"init=/sbin/init\n"
	"for a in $(cat /proc/cmdline); do\n"
	"\tcase $a in init=*) init=${a#init=} ;; esac\n"
	"done\n"
	"fail() { echo \"minivmm-init: $*\"; poweroff -f; sleep 5; }\n";

static const char init_lazy[] =
	"mount -t virtiofs " IMAGE_VIRTIOFS_TAG " /newroot || fail \"cannot mount the root "
	"(virtiofs tag " IMAGE_VIRTIOFS_TAG ")\"\n";

/* The disk may appear a moment after the driver loads. */
static const char init_full[] =
	"i=0\n"
	"while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done\n"
	"mount -t ext4 /dev/vda /newroot || fail \"cannot mount the root (/dev/vda, ext4)\"\n";

static const char init_tail[] =
	"[ -x \"/newroot$init\" ] || [ -L \"/newroot$init\" ] || fail \"no init $init in the image\"\n"
	"for d in proc sys dev; do\n"
	"\tif [ -d /newroot/$d ]; then mount --move /$d /newroot/$d; else umount -l /$d; fi\n"
	"done\n"
	"exec switch_root /newroot \"$init\"\n"
	"fail \"switch_root to $init failed\"\n";

int image_initramfs_build(const char *modules_dir, bool lazy, const char *busybox,
			  void **out, size_t *outlen, char *err, size_t errlen)
{
	char path[4200];
	struct moddep dep = {0};
	struct modlist mods = {0};
	struct buf b = {0}, order = {0}, init = {0};
	char *bb = NULL;
	size_t bblen, deplen;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/modules.dep", modules_dir);
	if (read_file(path, &dep.text, &deplen, 64 << 20, err, errlen) < 0)
		goto out;
	for (char *p = dep.text; *p; p++)
		if (*p == '\n')
			dep.n++;
	dep.lines = calloc(dep.n + 1, sizeof(char *));
	if (!dep.lines)
		goto oom;
	dep.n = 0;
	for (char *line = strtok(dep.text, "\n"); line; line = strtok(NULL, "\n"))
		dep.lines[dep.n++] = line;

	for (const char *const *m = lazy ? lazy_modules : full_modules; *m; m++) {
		bool optional = (*m)[0] == '?';
		const char *name = *m + optional;
		const char *line = dep_find(&dep, name);
		if (!line) {
			if (optional || is_builtin(modules_dir, name))
				continue;
			snprintf(err, errlen, "%s: module %s is neither in modules.dep nor built in "
				 "(a kernel without it cannot mount the %s root)", path, name,
				 lazy ? "lazy" : "full");
			goto out;
		}
		if (add_with_deps(&dep, line, &mods, 0, err, errlen) < 0)
			goto out;
	}

	if (read_file(busybox, &bb, &bblen, 64 << 20, err, errlen) < 0)
		goto out;
	cpio_ino = 1;
	static const char *const dirs[] = {"bin", "dev", "lib", "lib/modules", "newroot", "proc",
					   "sys", NULL};
	for (const char *const *d = dirs; *d; d++)
		cpio_add(&b, *d, S_IFDIR | 0755, NULL, 0, 0, 0);
	/* The kernel opens /dev/console for init's stdio before /init runs. */
	cpio_add(&b, "dev/console", S_IFCHR | 0600, NULL, 0, 5, 1);
	cpio_add(&b, "dev/null", S_IFCHR | 0666, NULL, 0, 1, 3);
	cpio_add(&b, "bin/busybox", S_IFREG | 0755, bb, bblen, 0, 0);
	for (const char *const *a = applets; *a; a++) {
		snprintf(path, sizeof(path), "bin/%s", *a);
		cpio_add(&b, path, S_IFLNK | 0777, "busybox", 7, 0, 0);
	}
	for (size_t i = 0; i < mods.n; i++) {
		char *data;
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", modules_dir, mods.paths[i]);
		if (load_module(path, &data, &len, err, errlen) < 0)
			goto out;
		/* Flattened to lib/modules/NN-name.ko, NN keeping the order. */
		const char *base = strrchr(mods.paths[i], '/');
		base = base ? base + 1 : mods.paths[i];
		char name[300];
		snprintf(name, sizeof(name), "%02zu-%.*s.ko", i, (int)strcspn(base, "."), base);
		snprintf(path, sizeof(path), "lib/modules/%s", name);
		cpio_add(&b, path, S_IFREG | 0644, data, len, 0, 0);
		free(data);
		buf_add(&order, name, strlen(name));
		buf_add(&order, "\n", 1);
	}
	cpio_add(&b, "lib/modules/load-order", S_IFREG | 0644, order.p, order.len, 0, 0);
	buf_add(&init, init_head, strlen(init_head));
	buf_add(&init, lazy ? init_lazy : init_full, strlen(lazy ? init_lazy : init_full));
	buf_add(&init, init_tail, strlen(init_tail));
	cpio_add(&b, "init", S_IFREG | 0755, init.p, init.len, 0, 0);
	cpio_add(&b, CPIO_TRAILER, 0, NULL, 0, 0, 0);
	if (b.oom || order.oom || init.oom)
		goto oom;

	size_t cap = ZSTD_compressBound(b.len);
	void *z = malloc(cap);
	if (!z)
		goto oom;
	/* A checksummed frame with its content size: what the kernel's
	 * unzstd handles best. */
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t zlen = 0;
	if (cc) {
		ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel,
				       lazy ? INITRAMFS_ZSTD_LEVEL_LAZY : INITRAMFS_ZSTD_LEVEL_FULL);
		ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
		zlen = ZSTD_compress2(cc, z, cap, b.p, b.len);
		ZSTD_freeCCtx(cc);
	}
	if (!cc || ZSTD_isError(zlen)) {
		free(z);
		snprintf(err, errlen, "initramfs: zstd compression failed");
		goto out;
	}
	*out = z;
	*outlen = zlen;
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "initramfs: out of memory");
out:
	for (size_t i = 0; i < mods.n; i++)
		free(mods.paths[i]);
	free(dep.lines);
	free(dep.text);
	free(bb);
	free(b.p);
	free(order.p);
	free(init.p);
	return rc;
}
