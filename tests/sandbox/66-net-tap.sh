#!/usr/bin/env bash
# Tap networking (--net tap,ifname=NAME; issue 17): the test makes a tap
# with 10.0.3.1/24 on the sandbox's side; the stock kernel's virtio_net
# gets 10.0.3.2/24 (static), serves a token with busybox httpd, and the
# host reads it with curl straight at 10.0.3.2. The guest also fetches a
# file from a web server on 10.0.3.1 and polls it for /done, which the host
# creates once curl got the token; the guest then powers off (exit 0).
# --stats names the tap path. Traffic stays on the tap the test made (the
# sandbox is a throwaway VM); the tap is deleted at the end.
set -u
. "$REPO/tests/sandbox/lib.sh"
. "$REPO/guest-tests/linux/testlib.sh"
command -v curl >/dev/null || skip "no curl (apt install curl)"
command -v ip >/dev/null || skip "no ip (iproute2 or busybox)"
[ "$(id -u)" = 0 ] || skip "needs root (ip tuntap add)"
[ -c /dev/net/tun ] || modprobe tun 2>/dev/null || true
[ -c /dev/net/tun ] || skip "no /dev/net/tun (tun module)"
cd "$TMPDIR" || fail "cd $TMPDIR"

tap=mvtap$$
tap=${tap:0:15}
ip tuntap add dev "$tap" mode tap 2>/dev/null || skip "cannot create a tap (ip tuntap add)"
server="" vm=""
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	# What the device and the host's server saw, last: a failure's report.
	python3 -c 'import json, sys; print("net stats:", json.load(open(sys.argv[1])).get("net"))' \
		"$TMPDIR/stats.json" >&2 2>/dev/null || true
	[ ! -e server.log ] || sed 's/^/server: /' server.log >&2
	ip -s link show "$tap" >&2 2>/dev/null
	[ -z "$server" ] || kill "$server" 2>/dev/null
	[ -z "$vm" ] || kill "$vm" 2>/dev/null
	wait 2>/dev/null
	ip link del "$tap" 2>/dev/null
}
trap cleanup EXIT
ip addr add 10.0.3.1/24 dev "$tap" || fail "ip addr add 10.0.3.1/24 dev $tap"
ip link set "$tap" up || fail "ip link set $tap up"

host_port=$(python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
token=guest-token-$RANDOM$RANDOM
host_token=host-token-$RANDOM$RANDOM
mkdir www
echo "$host_token" > www/hello.txt
python3 -m http.server --bind 10.0.3.1 --directory www "$host_port" >server.log 2>&1 &
server=$!
for _ in $(seq 1 50); do
	curl -s -o /dev/null "http://10.0.3.1:$host_port/hello.txt" && break
	sleep 0.1
done
curl -s "http://10.0.3.1:$host_port/hello.txt" | grep -qx "$host_token" ||
	{ cat server.log >&2; fail "the host's web server on 10.0.3.1 did not start"; }

linux_initramfs "$TMPDIR/initrd.gz" -i "$REPO/guest-tests/linux/init-net" -m virtio_mmio -m virtio_net

timeout -k 10 "$LINUX_TIMEOUT" "$MINIVMM" run --kernel "$KERNEL" --initrd "$TMPDIR/initrd.gz" \
	--memory 256M --stats "$TMPDIR/stats.json" --net "tap,ifname=$tap,mac=52:54:00:00:03:02" \
	--cmdline "console=ttyS0 quiet panic=-1 net.token=$token net.ip=10.0.3.2/24 net.host=10.0.3.1 net.hostport=$host_port net.wait=200" \
	>console.log 2>&1 &
vm=$!

net_ask_until_done "http://10.0.3.2/" "$token"
expect_output 'net-init: eth0 mac 52:54:00:00:03:02'
expect_output 'net-init: static 10\.0\.3\.2/24'
expect_output "net-init: host says $host_token"
expect_output 'NET-CHECK DONE'
echo "$OUT" | grep -q 'NET-CHECK FAIL' && fail "a check failed in the guest"

python3 - "$TMPDIR/stats.json" "$tap" <<'PY' || fail "stats: net figures wrong"
import json, sys
s = json.load(open(sys.argv[1]))
n = s["net"]
assert n["backend"] == "tap" and n["path"] == "tap" and n["ifname"] == sys.argv[2], n
assert n["mac"] == "52:54:00:00:03:02", n
assert n["rx_packets"] > 5 and n["tx_packets"] > 5, n
assert n["tx_bad"] == 0 and n["rx_bad_buffers"] == 0, n
print("net: rx %d frames / %d bytes, tx %d frames / %d bytes, dropped rx %d tx %d" %
      (n["rx_packets"], n["rx_bytes"], n["tx_packets"], n["tx_bytes"], n["rx_dropped"], n["tx_dropped"]))
PY
exit 0
