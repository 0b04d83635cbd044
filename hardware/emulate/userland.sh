#!/usr/bin/env bash
# Runs the pump on a Debian bookworm (Raspberry Pi OS) userland of another CPU under qemu-user:
# builds the root once with debootstrap (cached), installs the checkout with systemd/install.sh,
# then runs the native C tests and the chosen pytest files there.
#   hardware/emulate/userland.sh arm64   # Pi 3/4/5 64-bit: install.sh + native + pytest subset
#   hardware/emulate/userland.sh armhf   # Pi 3 / Zero 2 W 32-bit: native C tests only
# Needs root (debootstrap, chroot, binfmt_misc). Cache: ${XDG_CACHE_HOME:-~/.cache}/pca-platform.
set -euo pipefail
arch=${1:-arm64}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${PCA_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pca-platform}
log() { printf '[%s %s] %s\n' "$arch" "$(date +%H:%M:%S)" "$*" >&2; }
phase_start=$(date +%s)
phase() { local now; now=$(date +%s); log "$1 (previous phase $((now - phase_start)) s)"; phase_start=$now; }

case "$arch" in
  arm64) qemu=aarch64; machine=aarch64 ;;
  armhf) qemu=arm; machine=armv7l ;;
  *) echo "userland.sh: unknown architecture '$arch' (arm64 or armhf)" >&2; exit 2 ;;
esac
# What runs on the emulated CPU (about 10x slower than here): therapy (rules, ledger,
# prescription, strict input, PIN rules, SR-12 intermittent, SR-13 respiratory), controller,
# store (storage faults; the sealed log: seal, verify and the attacks on it, start-up from a
# checkpoint, with Debian's own SQLite), native and the scenario engine end to end. Left out:
# tests/test_stateful.py (minutes of wall time even natively), the bench (timing means nothing
# under qemu), the scenario file-parsing cases (one CLI start each, nothing about the CPU), the
# second checkpoint comparison and the running-loop watch of a deleted database (real-time
# waits; the other storage attacks run).
PYTESTS=(tests/platform/test_userland.py tests/test_rules.py tests/test_ledger.py
         tests/test_prescription.py tests/test_strict_input.py tests/test_pin_rules.py
         tests/test_intermittent.py tests/test_sr12.py tests/test_respiratory.py tests/test_sr13.py
         tests/test_controller.py tests/test_storage_faults.py tests/test_seal.py
         tests/test_log_tools.py::test_sr7_intact_log_verifies
         tests/test_log_tools.py::test_sr7_verify_catches_an_edit
         tests/test_log_tools.py::test_sr7_verify_catches_deleting_the_last_rows
         tests/test_log_tools.py::test_schema_v1_is_migrated_forward_on_start_up
         tests/test_scenario_contract.py::test_every_example_runs_and_prints_a_summary
         tests/test_scenario_contract.py::test_same_file_gives_the_same_events
         tests/test_scenario_contract.py::test_summary_totals_match_the_trace_end
         tests/native)
# Node ids relative to the root dir (/opt/pca), as pytest's --deselect compares them.
PYTEST_OPTS=(--deselect tests/native/test_bench.py
             --deselect tests/test_seal.py::test_sr5_a_pump_booted_from_a_checkpoint_is_the_pump_a_full_replay_gives
             -k "not the_running_loop_notices_a_deleted_database")

[ "$(id -u)" = 0 ] || { echo "userland.sh: needs root (debootstrap and chroot)" >&2; exit 2; }
# The root, its copy of the checkout and its venv are this run's alone.
. "$here/lock.sh"
cache_lock "root-$arch"

# --- tools and binfmt_misc --------------------------------------------------------------------
phase "tools"
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -x /usr/bin/qemu-$qemu-static ] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
    { log "SETUP FAILED: cannot install ${need[*]}"; exit 90; }
fi
[ -e /proc/sys/fs/binfmt_misc/register ] ||
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-$qemu ] || update-binfmts --enable qemu-$qemu >&2 ||
  update-binfmts --import qemu-$qemu >&2
grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-$qemu ||
  { log "binfmt qemu-$qemu is not registered with the fix-binary flag"; exit 1; }

