# Write-back from a real run (issue 13, items 5 and 7; issue 15's URL
# forms): a stock kernel boots an image lazily from nginx on 127.0.0.1,
# its init changes a file and powers off. With the image URL ending in '/'
# the change is published, the image verifies and names no stale
# full-copy disk. From an nginx without dav (PUT gives 405) the run exits
# 12 (never 0 when a change was not saved), keeps the stage and prints the
# command to retry, which then publishes it once the server takes PUTs.
. "$REPO/tests/sandbox/lib.sh"
. "$REPO/bench/fetch/lib.sh"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || skip "no /boot/vmlinuz-* (make deps)"
command -v busybox >/dev/null || skip "no busybox (apt install busybox-static)"
command -v jq >/dev/null || skip "no jq"
D=$TMPDIR
T=${LINUX_TIMEOUT:-180}
export XDG_CACHE_HOME=$D/cache

# A root of busybox whose init writes the run number into /etc/motd.
r=$D/rootfs
mkdir -p "$r/bin" "$r/sbin" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/tmp"
cp "$(command -v busybox)" "$r/bin/busybox"
ln -s busybox "$r/bin/sh"
printf 'original\n' >"$r/etc/motd"
cat >"$r/sbin/init" <<'INIT'
#!/bin/sh
/bin/busybox mount -t proc proc /proc
for w in $(/bin/busybox cat /proc/cmdline); do
	case $w in wb.run=*) echo "${w#wb.run=}" >/etc/motd ;; esac
done
/bin/busybox sync
echo MINIVMM-READY
/bin/busybox poweroff -f
INIT
chmod 755 "$r/sbin/init"
"$MINIVMM" image build --rootfs "$r" --out "$D/img" --kernel "$kernel" --no-modules >"$D/build.log" 2>&1 ||
	{ cat "$D/build.log"; fail "image build"; }
jq -e '.disk.digest' "$D/img/manifest.json" >/dev/null || fail "the built image has no disk"
nginx_start "$D/ng"
mkdir -p "$D/ng/www/img"
cp -a "$D/img/." "$D/ng/www/img/"
motd() { # the image's etc/motd, as served
	local dg
	dg=$(jq -r '.entries[] | select(.path=="etc/motd") | .digest' "$D/ng/www/img/manifest.json")
	cat "$D/ng/www/img/blobs/sha256/$dg"
}

# 1. Published: exit 0, the change in the image, no stale disk named.
expect_status 0 timeout -k 10 "$T" "$MINIVMM" run --image-url "$NGINX_URL/img/" --memory 256M \
	--cmdline "panic=-1 wb.run=one" --fs-state "$D/s1"
expect_output 'MINIVMM-READY'
expect_output 'written back'
[ "$(motd)" = one ] || fail "the run's change is not in the image (motd: $(motd))"
jq -e '.disk == null' "$D/ng/www/img/manifest.json" >/dev/null ||
	fail "the written-back image still names the full-copy disk of the old tree"
expect_status 0 "$MINIVMM" image verify "$NGINX_URL/img/"
echo "ok: a run's change published through a URL ending in '/'"

# 2. Not saved: an nginx without dav (405) makes the run exit 12.
P2=$(free_port)
nginx_also "$D/ng" "$P2" nodav nodav
nodav=$NGINX_ALSO_PID
expect_status 12 timeout -k 10 "$T" "$MINIVMM" run --image-url "http://127.0.0.1:$P2/img" \
	--memory 256M --cmdline "panic=-1 wb.run=two" --fs-state "$D/s2" --fetch-timeout 3
expect_output 'MINIVMM-READY'
expect_output "to retry: minivmm writeback $D/s2"
[ "$(motd)" = one ] || fail "a refused write-back changed the image"
[ -f "$D/s2/pending/manifest.json" ] || fail "the refused run's stage is gone"
# The server fixed (dav turned on at the same address): the kept stage
# publishes with `minivmm writeback`.
kill "$nodav"
wait "$nodav" 2>/dev/null
nginx_also "$D/ng" "$P2" fixed
expect_status 0 "$MINIVMM" writeback "$D/s2"
[ "$(motd)" = two ] || fail "minivmm writeback did not publish the kept change"
expect_status 0 "$MINIVMM" image verify "$NGINX_URL/img"
echo "ok: a run whose write-back is refused exits 12, and its stage publishes later"
exit 0
