# shellcheck shell=bash
# The full-copy disk of an image is checked against its files (issue 13,
# item 7): `image build` records the tree the disk holds, `image verify`
# fails on a manifest whose files changed after the disk was built (what
# write-back did before it learned to drop the disk: --mode full then
# booted the old files and verify said OK), and names the fix.
. "$REPO/tests/sandbox/lib.sh"
command -v jq >/dev/null || skip "no jq"
command -v mkfs.ext4 >/dev/null || skip "no mkfs.ext4"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || skip "no /boot/vmlinuz-* for the image's boot portion"
D=$TMPDIR
mkdir -p "$D/rootfs/etc"
printf 'original\n' >"$D/rootfs/etc/motd"
expect_status 0 "$MINIVMM" image build --rootfs "$D/rootfs" --out "$D/img" --kernel "$kernel" --no-modules
jq -e '.disk.tree | test("^[0-9a-f]{64}$")' "$D/img/manifest.json" >/dev/null ||
	fail "image build recorded no tree for the disk"
rm -f "$D/img/manifest.json.zst"
expect_status 0 "$MINIVMM" image verify "$D/img"

# The files change, the disk stays: a stale disk.
jq -c '(.entries[] | select(.path == "etc/motd") | .mtime) |= . + 1' "$D/img/manifest.json" \
	>"$D/m" && mv "$D/m" "$D/img/manifest.json"
expect_status 12 "$MINIVMM" image verify "$D/img"
expect_output 'disk image: stale.*rebuild it with minivmm image build'

# A disk recorded by an older minivmm (no tree): verified, with a note.
jq -c 'del(.disk.tree)' "$D/img/manifest.json" >"$D/m" && mv "$D/m" "$D/img/manifest.json"
expect_status 0 "$MINIVMM" image verify "$D/img"
expect_output 'records no tree'
exit 0
