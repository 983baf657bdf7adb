# image build on awkward input: a missing or wrong kernel, symlinks that
# point outside the root (stored, never followed), special files, names
# with newlines and non-UTF-8 bytes, empty files, a sparse file larger than
# 4 GiB, tarballs with '..', cut short, or owned by other users (built
# without root). Each is handled right or refused naming the file.
. "$REPO/tests/sandbox/lib.sh"
K=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$K" ] || skip "no /boot/vmlinuz-* (make deps installs linux-image-amd64)"
D=$TMPDIR
R=$D/root
mkdir -p "$R/etc" "$R/sbin" "$R/data"
echo 'echo hi' >"$R/sbin/init"; chmod 755 "$R/sbin/init"
echo secret-outside >"$D/outside"

# Kernel problems come first, naming the file.
expect_status 4 "$MINIVMM" image build --rootfs "$R" --kernel "$D/nokernel" --out "$D/o"
expect_output "kernel $D/nokernel: No such file"
expect_status 4 "$MINIVMM" image build --rootfs "$R" --kernel "$D/outside" --out "$D/o"
expect_output "not a bzImage"
expect_status 4 "$MINIVMM" image build --rootfs "$D/noroot" --kernel "$K" --out "$D/o"
expect_output "rootfs $D/noroot: No such file"
expect_status 2 "$MINIVMM" image build --rootfs "$R" --kernel "$K"
expect_output "are required"
expect_status 2 "$MINIVMM" image build --rootfs "$R" --kernel "$K" --out "$D/o" --chunk-size 3000
expect_output "power of two"
expect_status 4 "$MINIVMM" image build --rootfs "$R" --kernel "$K" --out "$D/o" --modules "$D/nomods"
expect_output "$D/nomods/modules.dep: No such file"

# Symlinks out of the root, special files, odd names, empty and sparse files.
ln -s "$D/outside" "$R/etc/abs-out"
ln -s ../../../../outside "$R/etc/rel-out"
ln -s /proc/self/root "$R/etc/loop"
mkfifo "$R/data/fifo"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$R/data/sock"
: >"$R/data/empty"
printf 'newline' >"$R/data/new
line"
printf 'latin1' >"$R/data/caf$(printf '\xe9')"
printf 'utf8' >"$R/data/café ☕"
# 4 GiB + 1 byte, data at both ends, a hole between.
S=$R/data/sparse
head -c 5000 /dev/urandom >"$S"
truncate -s $((4 << 30)) "$S"
printf 'Z' >>"$S"
if [ "$(id -u)" -eq 0 ]; then mknod "$R/data/null" c 1 3; fi
expect_status 0 "$MINIVMM" image build --rootfs "$R" --kernel "$K" --out "$D/o" --no-modules
echo "$OUT"
M=$D/o/manifest.json
entry() { jq -c --arg p "$1" '.entries[] | select(.path == $p)' "$M"; }
[ "$(entry etc/abs-out | jq -r .type,.target | paste -sd' ')" = "symlink $D/outside" ] ||
	fail "absolute symlink out of the root not stored as a symlink: $(entry etc/abs-out)"
