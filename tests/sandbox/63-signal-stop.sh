# shellcheck shell=bash
# SIGTERM to `minivmm run` with a lazy root (virtio-fs over an image): the
# guest writes and syncs files, then waits; the test stops minivmm with
# SIGTERM once the guest says so on the console. minivmm stops the VM,
# prints its report, exits 128 + 15, keeps what the guest wrote and synced
# staged in --fs-state (a second SIGTERM while it stops does not change
# that) and says how to upload it; `minivmm writeback`
# then puts it in the image, byte for byte.
. "$REPO/tests/sandbox/lib.sh"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || skip "no /boot/vmlinuz-* (apt install linux-image-amd64)"
command -v busybox >/dev/null || skip "no busybox (apt install busybox-static)"
command -v jq >/dev/null || skip "no jq"
D=$TMPDIR
export XDG_CACHE_HOME=$D/cache

rootfs=$D/rootfs
mkdir -p "$rootfs/etc" "$rootfs/srv"
printf 'original\n' >"$rootfs/etc/motd"
for i in 1 2 3; do printf 'file %d\n' "$i" >"$rootfs/srv/f$i"; done
"$MINIVMM" image build --rootfs "$rootfs" --out "$D/img" --no-disk --kernel "$kernel" --no-modules \
	>"$D/build.log" 2>&1 || { cat "$D/build.log"; fail "image build"; }
manifest=$D/img/manifest.json
cp "$manifest" "$D/manifest.before"

cat >"$D/init" <<'EOS'
#!/bin/sh
. /lib/minivmm.sh
mount_basics
marker
load_modules || echo "SIG-TEST FAIL: modules"
mkdir -p /mnt
mount -t virtiofs minivmm-root /mnt || echo "SIG-TEST FAIL: mount"
echo "written before the signal" >/mnt/etc/motd
head -c 300000 /dev/urandom >/mnt/srv/data.bin
rm /mnt/srv/f1
sync
echo "SIG-TEST DATA $(sha256sum /mnt/srv/data.bin | cut -d' ' -f1)"
echo "SIG-TEST WAITING"
while :; do sleep 1; done
EOS
"$REPO/guest-tests/linux/mkinitramfs" -o "$D/initrd" -i "$D/init" \
	-m virtio_mmio -m virtiofs || fail "mkinitramfs"

log=$D/run.log
"$MINIVMM" run --kernel "$kernel" --initrd "$D/initrd" \
	--memory 512M --cmdline "console=ttyS0 quiet panic=-1" \
	--fs-root "$manifest" --fs-state "$D/state" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 "${LINUX_TIMEOUT:-600}"); do
	grep -q 'SIG-TEST WAITING' "$log" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 1
done
grep -q 'SIG-TEST WAITING' "$log" ||
	{ kill -KILL "$pid" 2>/dev/null; tail -n 40 "$log"; fail "the guest never got to wait"; }
t0=$(date +%s%N)
kill -TERM "$pid"
# A second one while minivmm stops (an impatient user): it must not lose
# the changes, only skip what is left after the stage.
sleep 0.2
kill -TERM "$pid" 2>/dev/null
wait "$pid"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
grep -E 'SIG-TEST|fs:|signal|writeback' "$log" >&2
grep -q 'SIG-TEST FAIL' "$log" && fail "the guest failed"
[ "$rc" = 143 ] || { tail -n 30 "$log"; fail "minivmm exited $rc after SIGTERM, expected 143"; }
[ "$ms" -lt 10000 ] || fail "minivmm took $ms ms to stop"
grep -q 'minivmm: fs: .* requests' "$log" || fail "no fs report"
grep -q "minivmm writeback $D/state" "$log" || fail "no message saying how to upload the changes"
cmp -s "$manifest" "$D/manifest.before" || fail "a signal stop uploaded (it keeps the changes)"
[ -f "$D/state/pending/manifest.json" ] || fail "no stage in $D/state"
want=$(sed -n 's/.*SIG-TEST DATA \([0-9a-f]*\).*/\1/p' "$log" | head -n 1)

expect_status 0 "$MINIVMM" writeback "$D/state"
expect_output 'written back'
expect_status 0 "$MINIVMM" image verify "$D/img"
m=$D/img/manifest.json
dg=$(jq -r '.entries[] | select(.path=="srv/data.bin") | .digest' "$m")
[ "$dg" = "$want" ] || fail "srv/data.bin in the new image is $dg, the guest wrote $want"
[ "$(sha256sum "$D/img/blobs/sha256/$dg" | cut -d' ' -f1)" = "$want" ] || fail "data.bin's blob"
dg=$(jq -r '.entries[] | select(.path=="etc/motd") | .digest' "$m")
[ "$(cat "$D/img/blobs/sha256/$dg")" = "written before the signal" ] || fail "etc/motd"
jq -e '.entries[] | select(.path=="srv/f1")' "$m" >/dev/null && fail "srv/f1 still there"
echo "SIGTERM: exit $rc after $ms ms; the synced changes were staged and written back"
exit 0
