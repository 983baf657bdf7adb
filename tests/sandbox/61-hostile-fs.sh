#!/usr/bin/env bash
# A hostile virtio-fs client (guest-tests/hostile_fs.c, issue 9 item 4):
# FUSE requests whose lengths lie, names with "..", '/', NUL or 4096 bytes,
# guessed and forgotten node ids, bad handles, huge sizes and offsets,
# unknown opcodes, reply buffers too small, a RELEASE racing READs, and
# tries to reach host files through ".." and symlinks (made by the guest,
# or lying in the host directory and pointing at /etc/passwd and /etc).
# Each case must get its error reply or no reply, and a good LOOKUP and
# GETATTR must work after it (docs/hostile-guests.md).
# On the host: minivmm did not crash and exits with the guest's pass code;
# the --fs-root tree, a canary beside it and /etc/passwd are unchanged;
# the guest's writes are only in the state directory, as plain files
# with no set-id bits, no symlinks and no device nodes.
set -u
. "$REPO/tests/sandbox/lib.sh"
G=$REPO/build/guest-tests
[ -f "$G/hostile_fs.elf" ] || fail "no $G/hostile_fs.elf (make guests)"
"$MINIVMM" run --help 2>&1 | grep -q -- '--fs-root' || skip "this minivmm has no virtio-fs (--fs-root)"
cd "$TMPDIR"

mkdir -p root/dir
printf 'hello from the image\n' > root/hello
printf 'inner\n' > root/dir/inner
ln -s /etc/passwd root/hostlink
ln -s /etc root/hostdir
printf 'canary: must never change\n' > canary
touch -d '2020-01-02 03:04:05' canary root/hello root/dir/inner
# Everything the guest could reach if the server followed its names.
snap() {
	find "$TMPDIR/root" "$TMPDIR/canary" -printf '%p %y %s %m %T@ %C@ %l\n' | sort
	sha256sum "$TMPDIR/canary" "$TMPDIR/root/hello" "$TMPDIR/root/dir/inner"
	stat -c "%n %s %Y %Z" /etc/passwd
	sha256sum /etc/passwd
}

run_fs() { # ROOT EXPECTED-ENTRIES [OPTION...]: one run of the guest, every assertion
	local root=$1 want=$2
	shift 2
	rm -rf state
	timeout -k 10 25 "$MINIVMM" run --kernel "$G/hostile_fs.elf" --memory 256M --cmdline "mmio=0xd0000000" \
		--fs-root "$root" --fs-state "$TMPDIR/state" "$@" > out.log 2>&1
	RC=$?
	OUT=$(cat out.log)
	echo "$OUT" | grep -E '^HOSTILE-FS (start|FAIL|note|DONE)' >&2
	case $RC in
	6 | 134 | 139) fail "minivmm crashed (status $RC)" ;;
	124) fail "minivmm or the guest hung (timeout)" ;;
	esac
	echo "$OUT" | grep -E 'HOSTILE-FS FAIL' >&2 && fail "a hostile case misbehaved"
	[ "$RC" -eq 1 ] || { echo "$OUT" | tail -n 20 >&2; fail "minivmm exited $RC, expected 1 (guest pass)"; }

	while read -r name outcome; do
		echo "$OUT" | grep -qF "HOSTILE-FS ok   $name: $outcome" || fail "case $name: no '$outcome' line"
	done <<-'CASES'
	request-before-init -EIO
	guessed-node-ids -ENOENT for ids 0, 2-63, 100000, 2^63-1, 2^64-1
	len-larger-than-buffers -EINVAL
	len-smaller-than-header -EINVAL
	len-cuts-the-name -EINVAL
	in-buffer-shorter-than-header no reply
	out-buffer-shorter-than-header no reply
	out-buffer-too-small-for-entry error reply in the header alone
	reply-buffer-beyond-ram refused (len 0) + DEVICE_NEEDS_RESET, works after reset
	lookup-dotdot-in-root -EINVAL
	lookup-dotdot-in-subdir -EINVAL
	lookup-absolute-path -EINVAL
	lookup-file-outside-root -ENOENT
	lookup-embedded-nul looked up "hello" (the name ends at the NUL)
	lookup-name-without-nul -EINVAL
	lookup-4096-byte-name -ENAMETOOLONG
	rename-dir-into-itself -EINVAL
	forgotten-node -ENOENT after FORGET, LOOKUP works again
	setattr-huge-node -ENOENT
	read-fh-huge -EBADF
	read-huge-size the file's 21 bytes, nothing more
	read-huge-offsets empty reads
	readdir-fh-0 -EBADF
	readdir-huge-size-dotdot-is-root ".." is the root, only the root's names
	write-size-lies -EINVAL for the lie, -EFBIG at 2^64-16, then a good write
	unknown-opcodes -ENOSYS for 0, 4095, 9999, 2^31-1, 2^32-1, CUSE_INIT
	release-races-reads every READ whole or -EBADF, handle gone after
	request-rewritten-while-served each reply answers one whole version
	odd-byte-names created and found again
	guest-symlink-to-etc-passwd READLINK gives the text, OPEN refused, CREATE -EEXIST
	host-symlink-to-etc-passwd a symlink node, OPEN refused, READLINK gives the text
	host-symlink-to-etc-dir -ENOTDIR for LOOKUP and OPENDIR through it
	mknod-char-device created in the table, OPEN refused
	CASES
	line=$(echo "$OUT" | grep -E '^HOSTILE-FS DONE [0-9]+ cases, 0 failures') || fail "no DONE line"
	cases=$(echo "$line" | awk '{print $3}')
	[ "$cases" -ge 70 ] || fail "only $cases cases ran"
	[ "$(echo "$OUT" | grep -c '^HOSTILE-FS ok ')" -eq "$cases" ] || fail "not every case said ok"

	# Nothing outside the state directory changed; nothing was created beside it.
	AFTER=$(snap)
	[ "$BEFORE" = "$AFTER" ] ||
		{ diff <(echo "$BEFORE") <(echo "$AFTER") >&2; fail "files outside the state directory changed"; }
	entries=$(ls -A "$TMPDIR" | tr '\n' ' ')
	[ "$entries" = "$want" ] || fail "unexpected entries beside the root: $entries"
	for p in "$TMPDIR/escape" "$TMPDIR/../escape" "$TMPDIR/root/escape" "$TMPDIR/root/evil" \
		"$TMPDIR/root/new.txt" "$TMPDIR/evil" /etc/escape /escape; do
		[ ! -e "$p" ] && [ ! -L "$p" ] || fail "$p was created on the host"
	done
	# The guest's changes: plain files under state/, owner-only, no set-id.
	[ -d state ] || fail "no state directory"
	odd=$(find state ! -type f ! -type d)
	[ -z "$odd" ] || fail "state holds non-regular files: $odd"
	setid=$(find state -perm /7000)
	[ -z "$setid" ] || fail "state holds set-id files: $setid"
	grep -rqx "written by guest" state || fail "the guest's good WRITE is not in the state directory"
	grep -rq "root:x:0:0" state && fail "the host's /etc/passwd was copied into the state directory"
}
BEFORE=$(snap)
run_fs "$TMPDIR/root" "canary out.log root state " --no-writeback
echo "ok: $cases hostile FUSE cases against a host directory" >&2