[ "$(entry etc/rel-out | jq -r .target)" = "../../../../outside" ] || fail "relative symlink changed"
[ "$(entry etc/loop | jq -r .type)" = symlink ] || fail "/proc/self/root link followed"
grep -q secret-outside "$D"/o/blobs/sha256/* && fail "a symlink was followed: outside content stored"
[ "$(entry data/fifo | jq -r .type)" = fifo ] || fail "fifo: $(entry data/fifo)"
[ "$(entry data/sock | jq -r .type)" = sock ] || fail "socket: $(entry data/sock)"
[ "$(entry data/empty | jq -r .size,.digest | paste -sd' ')" = \
  "0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" ] || fail "empty file: $(entry data/empty)"
[ "$(entry "data/new
line" | jq -r .size)" = 7 ] || fail "name with a newline lost"
jq -e '.entries[] | select(.path_b64 == "ZGF0YS9jYWbp")' "$M" >/dev/null || fail "non-UTF-8 name not in path_b64"
[ "$(entry "data/café ☕" | jq -r .size)" = 4 ] || fail "UTF-8 name lost"
e=$(entry data/sparse)
[ "$(echo "$e" | jq -r .size)" = $(((4 << 30) + 1)) ] || fail "sparse size: $e"
[ "$(echo "$e" | jq -r '.chunks | length')" = 4097 ] || fail "sparse chunk count"
# Packed (format version 2): the blob, named by .blob, holds no zero chunk.
blob=$D/o/blobs/sha256/$(echo "$e" | jq -r '.blob // empty')
[ "$blob" != "$D/o/blobs/sha256/" ] || fail "the sparse file is not packed: $e"
[ "$(du -k "$blob" | cut -f1)" -lt 1024 ] || fail "the sparse file's blob is not sparse"
[ "$(stat -c %s "$blob")" -le $((2 << 20)) ] || fail "the sparse file's packed blob holds its zeros"
[ "$(head -c $((1 << 20)) "$S" | sha256sum | cut -c1-64)" = "$(echo "$e" | jq -r '.chunks[0]')" ] ||
	fail "first chunk digest differs from sha256sum"
[ "$(echo "$e" | jq -r '.chunks[4096]')" = "$(printf Z | sha256sum | cut -c1-64)" ] ||
	fail "last (1-byte) chunk digest differs"
if [ "$(id -u)" -eq 0 ]; then
	[ "$(entry data/null | jq -r .type,.rdev | paste -sd' ')" = "chr 259" ] || fail "device node: $(entry data/null)"
fi
expect_status 0 "$MINIVMM" image verify "$D/o"
# The disk image holds them too, sparse file included.
disk=$D/o/blobs/sha256/$(jq -r .disk.digest "$M")
debugfs -R 'stat /data/sparse' "$disk" 2>/dev/null | grep -q "Size: $(((4 << 30) + 1))" || fail "sparse file size in the disk image"
debugfs -R 'stat /data/fifo' "$disk" 2>/dev/null | grep -q 'Type: FIFO' || fail "fifo in the disk image"
[ "$(debugfs -R 'stat /etc/abs-out' "$disk" 2>/dev/null | grep -c "Fast link dest: \"$D/outside\"")" = 1 ] ||
	fail "symlink in the disk image"

# Tarballs: '..' refused, a cut tarball refused, owners and device nodes
# kept when built without root (setpriv to nobody).
python3 - "$D" <<'PY'
import io, sys, tarfile
d = sys.argv[1]
def add(t, name, data=b"", **kw):
    i = tarfile.TarInfo(name); i.size = len(data); i.mtime = 1704067200
    for k, v in kw.items(): setattr(i, k, v)
    t.addfile(i, io.BytesIO(data) if data else None)
with tarfile.open(d + "/evil.tar", "w") as t:
    add(t, "./etc/ok", b"fine")
    add(t, "./etc/../../escape", b"bad")
with tarfile.open(d + "/owners.tar", "w") as t:
    add(t, "./", type=tarfile.DIRTYPE, mode=0o755)
    add(t, "./sbin", type=tarfile.DIRTYPE, mode=0o755)
    add(t, "./sbin/init", b"#!/bin/sh\n", mode=0o750, uid=1234, gid=5678)
    add(t, "./dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
    add(t, "./dev/sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660, gid=6)
    add(t, "./hard", type=tarfile.LNKTYPE, linkname="sbin/init")
    add(t, "./big", b"x" * 300000, mode=0o4755)
PY
expect_status 4 "$MINIVMM" image build --rootfs "$D/evil.tar" --kernel "$K" --out "$D/o2"
expect_output "entry '\./etc/\.\./\.\./escape' has a '\.\.' component"
head -c 200000 "$D/owners.tar" >"$D/cut.tar"
expect_status 4 "$MINIVMM" image build --rootfs "$D/cut.tar" --kernel "$K" --out "$D/o3"
expect_output "rootfs $D/cut.tar: .*big"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	mkdir -p "$D/o4" && chmod 777 "$D/o4" "$D" && chmod 644 "$D/owners.tar"
	expect_status 0 setpriv --reuid=65534 --regid=65534 --clear-groups "$MINIVMM" image build \
		--rootfs "$D/owners.tar" --kernel "$K" --out "$D/o4" --no-modules
	M=$D/o4/manifest.json
	[ "$(entry sbin/init | jq -r '"\(.uid):\(.gid):\(.mode)"')" = "1234:5678:488" ] || fail "tar owners: $(entry sbin/init)"
	[ "$(entry dev/sda | jq -r .type,.rdev,.gid | paste -sd' ')" = "blk 2048 6" ] || fail "block device: $(entry dev/sda)"
	[ "$(entry hard | jq -r .type,.target | paste -sd' ')" = "hardlink sbin/init" ] ||
		[ "$(entry sbin/init | jq -r .type,.target | paste -sd' ')" = "hardlink hard" ] || fail "hard link: $(entry hard)"
	disk=$D/o4/blobs/sha256/$(jq -r .disk.digest "$M")
	debugfs -R 'stat /sbin/init' "$disk" 2>/dev/null | grep -qE 'User: +1234 +Group: +5678' ||
		fail "owner not in the disk image built without root"
	debugfs -R 'stat /dev/null' "$disk" 2>/dev/null | grep -q 'Type: character special' ||
		fail "device node not in the disk image built without root"
	debugfs -R 'stat /big' "$disk" 2>/dev/null | grep -q 'Mode:  04755' || fail "setuid mode lost"
	expect_status 0 "$MINIVMM" image verify "$D/o4"
else
	echo "not root: the unprivileged tarball build is not exercised here"
fi
echo ok
