# PCI configuration mechanism #1 with only a host bridge (devices/pci_host.c):
# a bare-metal probe, then the stock kernel: it finds the mechanism and
# prints no "PCI: Fatal: No config space access function found", and with
# pci=noearly (minivmm's default) it costs few port-I/O exits.
. "$REPO/tests/sandbox/lib.sh"
G=$REPO/build/guest-tests

expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$G/pci.elf"
expect_output 'pci: 00:00.0 8086:1237 class 0600'
expect_output 'pci: 1 functions on buses 0-3'
expect_output 'pci: ok'

. "$REPO/guest-tests/linux/testlib.sh"
linux_initramfs "$TMPDIR/initrd.gz"
# Warning-looking lines of a boot, and its port-I/O exits (docs/boot.md
# lists whose each warning is; the exits say what PCI probing costs).
report() {
	echo "--- $1: lines that look like warnings:"
	echo "$OUT" | grep -iE 'warn|error|fatal|fail|bug|firmware|not found|unable|cannot' |
		grep -vE '^minivmm-init|MINIVMM-CHECK' || true
	python3 - "$TMPDIR/$1.json" "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print("--- %s: io exits %d, init at %.0f ms" % (sys.argv[2], s["exits"]["io"], s["milestones"]["init_ms"]))
PY
}

# minivmm's default: pci=noearly appended (vmm/boot_linux.c). The kernel
# finds configuration mechanism #1 through the host bridge, so no "PCI:
# Fatal"; the ACPI tables describe no PCI root bridge, so it scans no bus.
linux_boot 0 --initrd "$TMPDIR/initrd.gz" --memory 256M --stats "$TMPDIR/default.json" \
	--cmdline "console=ttyS0 quiet panic=-1 minivmm.cpus=1"
report default
expect_output 'MINIVMM-CHECK PASS'
expect_output 'minivmm-init: cmdline: .* pci=noearly'
expect_output 'minivmm-init: pci: none[[:space:]]*$'
echo "$OUT" | grep -q 'PCI: Fatal' && fail "the kernel found no PCI configuration mechanism"
default_io=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["exits"]["io"])' "$TMPDIR/default.json")

# A pci= option of the user's is kept as it is. pci=nommconf: the kernel's
# early scan of all 256 buses runs, which is what pci=noearly saves.
linux_boot 0 --initrd "$TMPDIR/initrd.gz" --memory 256M --stats "$TMPDIR/early.json" \
	--cmdline "console=ttyS0 quiet panic=-1 pci=nommconf minivmm.cpus=1"
report early-scan
expect_output 'MINIVMM-CHECK PASS'
echo "$OUT" | grep -q 'pci=noearly' && fail "pci=noearly added to a line that has pci="
early_io=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["exits"]["io"])' "$TMPDIR/early.json")
[ "$default_io" -lt $((early_io / 4)) ] ||
	fail "pci=noearly saved too little: $default_io port-I/O exits against $early_io"

# The user's pci=off: the kernel probes nothing and says so itself.
linux_boot 0 --initrd "$TMPDIR/initrd.gz" --memory 256M --stats "$TMPDIR/pci-off.json" \
	--cmdline "console=ttyS0 quiet panic=-1 pci=off minivmm.cpus=1"
report pci-off
expect_output 'MINIVMM-CHECK PASS'
exit 0
