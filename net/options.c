/*
 * The --net spec (QEMU's spelling, so habits carry over) and the backend
 * registry. Contract in net/backend.h.
 */
#include "net/backend.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NET_MAX_BACKENDS 8

static const struct net_backend_ops *backends[NET_MAX_BACKENDS];
static int n_backends;

void net_backend_register(const struct net_backend_ops *ops)
{
	if (n_backends < NET_MAX_BACKENDS)
		backends[n_backends++] = ops;
}

const struct net_backend_ops *net_backend_find(const char *name)
{
	for (int i = 0; i < n_backends; i++)
		if (!strcmp(backends[i]->name, name))
			return backends[i];
	return NULL;
}

/* "52:54:00:12:34:56": six two-digit hex bytes; unicast only (bit 0 of the
 * first byte is the multicast bit, IEEE 802-2014 8.2). */
static int parse_mac(const char *v, uint8_t *mac, char *err, size_t errlen)
{
	static const char hex[] = "0123456789abcdef";
	bool ok = strlen(v) == 3 * NET_MAC_LEN - 1;
	for (int i = 0; ok && i < NET_MAC_LEN; i++) {
		const char *h = strchr(hex, tolower((unsigned char)v[3 * i]));
		const char *l = strchr(hex, tolower((unsigned char)v[3 * i + 1]));
		ok = h && l && *h && *l && (i == NET_MAC_LEN - 1 || v[3 * i + 2] == ':');
		if (ok)
			mac[i] = (uint8_t)((h - hex) << 4 | (l - hex));
	}
	if (!ok) {
		snprintf(err, errlen, "mac '%s': expected six hex bytes like 52:54:00:12:34:56", v);
		return -1;
	}
	if (mac[0] & 1) {
		snprintf(err, errlen, "mac '%s' is a multicast address", v);
		return -1;
	}
	return 0;
}

/* A port: 1..65535, digits only. */
static int parse_port(const char *s, size_t n, uint16_t *out)
{
	if (n == 0 || n > 5)
		return -1;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* An IPv4 address of n bytes, or empty (*a stays as the caller set it). */
static int parse_addr(const char *s, size_t n, struct in_addr *a)
{
	char buf[INET_ADDRSTRLEN];
	if (n == 0)
		return 0;
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	return inet_pton(AF_INET, buf, a) == 1 ? 0 : -1;
}

/* [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT */
static int parse_hostfwd(const char *v, struct net_hostfwd *f, char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	f->host_addr.s_addr = htonl(INADDR_ANY);
	const char *p = v;
	if (!strncmp(p, "tcp:", 4)) {
		p += 4;
	} else if (!strncmp(p, "udp:", 4)) {
		f->udp = true;
		p += 4;
	} else if (*p != ':') {
		goto bad;
	} else {
		p++; /* ":HOSTADDR:..." : tcp, as QEMU */
	}
	const char *dash = strchr(p, '-');
	if (!dash)
		goto bad;
	const char *colon = memchr(p, ':', (size_t)(dash - p));
	if (!colon || parse_addr(p, (size_t)(colon - p), &f->host_addr) < 0 ||
	    parse_port(colon + 1, (size_t)(dash - colon - 1), &f->host_port) < 0)
		goto bad;
	const char *g = dash + 1;
	const char *gcolon = strchr(g, ':');
	if (!gcolon || parse_addr(g, (size_t)(gcolon - g), &f->guest_addr) < 0 ||
	    parse_port(gcolon + 1, strlen(gcolon + 1), &f->guest_port) < 0)
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "hostfwd '%s': expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:"
		 "GUESTPORT, ports 1-65535", v);
	return -1;
}

static int parse_onoff(const char *key, const char *v, bool *out, char *err, size_t errlen)
{
	if (!strcmp(v, "on")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "off")) {
		*out = false;
		return 0;
	}
	snprintf(err, errlen, "%s '%s': expected on or off", key, v);
	return -1;
}

static int parse_key(struct net_options *o, const char *key, const char *v, char *err,
		     size_t errlen)
{
	bool user = !strcmp(o->type, "user"), tap = !strcmp(o->type, "tap");
	if (!strcmp(key, "mac"))
		return (o->has_mac = true, parse_mac(v, o->mac, err, errlen));
	if (user && !strcmp(key, "hostfwd")) {
		if (o->n_hostfwd == NET_MAX_HOSTFWD) {
			snprintf(err, errlen, "at most %d hostfwd rules", NET_MAX_HOSTFWD);
			return -1;
		}
		return parse_hostfwd(v, &o->hostfwd[o->n_hostfwd++], err, errlen);
	}
	if (user && !strcmp(key, "dns"))
		return parse_onoff(key, v, &o->dns, err, errlen);
	if (tap && !strcmp(key, "ifname")) {
		if (!*v || strlen(v) >= IFNAMSIZ || strchr(v, '/')) {
			snprintf(err, errlen, "ifname '%s': 1 to %d bytes, no '/'", v, IFNAMSIZ - 1);
			return -1;
		}
		strcpy(o->ifname, v);
		return 0;
	}
	snprintf(err, errlen, "unknown option '%s' for --net %s (known: mac%s)", key, o->type,
		 user ? ", hostfwd, dns" : tap ? ", ifname" : "");
	return -1;
}

int net_options_parse(const char *spec, struct net_options *o, char *err, size_t errlen)
{
	memset(o, 0, sizeof(*o));
	const char *comma = strchr(spec, ',');
	size_t n = comma ? (size_t)(comma - spec) : strlen(spec);
	if (n == 0 || n >= sizeof(o->type)) {
		snprintf(err, errlen, "'%s': expected none, user[,hostfwd=...] or tap,ifname=NAME",
			 spec);
		return -1;
	}
	memcpy(o->type, spec, n);
	o->type[n] = 0;
	if (strcmp(o->type, "none") && !net_backend_find(o->type)) {
		snprintf(err, errlen, "unknown network type '%s' (known: none, user, tap)", o->type);
		return -1;
	}
	if (!strcmp(o->type, "none") && comma) {
		snprintf(err, errlen, "--net none takes no options");
		return -1;
	}
	while (comma) {
		const char *kv = comma + 1;
		comma = strchr(kv, ',');
		size_t len = comma ? (size_t)(comma - kv) : strlen(kv);
		const char *eq = memchr(kv, '=', len);
		char key[16], val[128];
		if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key) ||
		    len - (size_t)(eq - kv) - 1 >= sizeof(val)) {
			snprintf(err, errlen, "'%.*s': expected KEY=VALUE", (int)len, kv);
			return -1;
		}
		memcpy(key, kv, (size_t)(eq - kv));
		key[eq - kv] = 0;
		size_t vlen = len - (size_t)(eq - kv) - 1;
		memcpy(val, eq + 1, vlen);
		val[vlen] = 0;
		if (parse_key(o, key, val, err, errlen) < 0)
			return -1;
	}
	if (!strcmp(o->type, "tap") && !o->ifname[0]) {
		snprintf(err, errlen, "--net tap needs ifname=NAME");
		return -1;
	}
	return 0;
}
