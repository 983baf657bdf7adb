/*
 * `--net user`: user-mode networking with libslirp (the stack QEMU uses).
 * No root, no host interface: the guest's TCP and UDP become the VMM's own
 * sockets. slirp's defaults, as QEMU's: network 10.0.2.0/24, the guest
 * 10.0.2.15 (DHCP), the gateway 10.0.2.2 which reaches the host's
 * loopback, DNS relay at 10.0.2.3 only with dns=on. hostfwd rules listen
 * on the host and connect into the guest.
 *
 * libslirp is not thread-safe: after open every slirp_* call is made on
 * the backend's own thread, which polls slirp's sockets, runs its timers
 * and feeds it the guest's frames. The device's I/O thread only queues a
 * frame (bounded: full means dropped) and writes an eventfd. open (before
 * the thread starts) and close (after it is joined) call slirp on the main
 * thread; pthread_create and pthread_join order those calls.
 */
#include "net/backend.h"
#include "lib/log.h"

#include <libslirp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Frames from the guest waiting for the slirp thread. */
#define SLIRP_TXQ_FRAMES 256
#define SLIRP_TXQ_BYTES (1u << 20)
/* Longest poll when slirp has nothing timed: its TCP timers ask for less
 * whenever they run (slirp_pollfds_fill lowers the timeout). */
#define SLIRP_POLL_MS 1000

#define SLIRP_NET "10.0.2.0"
#define SLIRP_MASK "255.255.255.0"
#define SLIRP_HOST "10.0.2.2"
#define SLIRP_GUEST "10.0.2.15"
#define SLIRP_DNS "10.0.2.3"

struct sl_frame {
	struct sl_frame *next;
	size_t len;
	uint8_t data[];
};

struct sl_timer {
	struct sl_timer *next;
	SlirpTimerCb cb;
	void *cb_opaque;
	int64_t expire_ms; /* -1: not armed */
};

struct sl_be {
	struct net_backend base;
	Slirp *slirp;
	int wakefd;
	pthread_t thread;
	bool running;
	atomic_bool stopping;

	pthread_mutex_t lock; /* the tx queue */
	struct sl_frame *head, *tail;
	unsigned q_frames;
	size_t q_bytes;

	/* The slirp thread's. */
	struct pollfd *pfd;
	unsigned n_pfd, cap_pfd;
	struct sl_timer *timers;

