/*
 * virtio-fs (virtio 1.2 section 5.11): the file-request device. The guest
 * mounts it with `mount -t virtiofs minivmm-root /mnt`; every FUSE request
 * it sends on a queue is served by the FUSE server in fs/ (fs_handle).
 *
 * Queues (5.11.2): 0 is the hiprio queue (FORGET, BATCH_FORGET: answered
 * at once on the I/O thread), 1..N the request queues. Request chains are
 * handed to a pool of worker threads, so while one request waits on the
 * storage server (a file fault) the others are served; replies go back in
 * completion order (virtq_push is thread-safe, 5.11.6.1 lets requests
 * complete out of order).
 *
 *   --fs-root DIR|MANIFEST   what the guest sees (a host directory, served
 *                            read-only, or an image manifest whose blobs
 *                            lie beside it)
 *   --fs-state DIR           the upper layer: the guest's changes
 */
#include "devices/device.h"
#include "devices/virtio/virtio.h"
#include "fs/fs.h"
#include "fs/root.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/stats.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 5.11.4 Device configuration layout. */
#define VIRTIO_FS_TAG_LEN 36
struct virtio_fs_config {
	char tag[VIRTIO_FS_TAG_LEN]; /* UTF-8, NUL-padded, not terminated if 36 long */
	uint32_t num_request_queues;  /* le32 */
	uint32_t notify_buf_size;     /* le32, only with VIRTIO_FS_F_NOTIFICATION */
} __attribute__((packed));

#define VFS_HIPRIO_QUEUE 0
#define VFS_DEFAULT_TAG "minivmm-root"
#define VFS_DEFAULT_THREADS 4
#define VFS_MAX_THREADS 64
#define VFS_QUEUE_SIZE 1024

struct vfs_work {
	struct virtq *vq;
	struct vfs_work *next;
	struct virtq_chain chain; /* large: allocated per request */
};

struct vfs_dev {
	struct virtio_fs_config config;
	struct virtio_dev_ops ops; /* vfs_ops with this instance's queue count */
	struct vm *vm;
	struct virtio_dev *dev;
	struct lazy_root *root; /* --fs-root: the manifest, backend, state, write-back */
	struct fs *fs;          /* lazy_root_fs(root): where requests go */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vfs_work *head, *tail;
	bool stopping;
	int n_threads;
	pthread_t threads[VFS_MAX_THREADS];
};

static int validate_tag(const char *v, char *err, size_t errlen)
{
	if (!*v || strlen(v) > VIRTIO_FS_TAG_LEN) {
		snprintf(err, errlen, "a virtio-fs tag is 1 to %d bytes", VIRTIO_FS_TAG_LEN);
		return -1;
	}
	return 0;
}

CLI_OPTION(.command = "run", .name = "fs-root", .argname = "DIR|MANIFEST|URL",
	   .help = "serve this root to the guest over virtio-fs (tag minivmm-root): a host "
		   "directory, an image manifest with its blobs beside it, or an image URL")
CLI_OPTION(.command = "run", .name = "fs-state", .argname = "DIR",
	   .help = "keep the guest's changes to the --fs-root in DIR (default: a temporary "
		   "directory, removed at exit unless it holds changes not written back)")
CLI_OPTION(.command = "run", .name = "fs-tag", .argname = "TAG",
	   .help = "virtio-fs mount tag (default minivmm-root)", .validate = validate_tag)
CLI_OPTION(.command = "run", .name = "fs-threads", .argname = "N",
	   .help = "worker threads serving file requests (default 4)",
	   .kind = CLI_UINT, .min = 1, .max = VFS_MAX_THREADS)
CLI_OPTION(.command = "run", .name = "fs-queues", .argname = "N",
	   .help = "virtio-fs request queues (default 1)",
	   .kind = CLI_UINT, .min = 1, .max = VIRTIO_MAX_QUEUES - 1)
CLI_OPTION(.command = "run", .name = "fs-max-files", .argname = "N",
	   .help = "files (and as many names) the guest may add to the --fs-root before "
		   "creating one fails with ENOSPC; each costs ~500 bytes of memory "
		   "(default 1000000)", .kind = CLI_UINT)
CLI_OPTION(.command = "run", .name = "fs-read-only", .argname = NULL,
	   .help = "refuse every change to the --fs-root (EROFS)")

