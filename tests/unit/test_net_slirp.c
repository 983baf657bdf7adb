/* The user-mode backend (net/slirp.c) without a guest: frames a guest
 * would send go in through send(), slirp's answers come out on its thread
 * through the rx callback. An ARP request for the gateway is answered; a
 * host connection to a hostfwd port turns into traffic towards the guest
 * (an ARP request for 10.0.2.15, or the SYN itself); a taken port is a
 * setup error. Everything stays on loopback. */
#include "tests/unit/unit.h"
#include "net/backend.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 5000
#define ETH_ARP 0x0806
#define ETH_IP 0x0800

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

static struct {
	pthread_mutex_t lock;
	int frames;
	bool arp_reply_from_gw;   /* ARP reply: 10.0.2.2 is at ... */
	bool toward_guest;        /* ARP who-has 10.0.2.15, or TCP to :80 */
} seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void on_rx(void *opaque, const void *frame, size_t len)
{
	(void)opaque;
	const uint8_t *f = frame;
	pthread_mutex_lock(&seen.lock);
	seen.frames++;
	if (len >= 42 && be16(f + 12) == ETH_ARP) {
		uint16_t op = be16(f + 20);
		if (op == 2 && !memcmp(f + 28, "\x0a\x00\x02\x02", 4))
			seen.arp_reply_from_gw = true;
		if (op == 1 && !memcmp(f + 38, "\x0a\x00\x02\x0f", 4))
			seen.toward_guest = true;
	}
	if (len >= 14 + 20 + 4 && be16(f + 12) == ETH_IP && f[14 + 9] == 6 &&
	    !memcmp(f + 14 + 16, "\x0a\x00\x02\x0f", 4) &&
	    be16(f + 14 + (f[14] & 0xf) * 4 + 2) == 80)
		seen.toward_guest = true;
	pthread_mutex_unlock(&seen.lock);
}

static bool wait_for(bool *flag)
{
	for (int ms = 0; ms < WAIT_MS; ms++) {
		pthread_mutex_lock(&seen.lock);
		bool v = *flag;
		pthread_mutex_unlock(&seen.lock);
		if (v)
			return true;
		usleep(1000);
	}
	return false;
}

/* An ARP request from the guest (10.0.2.15) for the gateway (RFC 826). */
static size_t arp_request(uint8_t *f)
{
	memset(f, 0, 60);
	memset(f, 0xff, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x08, f[13] = 0x06;
	f[14] = 0, f[15] = 1;       /* Ethernet */
	f[16] = 0x08, f[17] = 0x00; /* IPv4 */
	f[18] = 6, f[19] = 4;
	f[20] = 0, f[21] = 1;       /* request */
	memcpy(f + 22, guest_mac, 6);
	memcpy(f + 28, "\x0a\x00\x02\x0f", 4);
	memcpy(f + 38, "\x0a\x00\x02\x02", 4);
	return 60;
}

/* A free loopback TCP port (racy, but only against ourselves). */
static uint16_t free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t l = sizeof(a);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &l), 0);
	close(s);
	return ntohs(a.sin_port);
}

static struct net_backend *open_user(const char *spec)
{
	struct net_options o;
	char err[256];
	ck_assert_msg(net_options_parse(spec, &o, err, sizeof(err)) == 0, "%s", err);
	const struct net_backend_ops *ops = net_backend_find("user");
	ck_assert_ptr_nonnull(ops);
	pthread_mutex_lock(&seen.lock);
	seen.frames = 0;
	seen.arp_reply_from_gw = seen.toward_guest = false;
	pthread_mutex_unlock(&seen.lock);
	return ops->open(&o, on_rx, NULL);
}

START_TEST(slirp_answers_arp)
{
	struct net_backend *be = open_user("user");
	ck_assert_ptr_nonnull(be);
	ck_assert_str_eq(be->path, "slirp");
	uint8_t f[60];
	ck_assert_int_eq(be->ops->send(be, f, arp_request(f)), 0);
	ck_assert(wait_for(&seen.arp_reply_from_gw));
	json_t *o = json_object();
	be->ops->stats(be, o);
	ck_assert_uint_eq(json_integer_value(json_object_get(o, "backend_dropped")), 0);
	json_decref(o);
	be->ops->close(be);
}
END_TEST

START_TEST(slirp_hostfwd_reaches_guest)
{
	uint16_t port = free_port();
	char spec[96];
	snprintf(spec, sizeof(spec), "user,hostfwd=tcp:127.0.0.1:%u-:80", port);
	struct net_backend *be = open_user(spec);
	ck_assert_ptr_nonnull(be);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert(wait_for(&seen.toward_guest));
	close(s);
	be->ops->close(be);
}
END_TEST

START_TEST(slirp_taken_port_fails)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(s, 1), 0);
	socklen_t l = sizeof(a);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &l), 0);
	char spec[96];
	snprintf(spec, sizeof(spec), "user,hostfwd=tcp:127.0.0.1:%u-:80", ntohs(a.sin_port));
	ck_assert_ptr_null(open_user(spec));
	close(s);
}
END_TEST

START_TEST(slirp_tx_flood_is_bounded)
{
	/* Frames faster than the slirp thread takes them: the queue stops at
	 * its bound and the rest are refused and counted, never buffered.
	 * (Whether any is refused depends on the scheduler.) */
	struct net_backend *be = open_user("user");
	ck_assert_ptr_nonnull(be);
	static uint8_t big[NET_MAX_FRAME];
	memset(big, 0, sizeof(big));
	int refused = 0;
	for (int i = 0; i < 200; i++)
		refused += be->ops->send(be, big, sizeof(big)) < 0;
	json_t *o = json_object();
	be->ops->stats(be, o);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "backend_dropped")), refused);
	json_decref(o);
	be->ops->close(be);
}
END_TEST

static Suite *net_slirp_suite(void)
{
	Suite *s = suite_create("net_slirp");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, slirp_answers_arp);
	tcase_add_test(tc, slirp_hostfwd_reaches_guest);
	tcase_add_test(tc, slirp_taken_port_fails);
	tcase_add_test(tc, slirp_tx_flood_is_bounded);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(net_slirp_suite)