# --- the root (cached) ------------------------------------------------------------------------
mirror=${PCA_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { log "no Debian mirror found in the host's apt sources; set PCA_DEBIAN_MIRROR"; exit 1; }
if [ "$arch" = arm64 ]; then
  include=python3,python3-venv,python3-dev,build-essential,ca-certificates,passwd
else
  include=gcc,make,libc6-dev,ca-certificates
fi
# Bump ROOT_RECIPE when the debootstrap step changes; the fix-ups after it run every time.
ROOT_RECIPE=1
key=$(printf '%s recipe %s' "$include" "$ROOT_RECIPE" | sha256sum | cut -c1-12)
root="$cache/root-$arch-bookworm-$key"
if [ ! -f "$root/.complete" ]; then
  phase "FIRST RUN: debootstrap of Debian bookworm $arch (about 5-8 minutes; cached afterwards)"
  mkdir -p "$cache"
  rm -rf "$root" "$cache"/root-"$arch"-bookworm-*  # older keys
  # Progress: debootstrap's own lines (retrieving / unpacking / configuring), one per package.
  { debootstrap --arch="$arch" --variant=minbase --include="$include" bookworm "$root" "$mirror" 2>&1 &&
      touch "$root/.debootstrap-ok" || echo "E: debootstrap exited $?"; } |
    awk '/^I: (Retrieving|Validating|Extracting|Unpacking|Configuring|Installing)/ {n++; if (n % 25 == 0) {print "[debootstrap] " n " steps: " $0; fflush()}} /^E:|^W: Failure/ {print; fflush()}' >&2
  [ -f "$root/.debootstrap-ok" ] || { log "SETUP FAILED: debootstrap (see the E: lines above)"; exit 90; }
  touch "$root/.complete"
else
  log "cached root: $root"
fi
# Fix-ups (cheap, every run): pip and apt inside the root trust the host's extra CA
# certificates and accept a snapshot mirror; what a Pi OS image has that minbase lacks.
mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/udev/rules.d" "$root/etc/systemd/system"
cas=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum | cut -c1-12)
if [ "$(cat "$root/.cas" 2>/dev/null)" != "$cas" ]; then  # slow under emulation: only on change
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$root" /usr/sbin/update-ca-certificates >/dev/null 2>&1 || true
  echo "$cas" > "$root/.cas"
fi
echo 'Acquire::Check-Valid-Until "false";' > "$root/etc/apt/apt.conf.d/99pca-snapshot"
# install.sh calls udevadm and systemctl; a chroot runs neither daemon, so they only log.
for t in udevadm systemctl; do
  printf '#!/bin/sh\necho "(emulated root: %s $*)"\n' "$t" > "$root/usr/local/sbin/$t"
  chmod 0755 "$root/usr/local/sbin/$t"
done

# --- the checkout, installed as on a Pi ---------------------------------------------------------
phase "copying the checkout into the root"
rm -rf "$root/src/pca"
mkdir -p "$root/src/pca"
(cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$root/src/pca"
cp -f /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

# Everything inside runs in a private mount namespace, so no mount outlives this script.
run_in_root() {
  unshare --mount --propagation private -- /bin/bash -c '
    set -e
    r=$1; shift
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs tmpfs "$r/tmp"
    exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 TERM=dumb PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
      PIP_DEFAULT_TIMEOUT=60 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off \
      PCA_NATIVE_WERROR=1 PCA_PLATFORM_EXPECT_MACHINE='"$machine"' "$@"
  ' run_in_root "$root" "$@"
}

run_in_root /bin/uname -m >&2
if [ "$arch" = armhf ]; then
  phase "native C tests (make -C native test) on $machine"
  run_in_root /usr/bin/make -C /src/pca/native test
  phase "done"
  exit 0
fi

phase "systemd/install.sh inside the root (venv, pip install .[pi], native build with -Werror)"
# A kept venv makes a cached run fast; everything else of the previous install is replaced.
if [ -d "$root/opt/pca" ]; then
  find "$root/opt/pca" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
fi
run_in_root /bin/bash /src/pca/systemd/install.sh
phase "test tools into the pump's venv"
run_in_root /opt/pca/.venv/bin/python -c "import pytest, hypothesis" 2>/dev/null ||
  run_in_root /opt/pca/.venv/bin/pip install --quiet "pytest>=8" "hypothesis>=6.100"

phase "native C tests (make -C native test) on $machine"
run_in_root /usr/bin/make -C /opt/pca/native test

phase "pytest on $machine: ${PYTESTS[*]} ${PYTEST_OPTS[*]}"
# The installed package (site-packages, with its compiled extension) is the one under test:
# run from a scratch directory, since `python -m` in /opt/pca would import the copied source
# tree (which has no compiled extension) instead.
run_in_root /usr/bin/env -C /tmp /opt/pca/.venv/bin/pytest -c /opt/pca/pyproject.toml \
  --rootdir=/opt/pca -p no:cacheprovider "${PYTESTS[@]/#//opt/pca/}" "${PYTEST_OPTS[@]}"
phase "done"
