# shellcheck shell=bash
# The kernel's modules in an image (issue 15): a merged-/usr busybox root
# (/lib -> usr/lib) without /lib/modules gets them from `image build
# --modules DIR` (a few of the stock kernel's real modules with its real
# modules.dep, alias and builtin files). A stock kernel boots it lazily
# from nginx: the guest's modprobe finds autofs4 by name in
# /lib/modules/$(uname -r) and loads it, its blob fetched when opened and a
# module the guest never loads (virtio_blk) not fetched at all; then in
# full mode from the ext4 disk, which holds the same files.
. "$REPO/tests/sandbox/lib.sh"
. "$REPO/bench/fetch/lib.sh"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || skip "no /boot/vmlinuz-* (make deps)"
command -v busybox >/dev/null || skip "no busybox (apt install busybox-static)"
command -v jq >/dev/null || skip "no jq"
command -v mkfs.ext4 >/dev/null || skip "no mkfs.ext4 (make deps)"
D=$TMPDIR
T=${LINUX_TIMEOUT:-180}
export XDG_CACHE_HOME=$D/cache

# The kernel's version, as image build reads it ("image NAME (VERSION) in OUT").
mkdir -p "$D/empty"
expect_status 0 "$MINIVMM" image build --rootfs "$D/empty" --out "$D/probe" --kernel "$kernel" \
	--no-modules --no-disk
ver=$(echo "$OUT" | sed -n 's/^image empty (\(.*\)) in .*/\1/p')
S=/lib/modules/$ver
[ -f "$S/modules.dep" ] || skip "no $S/modules.dep"

# A few real modules with their dependencies (modules.dep), and the
# kernel's index files as they are: what the initramfs needs, autofs4
# (what systemd asks for) and virtio_blk (full mode's disk driver).
M=$D/mods
mkdir -p "$M"
cp "$S"/modules.* "$M/"
for m in virtio_mmio virtiofs virtio_blk crc32c_generic ext4 autofs4; do
	line=$(grep -E "(^|/)$m\.ko[^:]*:" "$S/modules.dep" | head -n 1)
	[ -n "$line" ] || continue # built in
	for f in $(echo "$line" | tr -d :); do
		mkdir -p "$M/$(dirname "$f")"
		cp "$S/$f" "$M/$f"
	done
done
ko=$(grep -oE '^[^:]*/autofs4\.ko[^:]*' "$M/modules.dep") || skip "autofs4 is built in"
blk=$(grep -oE '^[^:]*/virtio_blk\.ko[^:]*' "$M/modules.dep") || blk=""

r=$D/rootfs
mkdir -p "$r/bin" "$r/sbin" "$r/usr/lib" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/tmp"
ln -s usr/lib "$r/lib"
cp "$(command -v busybox)" "$r/bin/busybox"
ln -s busybox "$r/bin/sh"
cat >"$r/sbin/init" <<'INIT'
#!/bin/sh
export PATH=/bin
/bin/busybox mount -t proc proc /proc 2>/dev/null
/bin/busybox mount -t sysfs sysfs /sys 2>/dev/null
v=$(/bin/busybox uname -r)
[ -f "/lib/modules/$v/modules.dep" ] && echo "MODULES-DIR-OK $v"
/bin/busybox modprobe autofs4 && [ -d /sys/module/autofs4 ] && echo "MODULE-LOADED autofs4"
echo MINIVMM-READY
/bin/busybox poweroff -f
INIT
chmod 755 "$r/sbin/init"
expect_status 0 "$MINIVMM" image build --rootfs "$r" --out "$D/img" --kernel "$kernel" --modules "$M"
expect_output "kernel modules: /usr/lib/modules/$ver \([0-9]+ files"
digest() { jq -r --arg p "usr/lib/modules/$ver/$1" '.entries[] | select(.path == $p) | .digest' "$D/img/manifest.json"; }
kod=$(digest "$ko")
[ -n "$kod" ] && [ "$kod" != null ] || fail "no usr/lib/modules/$ver/$ko in the manifest"
nginx_start "$D/ng"
mkdir -p "$D/ng/www/img"
cp -a "$D/img/." "$D/ng/www/img/"
expect_status 0 "$MINIVMM" image inspect "$NGINX_URL/img"
expect_output "^kernel modules: /usr/lib/modules/$ver \([0-9]+ files, [0-9]+ bytes, added by image build from $M\)$"

# Lazy: modprobe finds autofs4 by name; its blob is fetched, virtio_blk's is not.
expect_status 0 timeout -k 10 "$T" "$MINIVMM" run --image-url "$NGINX_URL/img" --memory 256M \
	--cmdline "panic=-1" --no-writeback
expect_output "^MODULES-DIR-OK $ver"
expect_output '^MODULE-LOADED autofs4'
expect_output '^MINIVMM-READY'
grep -q "GET /img/blobs/sha256/$kod " "$NGINX_LOG" || fail "autofs4's blob was not fetched"
if [ -n "$blk" ]; then
	blkd=$(digest "$blk")
	! grep -q "GET /img/blobs/sha256/$blkd " "$NGINX_LOG" ||
		fail "lazy mode fetched virtio_blk.ko, which the guest never loaded"
fi
echo "ok: lazy mode: modprobe autofs4 from the image's /lib/modules"

# Full: the same files on the ext4 disk.
expect_status 0 timeout -k 10 "$T" "$MINIVMM" run --image-url "$NGINX_URL/img" --mode full \
	--memory 512M --cmdline "panic=-1"
expect_output "^MODULES-DIR-OK $ver"
expect_output '^MODULE-LOADED autofs4'
expect_output '^MINIVMM-READY'
echo "ok: full mode: modprobe autofs4 from the disk's /lib/modules"
exit 0
