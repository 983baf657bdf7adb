/*
 * `--net tap,ifname=NAME`: the guest's frames go to a host tap interface,
 * an existing one (made with `ip tuntap add NAME mode tap user USER`) or
 * one the kernel creates when minivmm runs with CAP_NET_ADMIN. The host
 * side configures it (addresses, a bridge); minivmm only moves frames.
 *
 * The tap is opened with IFF_VNET_HDR and a 12-byte header
 * (TUNSETVNETHDRSZ): the kernel's struct virtio_net_hdr_v1 layout, the
 * same as the guest's, so a later offload or vhost-net path changes no
 * framing. No offload is enabled (TUNSETOFFLOAD 0): every frame is a
 * plain MTU frame with a zero header. Transmit is one writev from the
 * device's I/O thread (non-blocking: a full tap queue drops the frame);
 * receive is a thread of its own that reads and hands each frame over.
 *
 * vhost-net (the data path in the host kernel) is not done yet: --stats
 * net.path says "tap".
 */
#include "net/backend.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define TAP_DEV "/dev/net/tun"
/* virtio 1.2 5.1.6: struct virtio_net_hdr with num_buffers. */
#define TAP_VNET_HDR_LEN 12

struct tap_be {
	struct net_backend base;
	int fd, stopfd;
	pthread_t thread;
	bool running;
	char ifname[IFNAMSIZ];
	uint8_t rx_buf[TAP_VNET_HDR_LEN + NET_MAX_FRAME];
	_Atomic uint64_t tx_would_block, rx_errors;
};

static void *tap_thread(void *arg)
{
	struct tap_be *t = arg;
	struct pollfd p[2] = {{.fd = t->fd, .events = POLLIN}, {.fd = t->stopfd, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("--net tap: poll: %s", strerror(errno));
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			log_error("--net tap %s: the interface went away", t->ifname);
			return NULL;
		}
		/* One frame per read (the tap keeps frame boundaries). */
		for (;;) {
			ssize_t n = read(t->fd, t->rx_buf, sizeof(t->rx_buf));
			if (n < 0) {
				if (errno != EAGAIN && errno != EINTR)
					atomic_fetch_add(&t->rx_errors, 1);
				break;
			}
			if (n <= TAP_VNET_HDR_LEN) {
				atomic_fetch_add(&t->rx_errors, 1);
				continue;
			}
			t->base.rx(t->base.rx_opaque, t->rx_buf + TAP_VNET_HDR_LEN,
				   (size_t)n - TAP_VNET_HDR_LEN);
		}
	}
}

static int tap_send(struct net_backend *be, const void *frame, size_t len)
{
	struct tap_be *t = (struct tap_be *)be;
	uint8_t hdr[TAP_VNET_HDR_LEN] = {0}; /* no offload: nothing to say */
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)frame, len}};
	ssize_t n = writev(t->fd, iov, 2);
	if (n < 0) {
		atomic_fetch_add(&t->tx_would_block, 1);
		return -1;
	}
	return 0;
}

static void tap_stop(struct net_backend *be)
{
	struct tap_be *t = (struct tap_be *)be;
	if (!t->running)
		return;
	uint64_t one = 1;
	if (write(t->stopfd, &one, sizeof(one)) < 0)
		log_warn("--net tap: stop: %s", strerror(errno));
	pthread_join(t->thread, NULL);
	t->running = false;
}

static void tap_close(struct net_backend *be)
{
	struct tap_be *t = (struct tap_be *)be;
	tap_stop(be);
	if (t->fd >= 0)
		close(t->fd);
	if (t->stopfd >= 0)
		close(t->stopfd);
	free(t);
}

static void tap_stats(struct net_backend *be, json_t *o)
{
	struct tap_be *t = (struct tap_be *)be;
	json_object_set_new(o, "ifname", json_string(t->ifname));
	json_object_set_new(o, "backend_dropped", json_integer((json_int_t)t->tx_would_block));
	json_object_set_new(o, "backend_rx_errors", json_integer((json_int_t)t->rx_errors));
}

static const struct net_backend_ops tap_ops;

static struct net_backend *tap_open(const struct net_options *o, net_rx_fn rx, void *rx_opaque)
{
	struct tap_be *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->base = (struct net_backend){.ops = &tap_ops, .rx = rx, .rx_opaque = rx_opaque,
				       .path = "tap"};
	t->stopfd = -1;
	snprintf(t->ifname, sizeof(t->ifname), "%s", o->ifname);
	t->fd = open(TAP_DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0) {
		log_error("--net tap: %s: %s", TAP_DEV, strerror(errno));
		goto fail;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, t->ifname, sizeof(ifr.ifr_name));
	if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
		log_error("--net tap: cannot attach to %s: %s%s", t->ifname, strerror(errno),
			  errno == EPERM ? " (create it first: ip tuntap add NAME mode tap user "
					   "USER, or run as root)" : "");
		goto fail;
	}
	int hdr = TAP_VNET_HDR_LEN;
	if (ioctl(t->fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		log_error("--net tap %s: TUNSETVNETHDRSZ: %s", t->ifname, strerror(errno));
		goto fail;
	}
	if (ioctl(t->fd, TUNSETOFFLOAD, 0) < 0)
		log_warn("--net tap %s: TUNSETOFFLOAD: %s", t->ifname, strerror(errno));
	t->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->stopfd < 0) {
		log_error("--net tap: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&t->thread, NULL, tap_thread, t) != 0) {
		log_error("--net tap: cannot start its thread");
		goto fail;
	}
	pthread_setname_np(t->thread, "net-tap");
	t->running = true;
	return &t->base;
fail:
	tap_close(&t->base);
	return NULL;
}

static const struct net_backend_ops tap_ops = {
	.name = "tap",
	.open = tap_open,
	.send = tap_send,
	.stop = tap_stop,
	.close = tap_close,
	.stats = tap_stats,
};

NET_BACKEND_REGISTER(tap_ops)
