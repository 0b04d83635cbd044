#!/usr/bin/env bash
# Boots the small gpio-sim kernel (hardware/emulate/kernel.sh) under qemu-system-x86_64 with TCG,
# the host's root shared read-only over 9p, and runs tests/platform/gpiosim there against the
# kernel's real GPIO character device. Exit code: pytest's in the guest; 124 on a time-out.
#   hardware/emulate/gpiosim.sh [pytest selection, comma-separated]
# Needs the worktree's venv (make .venv/.installed) with lgpio (make test-platform installs it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tests=${1:-tests/platform/gpiosim}
guest_timeout_s=${PCA_GUEST_TIMEOUT_S:-1200}
log() { printf '[gpiosim %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v qemu-system-x86_64 >/dev/null || {
  log "installing qemu-system-x86"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >&2 ||
    { log "SETUP FAILED: cannot install qemu-system-x86"; exit 90; }
}
[ -x "$repo/.venv/bin/python" ] || { log "no venv at $repo/.venv: run make .venv/.installed"; exit 2; }
case "$repo" in *' '*|*,*) log "the checkout's path may not hold spaces or commas: $repo"; exit 2 ;; esac

kernel=${PCA_GPIOSIM_KERNEL:-}
[ -n "$kernel" ] || kernel=$("$here/kernel.sh")
results=$(mktemp -d /tmp/pca-gpiosim.XXXXXX)
trap 'rm -rf "$results"' EXIT
log "booting $kernel under TCG (guest time-out ${guest_timeout_s} s)"
t0=$(date +%s)
set +e
# -accel tcg: KVM guests stall in firmware on this kind of machine. One vCPU, 1 GiB.
timeout --kill-after=10 "$guest_timeout_s" qemu-system-x86_64 \
  -accel tcg -cpu max -smp 1 -m 1024 -nodefaults -no-user-config -display none -no-reboot \
  -serial stdio -monitor none \
  -kernel "$kernel" \
  -append "console=ttyS0 loglevel=4 panic=-1 root=hostroot rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=262144,cache=loose ro init=$here/guest-init.sh pca.repo=$repo pca.tests=$tests" \
  -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  -fsdev local,id=results,path="$results",security_model=none,multidevs=remap \
  -device virtio-9p-pci,fsdev=results,mount_tag=results \
  -device virtio-rng-pci </dev/null
qrc=$?
set -e
log "guest ran $(( $(date +%s) - t0 )) s (qemu exit $qrc)"
[ -f "$results/junit.xml" ] && cp "$results/junit.xml" "$repo/build/gpiosim-junit.xml" 2>/dev/null || true
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
  log "TIME-OUT: the guest did not finish within ${guest_timeout_s} s"
  exit 124
fi
if [ ! -f "$results/rc" ]; then
  log "the guest stopped without a result (kernel panic or crash: see the console above)"
  exit 1
fi
rc=$(cat "$results/rc")
log "pytest in the guest exited $rc"
exit "$rc"
