# Helpers for tests that boot the stock Linux kernel (tests/sandbox/2*.sh and
# anyone else's). Source after tests/sandbox/lib.sh:
#   . "$REPO/guest-tests/linux/testlib.sh"
# Sets KERNEL (newest /boot/vmlinuz-*, skips the test if none) and KVER.
#   linux_initramfs OUT [mkinitramfs args]   build a busybox initramfs
#   linux_boot WANT [minivmm run args...]    boot with a timeout, output in $OUT
#   linux_vmlinux OUT                        extract the ELF vmlinux from $KERNEL
# A stock boot takes 10-45 s in the nested sandbox; a hang costs this much.
LINUX_TIMEOUT=${LINUX_TIMEOUT:-240}
KERNEL=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$KERNEL" ] || skip "no /boot/vmlinuz-* (apt install linux-image-amd64)"
KVER=${KERNEL#/boot/vmlinuz-}
command -v busybox >/dev/null || skip "no busybox (apt install busybox-static)"

linux_initramfs() {
	local out=$1; shift
	"$REPO/guest-tests/linux/mkinitramfs" -o "$out" -k "$KVER" "$@" || fail "mkinitramfs failed"
}

# The console output goes to $OUT (stdout and stderr together).
linux_boot() {
	local want=$1; shift
	expect_status "$want" timeout -k 10 "$LINUX_TIMEOUT" "$MINIVMM" run --kernel "$KERNEL" "$@"
}

# A bzImage's payload is the compressed vmlinux: find the compressor's magic
# after the setup code and inflate from there (trailing bytes are ignored).
linux_vmlinux() {
	local out=$1
	python3 - "$KERNEL" "$out" <<'PY' || fail "cannot extract vmlinux from $KERNEL"
import subprocess, sys
k = open(sys.argv[1], "rb").read()
for magic, cmd in ((b"\xfd7zXZ\x00", ["xz", "-dc"]), (b"\x28\xb5\x2f\xfd", ["zstd", "-dc"]),
                   (b"\x1f\x8b\x08", ["gzip", "-dc"])):
    at = k.find(magic)
    if at < 0:
        continue
    p = subprocess.run(cmd, input=k[at:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if p.stdout[:4] == b"\x7fELF":
        open(sys.argv[2], "wb").write(p.stdout)
        sys.exit(0)
sys.exit(1)
PY
}

# net_ask_until_done URL TOKEN (the networking tests, guest-tests/linux/
# init-net): ask URL with curl until it answers TOKEN, the guest (pid $vm,
# console in console.log) ends, or LINUX_TIMEOUT passes; then create
# www/done, which the guest polls for before powering off, wait for it and
# judge its exit. Sets OUT to the console and clears vm.
net_ask_until_done() {
	local url=$1 want=$2 got="" rc deadline=$((SECONDS + LINUX_TIMEOUT))
	while [ $SECONDS -lt $deadline ]; do
		got=$(curl -s --max-time 5 "$url" 2>/dev/null || true)
		[ "$got" = "$want" ] && break
		kill -0 "$vm" 2>/dev/null || break
		sleep 1
	done
	touch www/done
	wait "$vm"
	rc=$?
	vm=""
	OUT=$(cat console.log)
	echo "$OUT" | grep -E 'net-init|NET-CHECK|virtio_net' >&2
	case $rc in
	0) ;;
	124 | 137) echo "$OUT" >&2; hung "the networked guest did not end in time (status $rc)" ;;
	6) echo "$OUT" >&2; hung "the guest crashed (status 6)" ;;
	*) echo "$OUT" >&2; fail "minivmm exited $rc, expected 0" ;;
	esac
	[ "$got" = "$want" ] || { echo "$OUT" >&2; fail "curl $url never got the token (last answer: '$got')"; }
}
