# The file-request server under the host kernel's own FUSE client
# (/dev/fuse carries the same messages as virtio-fs): `minivmm fs mount`
# an image built by `minivmm image build`, read files (file faults through
# the fetch client and the cache, checked by digest), run the POSIX
# checker, write back after unmount, mount the new image and find the
# changes. No VM: this runs wherever root and /dev/fuse are.
. "$REPO/tests/sandbox/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
grep -qw fuse /proc/filesystems || modprobe fuse 2>/dev/null || skip "no fuse in this kernel"
gcc -static -O2 -o "$TMPDIR/fscheck" "$REPO/guest-tests/fs/fscheck.c" || skip "no static glibc (libc6-dev)"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || skip "no /boot/vmlinuz-* for the image's boot portion"
export XDG_CACHE_HOME=$TMPDIR/cache

rootfs=$TMPDIR/rootfs
mkdir -p "$rootfs/etc" "$rootfs/srv" "$TMPDIR/mnt"
printf 'original\n' > "$rootfs/etc/motd"
head -c 5000000 /dev/urandom > "$rootfs/srv/large"
for i in $(seq 1 20); do printf 'file %d\n' "$i" > "$rootfs/srv/f$i"; done
ln -s ../etc/motd "$rootfs/srv/motd-link"
"$MINIVMM" image build --rootfs "$rootfs" --out "$TMPDIR/img" --no-disk --kernel "$kernel" --no-modules \
	>"$TMPDIR/build.log" 2>&1 || { cat "$TMPDIR/build.log"; fail "image build"; }
manifest=$TMPDIR/img/manifest.json

mnt=$TMPDIR/mnt
pid=
cleanup() { mountpoint -q "$mnt" && umount -l "$mnt"; [ -n "$pid" ] && wait "$pid" 2>/dev/null; }
trap cleanup EXIT
start() { # start ARGS...: mount in the background, wait until it is up
	"$MINIVMM" fs mount "$@" "$manifest" "$mnt" 2>"$TMPDIR/mount.log" &
	pid=$!
	for _ in $(seq 1 50); do mountpoint -q "$mnt" && return 0; sleep 0.1; done
	cat "$TMPDIR/mount.log" >&2
	fail "fs mount did not come up"
}
stop() {
	umount "$mnt" || fail "umount"
	wait "$pid"; local rc=$?; pid=
	cat "$TMPDIR/mount.log" >&2
	return $rc
}

start --fs-state "$TMPDIR/state1" --writeback
large=$(sha256sum "$rootfs/srv/large" | cut -d' ' -f1)
"$TMPDIR/fscheck" "$mnt" "srv/large=$large" "etc/motd=$(sha256sum "$rootfs/etc/motd" | cut -d' ' -f1)" ||
	fail "fscheck on the mounted image"
[ "$(cat "$mnt/srv/motd-link")" = original ] || fail "symlink"
[ "$(ls "$mnt/srv" | wc -l)" = 22 ] || fail "ls srv: $(ls "$mnt/srv" | wc -l)"
echo changed > "$mnt/etc/motd"
echo "new file" > "$mnt/etc/added"
rm "$mnt/srv/f1"
mv "$mnt/srv/f2" "$mnt/srv/renamed"
stop || fail "fs mount exited $?"
grep -q 'files faulted' "$TMPDIR/mount.log" || fail "no report"
grep -q 'written back' "$TMPDIR/mount.log" || fail "nothing written back"
"$MINIVMM" image verify "$TMPDIR/img" >"$TMPDIR/verify.log" 2>&1 || { cat "$TMPDIR/verify.log"; fail "image verify after write-back"; }
python3 - "$manifest" <<'PY' || fail "the new manifest lacks this run's fault order as its profile"
import json, sys
m = json.load(open(sys.argv[1]))
prof = m.get("profile") or m.get("boot", {}).get("profile") or []
assert prof[:1] == ["srv/large"], prof
PY

start --read-only
[ "$(cat "$mnt/etc/motd")" = changed ] || fail "motd after write-back: $(cat "$mnt/etc/motd")"
[ "$(cat "$mnt/etc/added")" = "new file" ] || fail "added"
[ ! -e "$mnt/srv/f1" ] || fail "f1 still there"
[ "$(cat "$mnt/srv/renamed")" = "file 2" ] || fail "renamed"
[ "$(sha256sum "$mnt/srv/large" | cut -d' ' -f1)" = "$large" ] || fail "large after write-back"
touch "$mnt/etc/x" 2>/dev/null && fail "a read-only mount accepted a write"
stop || fail "second mount exited $?"
exit 0