static void serve(struct virtq *vq, struct virtq_chain *c, struct fs *fs)
{
	size_t len = fs_handle(fs, virtq_chain_rd(c), c->n_rd, virtq_chain_wr(c), c->n_wr);
	virtq_push(vq, c, (uint32_t)len);
	virtq_notify(vq);
}

static void *worker(void *arg)
{
	struct vfs_dev *d = arg;
	for (;;) {
		pthread_mutex_lock(&d->lock);
		while (!d->head && !d->stopping)
			pthread_cond_wait(&d->cond, &d->lock);
		struct vfs_work *w = d->head;
		if (!w) {
			pthread_mutex_unlock(&d->lock);
			return NULL;
		}
		d->head = w->next;
		if (!d->head)
			d->tail = NULL;
		pthread_mutex_unlock(&d->lock);
		serve(w->vq, &w->chain, d->fs);
		free(w);
	}
}

/* May this request be answered on the device thread? Only the hiprio
 * queue's own requests (virtio 1.2, 5.11.6.1: FORGET, BATCH_FORGET and
 * INTERRUPT), which touch no content: a guest that puts anything else there
 * (an OPEN that faults a file in, say) gets it served by a worker, so the
 * device thread, which runs under the transport's device lock, never waits
 * on the network. */
static bool vfs_hiprio_inline(const struct virtq_chain *c)
{
	struct fuse_in_header h;
	if (virtq_chain_read(c, 0, &h, sizeof(h)) < 0)
		return true; /* too short: answered at once with an error */
	return !fs_opcode_has_reply(h.opcode); /* the server's no-reply list */
}

static void vfs_handle_queue(struct virtio_dev *dev, struct virtq *vq)
{
	struct vfs_dev *d = virtio_dev_opaque(dev);
	for (;;) {
		struct vfs_work *w = malloc(sizeof(*w));
		if (!w)
			return; /* retried at the next notification */
		if (virtq_pop(vq, &w->chain) <= 0) {
			free(w);
			return;
		}
		if (vq->index == VFS_HIPRIO_QUEUE && vfs_hiprio_inline(&w->chain)) {
			serve(vq, &w->chain, d->fs); /* forgets: no I/O, no wait */
			free(w);
			continue;
		}
		w->vq = vq;
		w->next = NULL;
		pthread_mutex_lock(&d->lock);
		if (d->tail)
			d->tail->next = w;
		else
			d->head = w;
		d->tail = w;
		pthread_cond_signal(&d->cond);
		pthread_mutex_unlock(&d->lock);
	}
}

static void vfs_stats(void *opaque, json_t *o)
{
	struct vfs_dev *d = opaque;
	struct fs_stats st;
	fs_get_stats(d->fs, &st);
	json_object_set_new(o, "requests", json_integer((json_int_t)st.requests));
	json_object_set_new(o, "files_faulted", json_integer((json_int_t)st.files_faulted));
	json_object_set_new(o, "faults", json_integer((json_int_t)st.faults));
	json_object_set_new(o, "faults_failed", json_integer((json_int_t)st.faults_failed));
	json_object_set_new(o, "bytes_fetched", json_integer((json_int_t)st.bytes_fetched));
	json_object_set_new(o, "fetch_requests", json_integer((json_int_t)st.fetch_requests));
	json_object_set_new(o, "image_bytes", json_integer((json_int_t)st.image_bytes));
	json_object_set_new(o, "image_share_fetched",
			    json_real(st.image_bytes ? (double)st.bytes_fetched / (double)st.image_bytes : 0));
	json_object_set_new(o, "fault_p50_ms", json_real((double)st.fault_p50_ns / 1e6));
	json_object_set_new(o, "fault_p99_ms", json_real((double)st.fault_p99_ns / 1e6));
	json_object_set_new(o, "fault_max_ms", json_real((double)st.fault_max_ns / 1e6));
	json_object_set_new(o, "bytes_read", json_integer((json_int_t)st.bytes_read));
	json_object_set_new(o, "bytes_written", json_integer((json_int_t)st.bytes_written));
	json_object_set_new(o, "copy_ups", json_integer((json_int_t)st.copy_ups));
	json_object_set_new(o, "fuse_requests", fs_request_counts_json(d->fs));
	json_object_set_new(o, "bytes_written_back",
			    json_integer((json_int_t)lazy_root_written_back(d->root)));
}

static const struct virtio_dev_ops vfs_ops = {
	.name = "virtio-fs",
	.device_id = VIRTIO_ID_FS,
	.features = 0,
	.config_size = sizeof(struct virtio_fs_config),
	.num_queues = 2,
	.queue_max_size = VFS_QUEUE_SIZE,
	.handle_queue = vfs_handle_queue,
};

