#!/usr/bin/env bash
# User-mode networking (--net user, libslirp; issue 17): the stock kernel's
# virtio_net finds the card, gets 10.0.2.15 from slirp's DHCP, serves a
# token with busybox httpd on port 80, and the host reads it through
# hostfwd=tcp:127.0.0.1:PORT-:80 with curl. The guest also fetches a file
# from a web server on the host's loopback through the gateway 10.0.2.2,
# then polls that server for /done, which the host creates once curl got
# the token; the guest then powers off (exit 0). --stats names the backend
# and counts frames both ways. All traffic stays on loopback.
set -u
. "$REPO/tests/sandbox/lib.sh"
. "$REPO/guest-tests/linux/testlib.sh"
command -v curl >/dev/null || skip "no curl (apt install curl)"
cd "$TMPDIR" || fail "cd $TMPDIR"

# Two free loopback ports: the forward into the guest, the host's server.
# (no process substitution: the sandbox has no /dev/fd)
ports=$(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
read -r fwd_port host_port <<<"$ports"
token=guest-token-$RANDOM$RANDOM
host_token=host-token-$RANDOM$RANDOM

mkdir www
echo "$host_token" > www/hello.txt
python3 -m http.server --bind 127.0.0.1 --directory www "$host_port" >server.log 2>&1 &
server=$!
vm=""
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	# What the device and DHCP saw, last: a failure's report.
	python3 -c 'import json, sys; print("net stats:", json.load(open(sys.argv[1])).get("net"))' \
		"$TMPDIR/stats.json" >&2 2>/dev/null || true
	grep -aE 'udhcpc|dhcp' console.log >&2 2>/dev/null
	kill "$server" 2>/dev/null
	[ -z "$vm" ] || kill "$vm" 2>/dev/null
	wait 2>/dev/null
}
trap cleanup EXIT
for _ in $(seq 1 50); do
	curl -s -o /dev/null "http://127.0.0.1:$host_port/hello.txt" && break
	sleep 0.1
done
curl -s "http://127.0.0.1:$host_port/hello.txt" | grep -qx "$host_token" || fail "the host's web server did not start"

linux_initramfs "$TMPDIR/initrd.gz" -i "$REPO/guest-tests/linux/init-net" -m virtio_mmio -m virtio_net

timeout -k 10 "$LINUX_TIMEOUT" "$MINIVMM" run --kernel "$KERNEL" --initrd "$TMPDIR/initrd.gz" \
	--memory 256M --stats "$TMPDIR/stats.json" \
	--net "user,hostfwd=tcp:127.0.0.1:$fwd_port-:80" \
	--cmdline "console=ttyS0 quiet panic=-1 net.token=$token net.hostport=$host_port net.wait=200" \
	>console.log 2>&1 &
vm=$!

# Ask until the guest's httpd answers (a boot takes 10-45 s nested).
net_ask_until_done "http://127.0.0.1:$fwd_port/" "$token"
expect_output 'net-init: eth0 mac 52:54:00:12:34:56'
expect_output 'net-init: dhcp lease 10\.0\.2\.15 router 10\.0\.2\.2'
expect_output "net-init: host says $host_token"
expect_output 'NET-CHECK DONE'
echo "$OUT" | grep -q 'NET-CHECK FAIL' && fail "a check failed in the guest"

python3 - "$TMPDIR/stats.json" <<'PY' || fail "stats: net figures wrong"
import json, sys
s = json.load(open(sys.argv[1]))
n = s["net"]
assert n["backend"] == "user" and n["path"] == "slirp", n
assert n["mac"] == "52:54:00:12:34:56", n
assert n["rx_packets"] > 5 and n["tx_packets"] > 5, n
assert n["rx_bytes"] > len("guest-token") and n["tx_bytes"] > 0, n
assert n["tx_bad"] == 0 and n["rx_bad_buffers"] == 0, n
print("net: rx %d frames / %d bytes, tx %d frames / %d bytes, dropped rx %d tx %d" %
      (n["rx_packets"], n["rx_bytes"], n["tx_packets"], n["tx_bytes"], n["rx_dropped"], n["tx_dropped"]))
PY
exit 0
