# virtio-fs without Linux: a bare-metal guest (guest-tests/fs/vfs_probe.c)
# drives the device through the virtio-mmio transport with FUSE requests
# (INIT, LOOKUP, OPEN, READ, CREATE, WRITE, READDIR, hostile requests).
# Over a host directory, then over an image (a file fault through the
# fetch client and the cache, then write-back at poweroff).
. "$REPO/tests/sandbox/lib.sh"
F="-ffreestanding -fno-pic -fno-pie -fno-stack-protector -nostdlib -fno-asynchronous-unwind-tables
   -mno-red-zone -mgeneral-regs-only -O2 -Wall -Wextra -Werror -I$REPO/guest-tests/rt"
L="-nostdlib -static -no-pie -Wl,--build-id=none -Wl,-T,$REPO/guest-tests/rt/guest.ld -Wl,-z,noexecstack
   -Wl,--no-warn-rwx-segments"
# shellcheck disable=SC2086
gcc -m64 $F $L -o "$TMPDIR/vfs_probe.elf" "$REPO/guest-tests/rt/start64.S" "$REPO/guest-tests/rt/runtime.c" \
	"$REPO/guest-tests/fs/vfs_probe.c" || fail "building the probe guest"
export XDG_CACHE_HOME=$TMPDIR/cache

root=$TMPDIR/root
mkdir -p "$root"
printf 'hello from the host\n' > "$root/hello.txt"

# A host directory; two request queues, two workers.
expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$TMPDIR/vfs_probe.elf" --fs-root "$root" \
	--fs-state "$TMPDIR/state" --fs-queues 2 --fs-threads 2 --no-writeback --stats "$TMPDIR/s1.json"
expect_output 'vfs_probe: ok \(11 requests\)'
grep -rqx "written by a bare-metal guest" "$TMPDIR/state/upper" || fail "the guest's file is not in the upper layer"
[ ! -e "$root/guest.txt" ] || fail "the guest wrote into the --fs-root directory"
python3 - "$TMPDIR/s1.json" <<'PY' || fail "stats"
import json, sys
fs = json.load(open(sys.argv[1]))["fs"]
assert fs["requests"] == 11 and fs["bytes_written"] == 30 and fs["bytes_read"] == 20, fs
PY

# An image: hello.txt is a file fault. A debug-exit is not a poweroff, so
# the change is staged, not uploaded; `minivmm writeback` uploads it.
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || skip "no /boot/vmlinuz-* for the image's boot portion"
"$MINIVMM" image build --rootfs "$root" --out "$TMPDIR/img" --no-disk --kernel "$kernel" --no-modules \
	>"$TMPDIR/build.log" 2>&1 || { cat "$TMPDIR/build.log"; fail "image build"; }
before=$(sha256sum "$TMPDIR"/img/manifest.json*)
expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$TMPDIR/vfs_probe.elf" \
	--fs-root "$TMPDIR/img/manifest.json" --fs-state "$TMPDIR/state2" --stats "$TMPDIR/s2.json"
expect_output 'vfs_probe: ok'
expect_output 'fs: 11 requests, 1 files faulted, 20 bytes fetched'
expect_output "minivmm writeback $TMPDIR/state2"
[ "$before" = "$(sha256sum "$TMPDIR"/img/manifest.json*)" ] || fail "uploaded without a poweroff"
python3 - "$TMPDIR/s2.json" <<'PY' || fail "stats"
import json, sys
fs = json.load(open(sys.argv[1]))["fs"]
assert fs["files_faulted"] == 1 and fs["bytes_fetched"] == 20, fs
assert fs["bytes_written_back"] == 0, fs
PY
expect_status 0 "$MINIVMM" writeback "$TMPDIR/state2"
python3 - "$TMPDIR/img/manifest.json" <<'PY' || fail "write-back"
import json, sys
m = json.load(open(sys.argv[1]))
assert "guest.txt" in [e["path"] for e in m["entries"]], m["entries"]
PY
"$MINIVMM" image verify "$TMPDIR/img" >/dev/null 2>&1 || fail "image verify after write-back"
expect_status 0 "$MINIVMM" writeback "$TMPDIR/state2" # nothing left to push: says so
expect_output 'nothing to write back'
[ "$(sha256sum "$TMPDIR"/img/manifest.json*)" != "$before" ] || fail "the write-back was lost"
