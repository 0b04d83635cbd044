#!/usr/bin/env bash
# `make test-platform`: the arm64 userland run, the gpio-sim kernel run and the armhf native
# run, each time-boxed. Each uses one core (qemu-user, or one TCG vCPU), so the arm64 part runs
# in the background (its phase lines shown as they come, its full log printed at the end)
# while the kernel is built and the gpio-sim guest runs in the foreground, then the armhf
# part. A first run builds the roots and the kernel (cached in ~/.cache/pca-platform) and
# says so.
# Exit: 0 all passed; 1 a test failed or a part timed out. A part whose tools cannot be set up
# on this machine (its script exits 90) is reported SKIPPED and does not fail the run.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
arm64_s=${PCA_ARM64_TIMEOUT_S:-2400}
kernel_s=${PCA_KERNEL_TIMEOUT_S:-1500}
guest_s=${PCA_GUEST_TIMEOUT_S:-900}
armhf_s=${PCA_ARMHF_TIMEOUT_S:-900}
log() { printf '[platform %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
t0=$(date +%s)
cache=${PCA_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pca-platform}
mkdir -p "$cache"
ls "$cache"/kernel-*/bzImage >/dev/null 2>&1 ||
  log "FIRST RUN here: building the gpio-sim kernel (about 8-10 minutes on 2 cores)"
ls "$cache"/root-arm64-*/.complete >/dev/null 2>&1 ||
  log "FIRST RUN here: building the Debian arm64 root (about 5-12 minutes)"
ls "$cache"/root-armhf-*/.complete >/dev/null 2>&1 ||
  log "FIRST RUN here: building the Debian armhf root after the gpio-sim guest (about 5 minutes)"

# Every tool both parts need, installed here in one go: the parts run side by side and two
# apt-get at once would fight over the dpkg lock.
tools=(debootstrap qemu-user-static binfmt-support qemu-system-x86 linux-source-6.1 make gcc
       flex bison bc libelf-dev libssl-dev xz-utils)
missing=()
for t in "${tools[@]}"; do dpkg -s "$t" >/dev/null 2>&1 || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"; } >/dev/null ||
    log "could not install every tool (the parts that need them will say SKIPPED)"
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

# Each part runs in its own process group so a time-out or an interrupt ends all of it.
setsid timeout --kill-after=30 "$kernel_s" "$here/kernel.sh" >"$work/kernel.out" 2>"$work/kernel.log" &
kpid=$!
pids+=("$kpid")
s_arm64=$(date +%s)
setsid timeout --kill-after=30 "$arm64_s" "$here/userland.sh" arm64 >"$work/arm64.log" 2>&1 &
apid=$!
pids+=("$apid")
# Progress of both background parts: their own phase lines only.
setsid sh -c 'tail -n +1 -F "$1" "$2" 2>/dev/null | grep --line-buffered -E "^\[(arm64|kernel|debootstrap)"' \
  sh "$work/arm64.log" "$work/kernel.log" &
tpid=$!
pids+=("$tpid")

results=()
verdict=0
record() {  # name, exit code, seconds
  local what
  case "$2" in
    0) what=passed ;;
    90) what="SKIPPED (could not set up its tools here)" ;;
    124|137) what="TIMED OUT"; verdict=1 ;;
    *) what="FAILED (exit $2)"; verdict=1 ;;
  esac
  results+=("$(printf '%-22s %-42s %5d s' "$1" "$what" "$3")")
}

s=$(date +%s)
wait "$kpid"
krc=$?
record "gpio-sim kernel" "$krc" $(( $(date +%s) - s ))
if [ "$krc" = 0 ]; then
  s=$(date +%s)
  log "gpio-sim guest (time-out ${guest_s} s)"
  PCA_GPIOSIM_KERNEL=$(tail -n 1 "$work/kernel.out") PCA_GUEST_TIMEOUT_S=$guest_s \
    "$here/gpiosim.sh"
  record "gpio-sim guest tests" $? $(( $(date +%s) - s ))
else
  tail -n 40 "$work/kernel.log"
fi

# 32-bit Raspberry Pi OS (Pi 3, Zero 2 W): the native C tests in a bookworm armhf root, after
# the guest so that no more than two emulators share the two cores.
s=$(date +%s)
log "armhf userland: native C tests (time-out ${armhf_s} s)"
setsid timeout --kill-after=30 "$armhf_s" "$here/userland.sh" armhf >"$work/armhf.log" 2>&1
hrc=$?
record "armhf native" "$hrc" $(( $(date +%s) - s ))
grep -E '^stepgen:' "$work/armhf.log" | tail -n 1
[ "$hrc" = 0 ] || tail -n 60 "$work/armhf.log"

log "waiting for the arm64 part"
wait "$apid"
arc=$?
sleep 1
kill -- "-$tpid" 2>/dev/null
record "arm64 userland" "$arc" $(( $(date +%s) - s_arm64 ))
echo "----- arm64 userland log ($work/arm64.log) -----"
if [ "$arc" = 0 ]; then
  grep -vE '^\[(arm64|debootstrap)' "$work/arm64.log" | tail -n 25
else
  tail -n 300 "$work/arm64.log"
fi
echo "-----"

log "summary ($(( $(date +%s) - t0 )) s in all):"
printf '  %s\n' "${results[@]}"
exit "$verdict"
