# shellcheck shell=bash
# A root filesystem without /lib/modules/<version of the kernel> gets the
# kernel's modules there (issue 15): `image build --modules DIR` adds DIR
# as ordinary entries (root-owned, files 0644, dirs 0755, symlinks kept)
# where /lib/modules resolves inside the image (/lib -> usr/lib in a
# merged-/usr root), on the full-mode disk too; a root with its own keeps
# them; `image inspect` says which.
. "$REPO/tests/sandbox/lib.sh"
command -v jq >/dev/null || skip "no jq"
command -v mkfs.ext4 >/dev/null || skip "no mkfs.ext4"
command -v debugfs >/dev/null || skip "no debugfs"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || skip "no /boot/vmlinuz-* for the image's boot portion"
D=$TMPDIR

# A small fake module tree: what the initramfs needs is "built in", so it
# takes no real module; one .ko, modules.dep, modules.alias and Debian's
# build symlink to /usr/src (dangling here, as in Debian without headers).
M=$D/mods
mkdir -p "$M/kernel/fs/autofs"
printf 'not really a module\n' >"$M/kernel/fs/autofs/autofs4.ko"
chmod 600 "$M/kernel/fs/autofs/autofs4.ko"
printf 'kernel/fs/autofs/autofs4.ko:\n' >"$M/modules.dep"
printf 'alias fs-autofs autofs4\n' >"$M/modules.alias"
printf '%s\n' kernel/drivers/virtio/virtio_mmio.ko kernel/fs/fuse/virtiofs.ko \
	kernel/drivers/block/virtio_blk.ko kernel/fs/ext4/ext4.ko >"$M/modules.builtin"
# The kernel's version, as image build reads it ("image NAME (VERSION) in OUT").
mkdir -p "$D/empty"
expect_status 0 "$MINIVMM" image build --rootfs "$D/empty" --out "$D/probe" --kernel "$kernel" \
	--modules "$M" --no-modules --no-disk
ver=$(echo "$OUT" | sed -n 's/^image empty (\(.*\)) in .*/\1/p')
[ -n "$ver" ] || fail "no kernel version in: $OUT"
ln -s "/usr/src/linux-headers-$ver" "$M/build"
mbytes=$(cat "$M/kernel/fs/autofs/autofs4.ko" "$M"/modules.* | wc -c)

# build ROOT OUT [EXTRA...]: an image of ROOT with the fake modules.
build() {
	local root=$1 out=$2; shift 2
	expect_status 0 "$MINIVMM" image build --rootfs "$root" --out "$out" --kernel "$kernel" \
		--modules "$M" "$@"
}
# disk_blob OUT: the full-mode disk image's blob.
disk_blob() { echo "$1/blobs/sha256/$(jq -r .disk.digest "$1/manifest.json")"; }
entry() { jq -c --arg p "$2" '.entries[] | select(.path == $p)' "$1/manifest.json"; }

# 1. A root with no /lib at all: added at lib/modules/VER.
mkdir -p "$D/plain/etc" "$D/plain/sbin"
printf 'x\n' >"$D/plain/etc/motd"
build "$D/plain" "$D/img1"
expect_output "kernel modules: /lib/modules/$ver \(4 files, $mbytes bytes, 1 symlinks kept\) added from $M, owned by root, files 0644, dirs 0755"
e=$(entry "$D/img1" "lib/modules/$ver/kernel/fs/autofs/autofs4.ko")
[ -n "$e" ] || fail "the module is not in the manifest"
echo "$e" | jq -e '.type == "reg" and .mode == 420 and .uid == 0 and .gid == 0 and .size == 20' >/dev/null ||
	fail "the module's entry: $e"
entry "$D/img1" "lib/modules/$ver/kernel" | jq -e '.type == "dir" and .mode == 493 and .uid == 0' >/dev/null ||
	fail "a module directory's entry"
entry "$D/img1" "lib/modules/$ver/modules.dep" | jq -e '.type == "reg"' >/dev/null || fail "no modules.dep"
entry "$D/img1" "lib/modules/$ver/modules.alias" | jq -e '.type == "reg"' >/dev/null || fail "no modules.alias"
entry "$D/img1" "lib/modules/$ver/build" | jq -e --arg t "/usr/src/linux-headers-$ver" \
	'.type == "symlink" and .target == $t' >/dev/null || fail "the build symlink was not kept"
expect_status 0 "$MINIVMM" image inspect "$D/img1"
expect_output "^kernel modules: /lib/modules/$ver \(4 files, $mbytes bytes, added by image build from $M\)$"
expect_status 0 "$MINIVMM" image verify "$D/img1"
# The full-mode disk holds the same files.
disk=$(disk_blob "$D/img1")
expect_status 0 debugfs -R "ls -l /lib/modules/$ver/kernel/fs/autofs" "$disk"
expect_output 'autofs4\.ko'
expect_output '100644 +\(1\) +0 +0 +20 '
expect_status 0 debugfs -R "cat /lib/modules/$ver/modules.dep" "$disk"
expect_output "^kernel/fs/autofs/autofs4.ko:$"
expect_status 0 debugfs -R "stat /lib/modules/$ver/build" "$disk"
expect_output "Fast link dest: \"/usr/src/linux-headers-$ver\""

