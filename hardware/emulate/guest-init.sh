#!/bin/bash
# PID 1 of the gpio-sim guest (hardware/emulate/gpiosim.sh): the host's root is mounted read-only
# over 9p; this sets up the kernel filesystems, runs pytest on tests/platform/gpiosim with the
# worktree's venv, writes the exit code to the results share, and resets the machine.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp LANG=C.UTF-8 TERM=dumb
mount -t proc proc /proc
t0=$(cut -d' ' -f1 /proc/uptime)
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/shm /dev/pts
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | head -1; }
repo=$(arg pca.repo)
select=$(arg pca.tests | tr ',' ' ')
mount -t tmpfs tmpfs /mnt
mkdir -p /mnt/results /mnt/repo
# The checkout may live under a folder that gets a fresh tmpfs below (CI clones into /tmp):
# hold it by a bind mount first and put it back at the same path, which its venv names.
case "$repo" in
  /tmp/*|/run/*|/var/tmp/*|/dev/shm/*) mount --bind "$repo" /mnt/repo ;;
esac
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/tmp 2>/dev/null || true
if mountpoint -q /mnt/repo; then
  mkdir -p "$repo" && mount --bind /mnt/repo "$repo"
fi
mount -t configfs configfs /sys/kernel/config
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 results /mnt/results
out=/mnt/results
echo "guest: kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime) s, repo $repo" | tee "$out/guest.log"

finish() {
  echo "$1" > "$out/rc"
  sync
  # No ACPI in this kernel: a reset is what ends qemu (-no-reboot).
  python3 -c 'import ctypes; ctypes.CDLL(None).reboot(0x01234567)' 2>/dev/null
  exit "$1"
}

if [ ! -d /sys/kernel/config/gpio-sim ]; then
  echo "guest: gpio-sim is not in this kernel" | tee -a "$out/guest.log"
  finish 3
fi
cd "$repo" || finish 3
export PCA_GPIOSIM=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TMPDIR=/tmp
# lgpio writes its notification pipe (.lgd-nfy*) into the working directory or $LG_WD.
export LG_WD=/tmp
# shellcheck disable=SC2086
"$repo/.venv/bin/python" -m pytest -p no:cacheprovider -o addopts= -v -rs \
  --junitxml="$out/junit.xml" ${select:-tests/platform/gpiosim} 2>&1 | tee "$out/pytest.log"
rc=${PIPESTATUS[0]}
echo "guest: pytest exit $rc after $(cut -d' ' -f1 /proc/uptime) s of uptime (init started at $t0 s)" |
  tee -a "$out/guest.log"
finish "$rc"