# The same against an image (manifest + blobs, files fetched through the
# cache). The run ends with a debug-exit, not a clean poweroff, so the
# guest's changes are only staged: the image must not change during the
# run. Then `minivmm writeback` publishes them, and the new image must be
# whole, with the guest's symlink stored as text and its odd names kept.
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
if [ -n "$kernel" ] && command -v busybox >/dev/null; then
	export XDG_CACHE_HOME=$TMPDIR/cache
	"$MINIVMM" image build --rootfs root --out img --no-disk --kernel "$kernel" --no-modules >build.log 2>&1 ||
		{ cat build.log >&2; fail "image build"; }
	rm build.log
	snap() { find "$TMPDIR/root" "$TMPDIR/canary" "$TMPDIR/img" -printf '%p %y %s %m %T@ %C@ %l\n' | sort
		sha256sum /etc/passwd; }
	BEFORE=$(snap)
	run_fs "$TMPDIR/img/manifest.json" "cache canary img out.log root state "
	echo "ok: $cases hostile FUSE cases against an image manifest" >&2
	[ -f state/pending/manifest.json ] || fail "the guest's changes were not staged"
	"$MINIVMM" writeback state >wb.log 2>&1 || { cat wb.log >&2; fail "minivmm writeback"; }
	"$MINIVMM" image verify img >verify.log 2>&1 || { cat verify.log >&2; fail "the written-back image does not verify"; }
	rm -f wb.log verify.log
	python3 - img/manifest.json <<'PY' || fail "the written-back manifest is wrong"
import base64, json, sys
m = json.load(open(sys.argv[1]))
by = {}
for e in m["entries"]:
    p = e["path"] if "path" in e else base64.b64decode(e["path_b64"]).decode("latin-1")
    by[p] = e
assert by["evil"]["type"] == "symlink" and by["evil"]["target"] == "/etc/passwd", by["evil"]
assert by["hostlink"]["type"] == "symlink", by["hostlink"]
assert by["new.txt"]["size"] == 16, by["new.txt"]
for name in ["new\nline", "back\\slash", 'quote"d', "ctl\x01\x1f", "bad-utf8-\xff\xfe", "...", ".. "]:
    assert name in by, name
for p in by:
    assert not p.startswith("/") and ".." not in p.split("/"), p
PY
	[ "$(snap | grep -v "$TMPDIR/img")" = "$(echo "$BEFORE" | grep -v "$TMPDIR/img")" ] ||
		fail "write-back changed files outside the image"
else
	echo "note: no kernel or busybox for 'minivmm image build': manifest run left out" >&2
fi
echo "ok: hostile FUSE cases; host tree, canary, image and /etc/passwd unchanged"
