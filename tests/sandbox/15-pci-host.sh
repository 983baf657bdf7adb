# PCI configuration mechanism #1 with only a host bridge (devices/pci_host.c):
# a bare-metal probe, then the stock kernel allowed to probe PCI (any pci=
# option keeps minivmm from adding pci=off) finds the bridge and prints no
# "PCI: Fatal: No config space access function found".
. "$REPO/tests/sandbox/lib.sh"
G=$REPO/build/guest-tests

expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$G/pci.elf"
expect_output 'pci: 00:00.0 8086:1237 class 0600'
expect_output 'pci: 1 functions on buses 0-3'
expect_output 'pci: ok'

. "$REPO/guest-tests/linux/testlib.sh"
linux_initramfs "$TMPDIR/initrd.gz"
linux_boot 0 --initrd "$TMPDIR/initrd.gz" --memory 256M --stats "$TMPDIR/stats.json" \
	--cmdline "console=ttyS0 quiet panic=-1 pci=nommconf minivmm.cpus=1"
expect_output 'MINIVMM-CHECK PASS'
expect_output 'minivmm-init: pci: 0000:00:00.0=0x8086:0x1237$'
echo "$OUT" | grep -q 'PCI: Fatal' && fail "the kernel found no PCI configuration mechanism"
# What a PCI probe costs (for docs/boot.md): port-I/O exits of this boot.
python3 - "$TMPDIR/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print("with PCI probing: io exits %d, init at %.0f ms" % (s["exits"]["io"], s["milestones"]["init_ms"]))
PY
echo "$OUT" | grep -iE 'pci' | grep -v '^minivmm-init: cmdline' || true
