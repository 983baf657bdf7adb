/*
 * `minivmm fs mount ROOT MOUNTPOINT`: serve an image (or a host directory)
 * on the host through the kernel's own FUSE device, /dev/fuse, with the
 * same server the guest talks to over virtio-fs. /dev/fuse carries the
 * very same messages (fuse_in_header + arguments in, fuse_out_header +
 * reply out), so this looks into an image lazily without a VM, and lets
 * the tests run real programs against the server where no guest boots.
 * Needs CAP_SYS_ADMIN (mount). Runs until the mount point is unmounted.
 */
#include "fs/fs.h"
#include "fs/root.h"
#include "fetch/cache.h"
#include "fetch/fetch.h"
#include "fetch/url.h"
#include "lib/cli.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOUNT_THREADS 4
#define MOUNT_BUF (FS_DEFAULT_MAX_WRITE + 64 * 1024) /* a WRITE and its header */

struct mount_ctx {
	struct fs *fs;
	int fd;
};

static void *serve_dev_fuse(void *arg)
{
	struct mount_ctx *m = arg;
	uint8_t *in = malloc(MOUNT_BUF), *out = malloc(MOUNT_BUF);
	while (in && out) {
		ssize_t n = read(m->fd, in, MOUNT_BUF);
		if (n < 0 && (errno == EINTR || errno == ENOENT)) /* ENOENT: interrupted request */
			continue;
		if (n <= 0)
			break; /* ENODEV: unmounted */
		struct iovec iv = {in, (size_t)n}, ov = {out, MOUNT_BUF};
		size_t r = fs_handle(m->fs, &iv, 1, &ov, 1);
		if (r && write(m->fd, out, r) < 0 && errno != ENOENT)
			log_debug("fs mount: reply: %s", strerror(errno));
	}
	free(in);
	free(out);
	return NULL;
}

static bool is_image_url(const char *s)
{
	enum url_scheme k = url_scheme(s);
	return k == URL_HTTP || k == URL_HTTPS || k == URL_FILE;
}

/* Mount fs on mnt and serve it until unmounted. 0, or -1 after a message. */
static int serve_mount(struct fs *fs, const char *what, const char *mnt, const char *state)
{
	struct mount_ctx m = {.fs = fs, .fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)};
	char opts[256];
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0,"
		 "default_permissions,allow_other", m.fd);
	if (m.fd < 0 || mount("minivmm", mnt, "fuse.minivmm", MS_NOSUID | MS_NODEV, opts) < 0) {
		log_error("fs mount: %s: %s", m.fd < 0 ? "/dev/fuse" : mnt,
			strerror(errno));
		if (m.fd >= 0)
			close(m.fd);
		return -1;
	}
	fprintf(stderr, "minivmm: %s mounted on %s (state %s); umount it to stop\n", what, mnt, state);
	pthread_t th[MOUNT_THREADS];
	int n = 0;
	for (; n < MOUNT_THREADS; n++)
		if (pthread_create(&th[n], NULL, serve_dev_fuse, &m) != 0)
			break;
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	close(m.fd);
	return 0;
}

static int mount_main(const struct config *cfg)
{
	if (cfg->n_args != 2) {
		return cli_usage_error("fs mount", "give DIR|MANIFEST|URL and MOUNTPOINT");
	}
	const char *root = cfg->args[0], *mnt = cfg->args[1];
	struct stat st;
	bool url = is_image_url(root);
	if (!url && stat(root, &st) < 0) {
		log_error("fs mount: %s: %s", root, strerror(errno));
		return EXIT_USAGE;
	}
	if (!url && S_ISDIR(st.st_mode) && config_flag(cfg, "writeback")) {
		log_error("fs mount: --writeback needs an image root (a MANIFEST or an "
			"image URL): a host directory has nothing to write back to");
		return EXIT_USAGE;
	}
	struct lazy_root_options o = {
		.cfg = cfg, .state_dir = config_get(cfg, "fs-state"),
		.read_only = config_flag(cfg, "read-only"),
		.max_files = config_get_uint(cfg, "fs-max-files", 0),
		.writeback = config_flag(cfg, "writeback"),
	};
	char err[1024] = "";
	struct lazy_root *r = lazy_root_open(root, &o, err, sizeof(err));
	if (!r) {
		log_error("fs mount: %s", err);
		return EXIT_SETUP;
	}
	int status = EXIT_SETUP;
	if (serve_mount(lazy_root_fs(r), root, mnt, lazy_root_state_dir(r)) == 0)
		status = lazy_root_close(r, LAZY_ROOT_CLEAN);
	lazy_root_free(r);
	return status;
}

CLI_COMMAND(.name = "fs mount", .usage = "DIR|MANIFEST|URL MOUNTPOINT",
	    .summary = "serve an image on the host through /dev/fuse (no VM), until unmounted",
	    .main = mount_main)
CLI_OPTION(.command = "fs mount", .name = "fs-state", .argname = "DIR",
	   .help = "keep changes in DIR (default: a new temporary directory)")
CLI_OPTION(.command = "fs mount", .name = "writeback", .argname = NULL,
	   .help = "after unmount, write the changes back to the image (MANIFEST and URL roots; "
		   "exit 12 if that does not complete, the changes kept in --fs-state)")
CLI_OPTION(.command = "fs mount", .name = "fs-max-files", .argname = "N",
	   .help = "files (and as many names) that may be added before creating one fails with "
		   "ENOSPC (default 1000000)", .kind = CLI_UINT)
CLI_OPTION(.command = "fs mount", .name = "read-only", .argname = NULL,
	   .help = "refuse every change (EROFS)")

/* A URL root is fetched like run --image-url does, with the same options. */
__attribute__((constructor)) static void mount_options(void)
{
	fetch_cli_register("fs mount");
	cache_cli_register("fs mount");
}
