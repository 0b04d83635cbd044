#!/usr/bin/env bash
# Builds (once, then cached) a small x86_64 kernel from Debian's linux-source-6.1 with gpio-sim,
# configfs, devtmpfs and 9p over virtio, for hardware/emulate/gpiosim.sh. Prints the bzImage path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${PCA_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pca-platform}
src_tar=/usr/src/linux-source-6.1.tar.xz
jobs=${PCA_KERNEL_JOBS:-2}
log() { printf '[kernel %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# Only the bzImage path goes to stdout; everything else (make, apt) to stderr.
exec 3>&1 1>&2
# Bump when the build steps below change what is built (the config fragment is hashed itself).
RECIPE=1

need=()
for t in make gcc flex bison bc; do command -v "$t" >/dev/null || need+=("$t"); done
[ -f "$src_tar" ] || need+=(linux-source-6.1)
dpkg -s libelf-dev >/dev/null 2>&1 || need+=(libelf-dev)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then
  log "installing build tools: ${need[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    make gcc flex bison bc libelf-dev libssl-dev linux-source-6.1 xz-utils >&2 ||
    { log "SETUP FAILED: cannot install the kernel build tools"; exit 90; }
fi

. "$here/lock.sh"
cache_lock kernel
src_ver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$( (cat "$here/kernel.config"; echo "recipe $RECIPE") | sha256sum | cut -c1-12)
out="$cache/kernel-$src_ver-$key"
if [ -f "$out/bzImage" ]; then
  log "cached: $out/bzImage"
  echo "$out/bzImage" >&3
  exit 0
fi
log "FIRST RUN: building a kernel from linux-source $src_ver (about 10 minutes on 2 cores)"
mkdir -p "$cache"
work="$cache/kernel-build"
t0=$(date +%s)
if [ "$(cat "$work/.unpacked" 2>/dev/null)" != "$src_ver" ]; then
  rm -rf "$work"
  mkdir -p "$work"
  log "unpacking $src_tar"
  tar -xJf "$src_tar" -C "$work" --strip-components=1
  echo "$src_ver" > "$work/.unpacked"
  log "unpacked in $(( $(date +%s) - t0 )) s"
fi
cd "$work"
make -s ARCH=x86_64 tinyconfig >&2
scripts/kconfig/merge_config.sh -m .config "$here/kernel.config" >/dev/null
make -s ARCH=x86_64 olddefconfig >&2
missing=0
while IFS= read -r line; do
  case "$line" in CONFIG_*=y)
    grep -qx "$line" .config || { log "option not set: $line"; missing=1; } ;;
  esac
done < "$here/kernel.config"
[ "$missing" = 0 ] || { log "SETUP FAILED: kernel config incomplete"; exit 90; }
log "building bzImage with -j$jobs"
t1=$(date +%s)
# Progress: one line per 200 objects compiled, so a first run shows it is moving.
rm -f arch/x86/boot/bzImage
{ make ARCH=x86_64 -j"$jobs" bzImage 2>&1 || true; } | awk '/^  CC/ {n++; if (n % 200 == 0) {printf "[kernel] %d objects compiled\n", n; fflush()}} / error: |Error [0-9]/ {print; fflush()}' >&2
[ -f arch/x86/boot/bzImage ] || { log "SETUP FAILED: kernel build"; exit 90; }
log "built in $(( $(date +%s) - t1 )) s"
mkdir -p "$out"
cp arch/x86/boot/bzImage .config "$out/"
# The unpacked tree stays in the cache: a changed config then rebuilds incrementally.
log "kernel ready: $out/bzImage ($(( $(date +%s) - t0 )) s in all)"
echo "$out/bzImage" >&3
