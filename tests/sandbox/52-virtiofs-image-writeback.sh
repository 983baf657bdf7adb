# virtio-fs over an image (manifest + blobs, read through the fetch client
# and the cache: every first read is a file fault), write-back at
# poweroff, and a second boot from the written-back image that finds the
# changes.
. "$REPO/tests/sandbox/lib.sh"
. "$REPO/guest-tests/fs/boot.sh"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || skip "no /boot/vmlinuz-* (apt install linux-image-amd64)"
command -v busybox >/dev/null || skip "no busybox (apt install busybox-static)"
export XDG_CACHE_HOME=$TMPDIR/cache

rootfs=$TMPDIR/rootfs
mkdir -p "$rootfs/etc" "$rootfs/srv"
printf 'original\n' > "$rootfs/etc/motd"
head -c 5000000 /dev/urandom > "$rootfs/srv/large"
for i in $(seq 1 50); do printf 'file %d\n' "$i" > "$rootfs/srv/f$i"; done
large_sum=$(sha256sum "$rootfs/srv/large" | cut -d' ' -f1)
"$MINIVMM" image build --rootfs "$rootfs" --out "$TMPDIR/img" --no-disk --kernel "$kernel" --no-modules \
	>"$TMPDIR/build.log" 2>&1 || { cat "$TMPDIR/build.log"; fail "image build"; }
manifest=$(ls "$TMPDIR"/img/manifest.json* | head -n 1)

cat > "$TMPDIR/init" <<'EOS'
#!/bin/sh
. /lib/minivmm.sh
mount_basics
marker
load_modules || echo "FS-CHECK FAIL: modules"
mkdir -p /mnt
mount -t virtiofs minivmm-root /mnt || echo "FS-CHECK FAIL: mount"
case $(param fs.phase) in
1)
	[ "$(cat /mnt/etc/motd)" = original ] || echo "FS-CHECK FAIL: motd"
	[ "$(sha256sum /mnt/srv/large | cut -d' ' -f1)" = "$(param fs.large)" ] || echo "FS-CHECK FAIL: large"
	[ "$(ls /mnt/srv | wc -l)" = 51 ] || echo "FS-CHECK FAIL: ls srv"
	echo changed > /mnt/etc/motd
	echo "new file" > /mnt/etc/added
	rm /mnt/srv/f1
	mv /mnt/srv/f2 /mnt/srv/renamed
	;;
2)
	[ "$(cat /mnt/etc/motd)" = changed ] || echo "FS-CHECK FAIL: motd after write-back: $(cat /mnt/etc/motd)"
	[ "$(cat /mnt/etc/added)" = "new file" ] || echo "FS-CHECK FAIL: added"
	[ ! -e /mnt/srv/f1 ] || echo "FS-CHECK FAIL: f1 still there"
	[ "$(cat /mnt/srv/renamed)" = "file 2" ] || echo "FS-CHECK FAIL: renamed"
	[ "$(cat /mnt/srv/f3)" = "file 3" ] || echo "FS-CHECK FAIL: f3"
	;;
esac
echo "FS-CHECK DONE"
umount /mnt
finish
EOS
"$REPO/guest-tests/linux/mkinitramfs" -o "$TMPDIR/initrd" -i "$TMPDIR/init" \
	-m virtio_mmio -m virtiofs || fail "mkinitramfs"

fs_boot "${LINUX_TIMEOUT:-150}" --kernel "$kernel" --initrd "$TMPDIR/initrd" \
	--memory 512M --cmdline "console=ttyS0 quiet panic=-1 fs.phase=1 fs.large=$large_sum" \
	--fs-root "$manifest" --fs-state "$TMPDIR/state1" --stats "$TMPDIR/stats1.json"
echo "$OUT" | grep -E 'FS-CHECK|fs:' >&2
expect_output 'FS-CHECK DONE'
echo "$OUT" | grep -q 'FS-CHECK FAIL' && fail "phase 1 failed in the guest"
expect_output 'written back'
python3 - "$TMPDIR/stats1.json" <<'PY' || fail "stats of the first boot"
import json, sys
fs = json.load(open(sys.argv[1]))["fs"]
assert fs["files_faulted"] >= 2, fs  # motd and large; the rest is metadata or O_TRUNC
assert fs["bytes_fetched"] >= 5000000, fs
assert fs["bytes_written_back"] > 0, fs
assert fs["fault_p50_ms"] > 0, fs
PY

fs_boot "${LINUX_TIMEOUT:-150}" --kernel "$kernel" --initrd "$TMPDIR/initrd" \
	--memory 512M --cmdline "console=ttyS0 quiet panic=-1 fs.phase=2" \
	--fs-root "$manifest" --fs-state "$TMPDIR/state2" --no-writeback
echo "$OUT" | grep -E 'FS-CHECK' >&2
expect_output 'FS-CHECK DONE'
echo "$OUT" | grep -q 'FS-CHECK FAIL' && fail "phase 2: the written-back image lacks the changes"
"$MINIVMM" image verify "$TMPDIR/img" >/dev/null 2>&1 ||
	fail "the written-back image does not verify"
exit 0
