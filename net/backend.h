/*
 * Network backends: where the guest's Ethernet frames go and come from.
 * virtio-net (devices/virtio_net.c) is the only user.
 *
 * A backend is one file (net/slirp.c "user", net/tap.c "tap") that
 * registers a struct net_backend_ops with NET_BACKEND_REGISTER; the type
 * in `--net TYPE[,KEY=VALUE]...` picks it. Frames are whole Ethernet
 * frames without the virtio-net header, at most NET_MAX_FRAME bytes.
 *
 * Threading contract:
 *  - open / stop / close: the main thread (the device's create, stop and
 *    destroy). open may start the backend's own thread.
 *  - send(be, frame, len): the device's I/O thread. Must not block for
 *    long: a backend that cannot take the frame now drops it and counts it
 *    (the guest's TCP retransmits), so a flood grows nothing.
 *  - rx(rx_opaque, frame, len): called by the backend from its own thread
 *    for every frame for the guest; the device copies it before returning.
 *    Not called after stop returns.
 *  - stats(be, obj): any thread, racy figures.
 */
#ifndef MINIVMM_NET_BACKEND_H
#define MINIVMM_NET_BACKEND_H

#include <jansson.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest frame either way: a 64 KiB IP packet plus the Ethernet header
 * and a VLAN tag. Without offloads frames are MTU-sized (1514 bytes). */
#define NET_MAX_FRAME (65535 + 14 + 4)
#define NET_MAC_LEN 6
#define NET_MAX_HOSTFWD 16

struct net_hostfwd {
	bool udp;
	struct in_addr host_addr;  /* INADDR_ANY when left out, as QEMU */
	uint16_t host_port;
	struct in_addr guest_addr; /* 0: the guest's DHCP address */
	uint16_t guest_port;
};

/* One --net spec, parsed. */
struct net_options {
	char type[16];                  /* "none", "user", "tap", ... */
	uint8_t mac[NET_MAC_LEN];
	bool has_mac;
	/* user */
	struct net_hostfwd hostfwd[NET_MAX_HOSTFWD];
	int n_hostfwd;
	bool dns;                       /* dns=on: slirp's DNS relay at 10.0.2.3 */
	/* tap */
	char ifname[IFNAMSIZ];
};

/* Parse `TYPE[,KEY=VALUE]...`. TYPE is none or a registered backend;
 * keys: mac=52:54:00:xx:xx:xx (any type), hostfwd=[tcp|udp]:[HOSTADDR]:
 * HOSTPORT-[GUESTADDR]:GUESTPORT (user, repeatable), dns=on|off (user),
 * ifname=NAME (tap, required). Returns 0, or -1 with why in err. */
int net_options_parse(const char *spec, struct net_options *o, char *err, size_t errlen);

typedef void (*net_rx_fn)(void *rx_opaque, const void *frame, size_t len);

struct net_backend_ops;

/* The part every backend embeds first. */
struct net_backend {
	const struct net_backend_ops *ops;
	net_rx_fn rx;
	void *rx_opaque;
	/* Which data path runs: "slirp", "tap" (--stats net.path). */
	const char *path;
};

struct net_backend_ops {
	const char *name; /* the --net TYPE */
	/* Make and start the backend; frames for the guest go to rx. Returns
	 * NULL after log_error. */
	struct net_backend *(*open)(const struct net_options *o, net_rx_fn rx, void *rx_opaque);
	/* 0 sent (or queued), -1 dropped. */
	int (*send)(struct net_backend *be, const void *frame, size_t len);
	/* Optional: stop the backend's thread (no rx after it). Idempotent. */
	void (*stop)(struct net_backend *be);
	/* Stop if needed and free. */
	void (*close)(struct net_backend *be);
	/* Optional: backend figures into obj. */
	void (*stats)(struct net_backend *be, json_t *obj);
};

void net_backend_register(const struct net_backend_ops *ops);
const struct net_backend_ops *net_backend_find(const char *name);

#define NET_BACKEND_REGISTER(ops)                                               \
	__attribute__((constructor)) static void net_backend_reg_##ops(void)    \
	{ net_backend_register(&(ops)); }

#endif