	struct net_options opts;
	_Atomic uint64_t tx_queue_dropped, guest_errors;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* slirp callbacks: all on the slirp thread (or in open/close). */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct sl_be *b = opaque;
	b->base.rx(b->base.rx_opaque, buf, len);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	struct sl_be *b = opaque;
	atomic_fetch_add(&b->guest_errors, 1);
	log_debug("net user: guest error: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct sl_be *b = opaque;
	struct sl_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = b->timers;
	b->timers = t;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct sl_be *b = opaque;
	for (struct sl_timer **p = &b->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
	}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	if (timer)
		((struct sl_timer *)timer)->expire_ms = expire_ms;
}

static void cb_poll_fd(int fd, void *opaque)
{
	(void)fd, (void)opaque; /* every poll set is rebuilt by slirp_pollfds_fill */
}

static void cb_notify(void *opaque)
{
	struct sl_be *b = opaque;
	uint64_t one = 1;
	if (write(b->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("net user: wake: %s", strerror(errno));
}

static const SlirpCb sl_callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_poll_fd,
	.unregister_poll_fd = cb_poll_fd,
	.notify = cb_notify,
};

static int add_poll(int fd, int events, void *opaque)
{
	struct sl_be *b = opaque;
	if (b->n_pfd == b->cap_pfd) {
		unsigned cap = b->cap_pfd ? 2 * b->cap_pfd : 64;
		struct pollfd *p = realloc(b->pfd, cap * sizeof(*p));
		if (!p)
			return -1; /* slirp skips the socket this round */
		b->pfd = p;
		b->cap_pfd = cap;
	}
	short ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	b->pfd[b->n_pfd] = (struct pollfd){.fd = fd, .events = ev};
	return (int)b->n_pfd++;
}

static int get_revents(int idx, void *opaque)
{
	struct sl_be *b = opaque;
	if (idx < 0 || (unsigned)idx >= b->n_pfd)
		return 0;
	short r = b->pfd[idx].revents;
	int ev = 0;
	if (r & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (r & (POLLERR | POLLNVAL))
		ev |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	return ev;
}

/* Hand the queued guest frames to slirp. */
static void feed_frames(struct sl_be *b)
{
	pthread_mutex_lock(&b->lock);
	struct sl_frame *f = b->head;
	b->head = b->tail = NULL;
	b->q_frames = 0;
	b->q_bytes = 0;
	pthread_mutex_unlock(&b->lock);
	while (f) {
		struct sl_frame *next = f->next;
		slirp_input(b->slirp, f->data, (int)f->len);
		free(f);
		f = next;
	}
}

static void run_timers(struct sl_be *b, uint32_t *timeout)
{
	int64_t now = now_ns() / 1000000;
	bool again = true;
	/* A callback may re-arm or free timers: restart the walk after one. */
	while (again) {
		again = false;
		for (struct sl_timer *t = b->timers; t; t = t->next) {
			if (t->expire_ms >= 0 && t->expire_ms <= now) {
				t->expire_ms = -1;
				t->cb(t->cb_opaque);
				again = true;
				break;
			}
		}
	}
	if (!timeout)
		return;
	for (struct sl_timer *t = b->timers; t; t = t->next)
		if (t->expire_ms >= 0 && (uint64_t)(t->expire_ms - now) < *timeout)
			*timeout = (uint32_t)(t->expire_ms - now);
}

static void *sl_thread(void *arg)
{
	struct sl_be *b = arg;
	while (!atomic_load(&b->stopping)) {
		feed_frames(b);
		uint32_t timeout = SLIRP_POLL_MS;
		b->n_pfd = 0;
		add_poll(b->wakefd, SLIRP_POLL_IN, b); /* index 0 */
		slirp_pollfds_fill(b->slirp, &timeout, add_poll, b);
		run_timers(b, &timeout);
		int n = poll(b->pfd, b->n_pfd, (int)timeout);
		if (n < 0 && errno != EINTR) {
			log_error("net user: poll: %s", strerror(errno));
			break;
		}
		if (n > 0 && (b->pfd[0].revents & POLLIN)) {
			uint64_t v;
			if (read(b->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_debug("net user: wake: %s", strerror(errno));
		}
		slirp_pollfds_poll(b->slirp, n < 0, get_revents, b);
		run_timers(b, NULL);
	}
	return NULL;
}

static int sl_send(struct net_backend *be, const void *frame, size_t len)
{
	struct sl_be *b = (struct sl_be *)be;
	struct sl_frame *f = NULL;
	pthread_mutex_lock(&b->lock);
	if (b->q_frames < SLIRP_TXQ_FRAMES && b->q_bytes + len <= SLIRP_TXQ_BYTES)
		f = malloc(sizeof(*f) + len);
	if (!f) {
		pthread_mutex_unlock(&b->lock);
		atomic_fetch_add(&b->tx_queue_dropped, 1);
		return -1;
	}
	f->next = NULL;
	f->len = len;
	memcpy(f->data, frame, len);
	if (b->tail)
		b->tail->next = f;
	else
		b->head = f;
	b->tail = f;
	b->q_frames++;
	b->q_bytes += len;
	pthread_mutex_unlock(&b->lock);
	cb_notify(b);
	return 0;
}

static void sl_stop(struct net_backend *be)
{
	struct sl_be *b = (struct sl_be *)be;
	if (!b->running)
		return;
	atomic_store(&b->stopping, true);
	cb_notify(b);
	pthread_join(b->thread, NULL);
	b->running = false;
}

static void sl_close(struct net_backend *be)
{
	struct sl_be *b = (struct sl_be *)be;
	sl_stop(be);
	if (b->slirp)
		slirp_cleanup(b->slirp); /* frees its timers through cb_timer_free */
	while (b->timers)
		cb_timer_free(b->timers, b);
	while (b->head) {
		struct sl_frame *f = b->head;
		b->head = f->next;
		free(f);
	}
	if (b->wakefd >= 0)
		close(b->wakefd);
	free(b->pfd);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static void sl_stats(struct net_backend *be, json_t *o)
{
	struct sl_be *b = (struct sl_be *)be;
	json_t *fw = json_array();
	for (int i = 0; i < b->opts.n_hostfwd; i++) {
		const struct net_hostfwd *h = &b->opts.hostfwd[i];
		char ha[INET_ADDRSTRLEN], ga[INET_ADDRSTRLEN], s[96];
		inet_ntop(AF_INET, &h->host_addr, ha, sizeof(ha));
		inet_ntop(AF_INET, &h->guest_addr, ga, sizeof(ga));
		snprintf(s, sizeof(s), "%s:%s:%u-%s:%u", h->udp ? "udp" : "tcp", ha, h->host_port,
			 ga, h->guest_port);
		json_array_append_new(fw, json_string(s));
	}
	json_object_set_new(o, "hostfwd", fw);
	json_object_set_new(o, "dns", json_boolean(b->opts.dns));
	json_object_set_new(o, "backend_dropped", json_integer((json_int_t)b->tx_queue_dropped));
	json_object_set_new(o, "guest_errors", json_integer((json_int_t)b->guest_errors));
}

static const struct net_backend_ops sl_ops;

static struct net_backend *sl_open(const struct net_options *o, net_rx_fn rx, void *rx_opaque)
{
	struct sl_be *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->base = (struct net_backend){.ops = &sl_ops, .rx = rx, .rx_opaque = rx_opaque,
				       .path = "slirp"};
	b->opts = *o;
	pthread_mutex_init(&b->lock, NULL);
	b->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->wakefd < 0) {
		log_error("--net user: eventfd: %s", strerror(errno));
		goto fail;
	}
	SlirpConfig cfg = {
		.version = 4,
		.in_enabled = true,
		.vhostname = "minivmm",
		.disable_dns = !o->dns,
		.disable_host_loopback = false, /* 10.0.2.2 reaches 127.0.0.1 */
	};
	inet_pton(AF_INET, SLIRP_NET, &cfg.vnetwork);
	inet_pton(AF_INET, SLIRP_MASK, &cfg.vnetmask);
	inet_pton(AF_INET, SLIRP_HOST, &cfg.vhost);
	inet_pton(AF_INET, SLIRP_GUEST, &cfg.vdhcp_start);
	inet_pton(AF_INET, SLIRP_DNS, &cfg.vnameserver);
	b->slirp = slirp_new(&cfg, &sl_callbacks, b);
	if (!b->slirp) {
		log_error("--net user: libslirp refused its configuration");
		goto fail;
	}
	for (int i = 0; i < b->opts.n_hostfwd; i++) {
		struct net_hostfwd *h = &b->opts.hostfwd[i];
		if (!h->guest_addr.s_addr)
			h->guest_addr = cfg.vdhcp_start;
		if (slirp_add_hostfwd(b->slirp, h->udp, h->host_addr, h->host_port, h->guest_addr,
				      h->guest_port) < 0) {
			char ha[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &h->host_addr, ha, sizeof(ha));
			log_error("--net user: hostfwd: cannot listen on %s %s:%u (in use?)",
				  h->udp ? "udp" : "tcp", ha, h->host_port);
			goto fail;
		}
	}
	if (pthread_create(&b->thread, NULL, sl_thread, b) != 0) {
		log_error("--net user: cannot start its thread");
		goto fail;
	}
	pthread_setname_np(b->thread, "net-user");
	b->running = true;
	return &b->base;
fail:
	sl_close(&b->base);
	return NULL;
}

static const struct net_backend_ops sl_ops = {
	.name = "user",
	.open = sl_open,
	.send = sl_send,
	.stop = sl_stop,
	.close = sl_close,
	.stats = sl_stats,
};

NET_BACKEND_REGISTER(sl_ops)