/* Tell the workers to finish and join them (none left after). */
static void vfs_workers_stop(struct vfs_dev *d)
{
	if (!d->n_threads)
		return;
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	for (int i = 0; i < d->n_threads; i++)
		pthread_join(d->threads[i], NULL);
	d->n_threads = 0;
}

static void vfs_free(struct vfs_dev *d)
{
	stats_unregister(d);
	vfs_workers_stop(d);
	virtio_dev_destroy(d->dev); /* its I/O thread queues work: gone before the queue */
	while (d->head) {
		struct vfs_work *w = d->head;
		d->head = w->next;
		free(w);
	}
	lazy_root_free(d->root);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d);
}

static const struct device_ops vfs_device;

static int vfs_create(struct vm *vm)
{
	const char *root = config_get(vm->cfg, "fs-root");
	if (!root)
		return 0;
	struct vfs_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	char err[512] = "";
	const char *tag = config_get(vm->cfg, "fs-tag");
	strncpy(d->config.tag, tag ? tag : VFS_DEFAULT_TAG, VIRTIO_FS_TAG_LEN);
	uint16_t nq = (uint16_t)config_get_uint(vm->cfg, "fs-queues", 1);
	d->config.num_request_queues = nq; /* x86: little-endian already */
	d->vm = vm;

	struct lazy_root_options lo = {
		.cfg = vm->cfg, .state_dir = config_get(vm->cfg, "fs-state"),
		.read_only = config_flag(vm->cfg, "fs-read-only"),
		.max_files = config_get_uint(vm->cfg, "fs-max-files", 0),
		.writeback = true, /* unless --no-writeback */
	};
	d->root = lazy_root_open(root, &lo, err, sizeof(err));
	if (!d->root) {
		log_error("virtio-fs: %s", err);
		goto fail;
	}
	d->fs = lazy_root_fs(d->root);
	d->ops = vfs_ops;
	d->ops.num_queues = (uint16_t)(1 + nq);
	d->dev = virtio_dev_create(vm, &d->ops, d, &d->config);
	if (!d->dev)
		goto fail;
	int n = (int)config_get_uint(vm->cfg, "fs-threads", VFS_DEFAULT_THREADS);
	for (int i = 0; i < n; i++) {
		if (pthread_create(&d->threads[i], NULL, worker, d) != 0)
			break;
		d->n_threads++;
	}
	if (!d->n_threads) {
		log_error("virtio-fs: cannot start worker threads");
		goto fail;
	}
	if (device_add(vm, &vfs_device, d) < 0)
		goto fail;
	stats_register("fs", vfs_stats, d);
	log_debug("virtio-fs: tag %s, state %s", d->config.tag, lazy_root_state_dir(d->root));
	return 0;
fail:
	vfs_free(d);
	return -1;
}

/* Write back only after the guest powered off (ACPI, exit status 0). A
 * crash, a hang, a signal or a test guest's debug-exit leaves the changes
 * staged for `minivmm writeback STATE_DIR`. */
static bool vfs_clean_stop(int status)
{
	return status == EXIT_OK;
}

static void vfs_interrupt(void *root, int sig)
{
	lazy_root_interrupt(root, sig);
}

static void vfs_stop(void *instance)
{
	struct vfs_dev *d = instance;
	struct vm *vm = d->vm;
	/* The vCPUs have stopped. Drain the workers first (they push to the
	 * queues, which must still exist), then stop the I/O thread. */
	vfs_workers_stop(d);
	virtio_dev_stop(d->dev);

	/* A second stop signal reaches the root's write-back while it runs. */
	vm_on_interrupt(vm, vfs_interrupt, d->root);
	int rc = lazy_root_close(d->root, vfs_clean_stop(vm->exit_status) ? LAZY_ROOT_CLEAN :
							     LAZY_ROOT_ABORTED);
	vm_on_interrupt(vm, NULL, NULL);
	if (rc)
		vm->stop_failure = rc;
}

/* After --stats, which reads the server's figures. */
static void vfs_destroy(void *instance)
{
	vfs_free(instance);
}

static const struct device_ops vfs_device = {
	.name = "virtio-fs",
	.order = DEVICE_ORDER_VIRTIO,
	.create = vfs_create,
	.stop = vfs_stop,
	.destroy = vfs_destroy,
};

DEVICE_REGISTER(vfs_device)