# 2. A merged-/usr root (/lib -> usr/lib): the modules go to
# usr/lib/modules/VER and /lib stays a symlink; a tarball alike.
mkdir -p "$D/merged/usr/lib" "$D/merged/etc"
ln -s usr/lib "$D/merged/lib"
build "$D/merged" "$D/img2"
expect_output "kernel modules: /usr/lib/modules/$ver \(4 files, $mbytes bytes"
entry "$D/img2" lib | jq -e '.type == "symlink" and .target == "usr/lib"' >/dev/null ||
	fail "/lib is no longer the root's symlink"
entry "$D/img2" "usr/lib/modules/$ver/modules.dep" | jq -e '.type == "reg"' >/dev/null ||
	fail "no usr/lib/modules/$ver/modules.dep"
[ -z "$(entry "$D/img2" "lib/modules")" ] || fail "an entry under the /lib symlink"
expect_status 0 "$MINIVMM" image inspect "$D/img2"
expect_output "^kernel modules: /usr/lib/modules/$ver \(4 files, $mbytes bytes, added by image build from $M\)$"
expect_status 0 debugfs -R "ls -l /usr/lib/modules/$ver/kernel/fs/autofs" "$(disk_blob "$D/img2")"
expect_output 'autofs4\.ko'
tar -C "$D/merged" --owner=0 --group=0 -cf "$D/merged.tar" .
build "$D/merged.tar" "$D/img2t" --no-disk
expect_output "kernel modules: /usr/lib/modules/$ver \(4 files, $mbytes bytes"

# 3. A root with its own modules for the version: left as they are.
mkdir -p "$D/own/lib/modules/$ver/kernel"
printf 'own\n' >"$D/own/lib/modules/$ver/kernel/own.ko"
printf 'kernel/own.ko:\n' >"$D/own/lib/modules/$ver/modules.dep"
build "$D/own" "$D/img3"
expect_output "kernel modules: /lib/modules/$ver from the rootfs \(its own, left as they are\)"
[ -z "$(entry "$D/img3" "lib/modules/$ver/kernel/fs/autofs/autofs4.ko")" ] ||
	fail "the build's modules were added to a root that has its own"
entry "$D/img3" "lib/modules/$ver/kernel/own.ko" | jq -e '.type == "reg"' >/dev/null ||
	fail "the root's own module is gone"
expect_status 0 "$MINIVMM" image inspect "$D/img3"
expect_output "^kernel modules: /lib/modules/$ver \(2 files, 19 bytes, from the root filesystem\)$"
# A tarball that lists the root's module but not its directories: the same.
tar -C "$D/own" -cf "$D/own.tar" "lib/modules/$ver/kernel/own.ko"
build "$D/own.tar" "$D/img3t" --no-disk
expect_output "kernel modules: /lib/modules/$ver from the rootfs"

# 4. --no-modules: nothing added, and inspect says there are none.
build "$D/plain" "$D/img4" --no-disk --no-modules
expect_output "kernel modules: none added for $ver \(--no-modules\)"
expect_status 0 "$MINIVMM" image inspect "$D/img4"
expect_output "^kernel modules: none for kernel version $ver \(no /lib/modules/$ver in the image\)$"

# 5. A module tree without modules.dep is added with a warning (modprobe
# cannot find modules by name); a missing one warns before the
# initramfs, which needs it, fails as before.
cp -a "$M" "$D/mods-nodep" && rm "$D/mods-nodep/modules.dep"
expect_status 4 "$MINIVMM" image build --rootfs "$D/plain" --out "$D/img5" --kernel "$kernel" \
	--modules "$D/mods-nodep" --no-disk
expect_output "mods-nodep has no modules.dep"
expect_status 4 "$MINIVMM" image build --rootfs "$D/plain" --out "$D/img6" --kernel "$kernel" \
	--modules "$D/nomods" --no-disk
expect_output "no kernel modules added to /lib/modules/$ver \($D/nomods: No such file"

# 6. Over HTTP, inspect reads only the kernel's first bytes and the
# marker (nginx's access log: no whole-kernel GET).
if command -v nginx >/dev/null; then
	. "$REPO/bench/fetch/lib.sh"
	nginx_start "$D/ng"
	cp -a "$D/img2" "$D/ng/www/img"
	expect_status 0 "$MINIVMM" image inspect "$NGINX_URL/img/"
	expect_output "^kernel modules: /usr/lib/modules/$ver \\(4 files, $mbytes bytes, added by image build from $M\\)$"
	kblob=$(jq -r .boot.kernel.digest "$D/img2/manifest.json")
	ksize=$(jq -r .boot.kernel.size "$D/img2/manifest.json")
	kb=$(awk -v k="$kblob" '$0 ~ k {print $10}' "$NGINX_LOG" | sort -n | tail -n 1)
	[ -n "$kb" ] && [ "$kb" -lt "$ksize" ] || fail "inspect fetched ${kb:-none} bytes of the $ksize-byte kernel"
else
	echo "note: no nginx: the HTTP case is left out" >&2
fi
exit 0
