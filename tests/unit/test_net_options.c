/* `--net` specs (net/options.c): QEMU's hostfwd forms, mac, the per-type
 * keys, and the refusals a user sees as a usage error. */
#include "tests/unit/unit.h"
#include "net/backend.h"

#include <arpa/inet.h>
#include <string.h>

static struct net_options o;
static char err[256];

static int parse(const char *spec)
{
	err[0] = 0;
	return net_options_parse(spec, &o, err, sizeof(err));
}

static uint32_t ip(const char *s)
{
	struct in_addr a;
	ck_assert_int_eq(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

START_TEST(net_opt_types)
{
	ck_assert_int_eq(parse("none"), 0);
	ck_assert_str_eq(o.type, "none");
	ck_assert_int_eq(parse("user"), 0);
	ck_assert_str_eq(o.type, "user");
	ck_assert_int_eq(o.n_hostfwd, 0);
	ck_assert(!o.dns);
	ck_assert(!o.has_mac);
	ck_assert_int_eq(parse("tap,ifname=tap0"), 0);
	ck_assert_str_eq(o.ifname, "tap0");
}
END_TEST

START_TEST(net_opt_hostfwd_forms)
{
	ck_assert_int_eq(parse("user,hostfwd=tcp:127.0.0.1:8080-:80"), 0);
	ck_assert_int_eq(o.n_hostfwd, 1);
	ck_assert(!o.hostfwd[0].udp);
	ck_assert_uint_eq(o.hostfwd[0].host_addr.s_addr, ip("127.0.0.1"));
	ck_assert_uint_eq(o.hostfwd[0].host_port, 8080);
	ck_assert_uint_eq(o.hostfwd[0].guest_addr.s_addr, 0); /* the guest's DHCP address */
	ck_assert_uint_eq(o.hostfwd[0].guest_port, 80);

	ck_assert_int_eq(parse("user,hostfwd=udp::5353-10.0.2.16:53,hostfwd=::2222-:22,dns=on"), 0);
	ck_assert_int_eq(o.n_hostfwd, 2);
	ck_assert(o.hostfwd[0].udp);
	ck_assert_uint_eq(o.hostfwd[0].host_addr.s_addr, htonl(INADDR_ANY));
	ck_assert_uint_eq(o.hostfwd[0].host_port, 5353);
	ck_assert_uint_eq(o.hostfwd[0].guest_addr.s_addr, ip("10.0.2.16"));
	ck_assert_uint_eq(o.hostfwd[0].guest_port, 53);
	ck_assert(!o.hostfwd[1].udp); /* no protocol: tcp, as QEMU */
	ck_assert_uint_eq(o.hostfwd[1].host_port, 2222);
	ck_assert_uint_eq(o.hostfwd[1].guest_port, 22);
	ck_assert(o.dns);
	ck_assert_int_eq(parse("user,hostfwd=tcp::65535-:1"), 0);
}
END_TEST

START_TEST(net_opt_hostfwd_refused)
{
	static const char *bad[] = {
		"user,hostfwd=tcp:127.0.0.1:8080",        /* no guest part */
		"user,hostfwd=tcp:127.0.0.1:8080-80",     /* guest part without ':' */
		"user,hostfwd=tcp:127.0.0.1:0-:80",       /* port 0 */
		"user,hostfwd=tcp:127.0.0.1:65536-:80",   /* port too big */
		"user,hostfwd=tcp:127.0.0.1:80-:8x",      /* not a number */
		"user,hostfwd=tcp:127.0.0.1:-:80",        /* empty port */
		"user,hostfwd=sctp:127.0.0.1:80-:80",     /* protocol */
		"user,hostfwd=tcp:1.2.3:80-:80",          /* address */
		"user,hostfwd=tcp:localhost:80-:80",      /* names are not resolved */
		"user,hostfwd=tcp:127.0.0.1:80-:+80",     /* sign */
		"user,hostfwd=",                           /* empty */
		"user,hostfwd",                            /* no '=' */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse(bad[i]) == -1, "accepted %s", bad[i]);
		ck_assert_msg(err[0], "no message for %s", bad[i]);
	}
	ck_assert_int_eq(parse("user,hostfwd=tcp::1-:2,hostfwd=tcp::3-:4,hostfwd=tcp::5-:6,"
			       "hostfwd=tcp::7-:8,hostfwd=tcp::9-:10,hostfwd=tcp::11-:12,"
			       "hostfwd=tcp::13-:14,hostfwd=tcp::15-:16,hostfwd=tcp::17-:18,"
			       "hostfwd=tcp::19-:20,hostfwd=tcp::21-:22,hostfwd=tcp::23-:24,"
			       "hostfwd=tcp::25-:26,hostfwd=tcp::27-:28,hostfwd=tcp::29-:30,"
			       "hostfwd=tcp::31-:32,hostfwd=tcp::33-:34"), -1);
	ck_assert_ptr_nonnull(strstr(err, "at most"));
}
END_TEST

START_TEST(net_opt_mac)
{
	ck_assert_int_eq(parse("user,mac=52:54:00:AB:cd:09"), 0);
	ck_assert(o.has_mac);
	const uint8_t want[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0x09};
	ck_assert_mem_eq(o.mac, want, 6);
	static const char *bad[] = {
		"user,mac=52:54:00:ab:cd",        /* five bytes */
		"user,mac=52:54:00:ab:cd:0g",     /* not hex */
		"user,mac=52-54-00-ab-cd-09",     /* separator */
		"user,mac=52:54:00:ab:cd:091",    /* too long */
		"user,mac=53:54:00:ab:cd:09",     /* multicast */
		"user,mac= 2:54:00:ab:cd:09",     /* space */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse(bad[i]) == -1, "accepted %s", bad[i]);
}
END_TEST

START_TEST(net_opt_refusals_name_the_problem)
{
	ck_assert_int_eq(parse("bogus"), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown network type 'bogus'"));
	ck_assert_int_eq(parse(""), -1);
	ck_assert_int_eq(parse(",hostfwd=tcp::1-:2"), -1);
	ck_assert_int_eq(parse("none,mac=52:54:00:00:00:01"), -1);
	ck_assert_int_eq(parse("tap"), -1);
	ck_assert_ptr_nonnull(strstr(err, "ifname"));
	ck_assert_int_eq(parse("tap,ifname="), -1);
	ck_assert_int_eq(parse("tap,ifname=a/b"), -1);
	ck_assert_int_eq(parse("tap,ifname=0123456789abcdef"), -1); /* IFNAMSIZ is 16 */
	ck_assert_int_eq(parse("tap,ifname=tap0,hostfwd=tcp::1-:2"), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown option 'hostfwd'"));
	ck_assert_int_eq(parse("user,ifname=tap0"), -1);
	ck_assert_int_eq(parse("user,dns=maybe"), -1);
	ck_assert_int_eq(parse("user,speed=fast"), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown option 'speed'"));
	ck_assert_int_eq(parse("user,=x"), -1);
	ck_assert_int_eq(parse("user,"), -1);
}
END_TEST

static Suite *net_options_suite(void)
{
	Suite *s = suite_create("net_options");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, net_opt_types);
	tcase_add_test(tc, net_opt_hostfwd_forms);
	tcase_add_test(tc, net_opt_hostfwd_refused);
	tcase_add_test(tc, net_opt_mac);
	tcase_add_test(tc, net_opt_refusals_name_the_problem);
	suite_add_tcase(s, tc);
	return s;
}
UNIT_SUITE(net_options_suite)
