/* The tap backend (net/tap.c) against a real tap the test creates (root and
 * /dev/net/tun needed, else the test passes with a note): a frame the
 * guest sends comes out of the interface, seen by a packet socket bound to
 * it, and a frame written to the interface reaches the rx callback, both
 * byte for byte (the 12-byte virtio-net header never leaks into a frame).
 * The frames use the local experimental EtherType (IEEE 802 0x88B5) and
 * never leave the interface, which disappears with the test. */
#include "tests/unit/unit.h"
#include "net/backend.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define ETH_P_LOCAL_EXP 0x88b5
#define WAIT_MS 5000

static struct {
	pthread_mutex_t lock;
	bool got;
	size_t len;
	uint8_t frame[256];
} rx = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void on_rx(void *opaque, const void *frame, size_t len)
{
	(void)opaque;
	const uint8_t *f = frame;
	if (len < 14 || f[12] != ETH_P_LOCAL_EXP >> 8 || f[13] != (ETH_P_LOCAL_EXP & 0xff))
		return; /* the kernel's own (IPv6 autoconfiguration, ...) */
	pthread_mutex_lock(&rx.lock);
	rx.got = true;
	rx.len = len < sizeof(rx.frame) ? len : sizeof(rx.frame);
	memcpy(rx.frame, frame, rx.len);
	pthread_mutex_unlock(&rx.lock);
}

static void frame_make(uint8_t *f, size_t len, const uint8_t *dst, const uint8_t *src, uint8_t seed)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETH_P_LOCAL_EXP >> 8;
	f[13] = ETH_P_LOCAL_EXP & 0xff;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(seed + i);
}

START_TEST(tap_frames_both_ways)
{
	int probe = open("/dev/net/tun", O_RDWR);
	if (geteuid() != 0 || probe < 0) {
		fprintf(stderr, "test_net_tap: not root or no /dev/net/tun: skipped\n");
		if (probe >= 0)
			close(probe);
		return;
	}
	close(probe);
	char spec[48], ifname[IFNAMSIZ];
	snprintf(ifname, sizeof(ifname), "mvnt%u", (unsigned)getpid() % 100000);
	snprintf(spec, sizeof(spec), "tap,ifname=%s", ifname);
	struct net_options o;
	char err[256];
	ck_assert_msg(net_options_parse(spec, &o, err, sizeof(err)) == 0, "%s", err);
	const struct net_backend_ops *ops = net_backend_find("tap");
	ck_assert_ptr_nonnull(ops);
	struct net_backend *be = ops->open(&o, on_rx, NULL);
	ck_assert_ptr_nonnull(be);
	ck_assert_str_eq(be->path, "tap");

	/* Up, so that the packet socket can send on it. */
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ck_assert_int_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	ck_assert_int_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);

	int ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_LOCAL_EXP));
	ck_assert_int_ge(ps, 0);
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_LOCAL_EXP),
				  .sll_ifindex = (int)if_nametoindex(ifname)};
	ck_assert_int_gt(sll.sll_ifindex, 0);
	ck_assert_int_eq(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);
	struct timeval tv = {.tv_sec = WAIT_MS / 1000};
	setsockopt(ps, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	const uint8_t guest[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	const uint8_t host[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};
	/* Guest to host. */
	uint8_t out[200];
	frame_make(out, sizeof(out), host, guest, 3);
	ck_assert_int_eq(be->ops->send(be, out, sizeof(out)), 0);
	uint8_t got[512];
	ssize_t n = recv(ps, got, sizeof(got), 0);
	ck_assert_int_eq(n, sizeof(out));
	ck_assert_mem_eq(got, out, sizeof(out));

	/* Host to guest. */
	uint8_t in[150];
	frame_make(in, sizeof(in), guest, host, 9);
	ck_assert_int_eq(send(ps, in, sizeof(in), 0), sizeof(in));
	bool ok = false;
	for (int ms = 0; ms < WAIT_MS && !ok; ms++) {
		pthread_mutex_lock(&rx.lock);
		ok = rx.got;
		pthread_mutex_unlock(&rx.lock);
		if (!ok)
			usleep(1000);
	}
	ck_assert(ok);
	ck_assert_uint_eq(rx.len, sizeof(in));
	ck_assert_mem_eq(rx.frame, in, sizeof(in));

	json_t *st = json_object();
	be->ops->stats(be, st);
	ck_assert_str_eq(json_string_value(json_object_get(st, "ifname")), ifname);
	json_decref(st);
	close(ps);
	be->ops->close(be); /* the tap was not persistent: it goes */
	ck_assert_uint_eq(if_nametoindex(ifname), 0);
}
END_TEST

START_TEST(tap_bad_name_fails_cleanly)
{
	/* A name the kernel refuses (dev_valid_name: never "." or ".."), or
	 * no /dev/net/tun: open fails with a message and frees everything. */
	struct net_options o;
	char err[256];
	ck_assert_int_eq(net_options_parse("tap,ifname=..", &o, err, sizeof(err)), 0);
	ck_assert_ptr_null(net_backend_find("tap")->open(&o, on_rx, NULL));
}
END_TEST

static Suite *net_tap_suite(void)
{
	Suite *s = suite_create("net_tap");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, tap_frames_both_ways);
	tcase_add_test(tc, tap_bad_name_fails_cleanly);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(net_tap_suite)
