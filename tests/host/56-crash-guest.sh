# shellcheck shell=bash
# The host's half of tests/sandbox/19-crash-dump.sh (issue 15), no KVM
# needed: that test expects the triplefault guest's last exit to be the OUT
# at its label triplefault_last_exit, followed by nothing but lidt and the
# int3 at triplefault_fault. Checked in the built guest's code, so that a
# compiler that put something between them fails here, by name, and not
# there as a wrong rip.
. "$REPO/tests/sandbox/lib.sh"
command -v objdump >/dev/null || skip "no objdump (binutils)"
elf=$REPO/build/guest-tests/triplefault.elf
[ -f "$elf" ] || fail "$elf is not built (make guests)"
dis=$(objdump -d --no-show-raw-insn "$elf") || fail "objdump $elf"
between=$(echo "$dis" | sed -n '/<triplefault_last_exit>:/,/<triplefault_fault>:/p' |
	awk -F'\t' 'NF >= 2 { print $2 }')
# The lidt operand is the compiler's choice; its mnemonic is not.
[ "$(echo "$between" | sed -n 1p)" = 'out    %al,(%dx)' ] ||
	{ echo "$dis" >&2; fail "triplefault_last_exit is not an OUT: $between"; }
if [ "$(echo "$between" | wc -l)" != 2 ] || ! echo "$between" | sed -n 2p | grep -q '^lidt '; then
	echo "$between" >&2
	fail "between the OUT and the fault: not just one lidt"
fi
fault=$(echo "$dis" | sed -n '/<triplefault_fault>:/{n;p}' | awk -F'\t' '{ print $2 }')
[ "$fault" = int3 ] || fail "triplefault_fault is '$fault', not int3"
# The guest prints both addresses; they are the symbols'.
nm "$elf" | grep -qE ' T triplefault_last_exit$' || fail "no global triplefault_last_exit"
nm "$elf" | grep -qE ' T triplefault_fault$' || fail "no global triplefault_fault"
