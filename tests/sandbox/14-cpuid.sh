# CPUID bits minivmm sets (vmm/vcpu.c): the TSC-deadline timer whenever
# the host's KVM has KVM_CAP_TSC_DEADLINE_TIMER, as QEMU does.
. "$REPO/tests/sandbox/lib.sh"
G=$REPO/build/guest-tests

# KVM_CHECK_EXTENSION (_IO(0xAE, 0x03)) of KVM_CAP_TSC_DEADLINE_TIMER (72).
want=$(python3 -c '
import fcntl, os
fd = os.open("/dev/kvm", os.O_RDWR)
print(1 if fcntl.ioctl(fd, 0xAE03, 72) > 0 else 0)') || fail "cannot ask /dev/kvm"
echo "KVM_CAP_TSC_DEADLINE_TIMER: $want"

expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$G/cpuid.elf" --cmdline "tsc_deadline=$want"
expect_output "cpuid: tsc_deadline=$want hypervisor=1"
expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$G/cpuid.elf" --cpus 2 --cmdline "tsc_deadline=$want"
expect_output "cpuid: tsc_deadline=$want"
