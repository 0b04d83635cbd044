#!/usr/bin/env bash
# `make test-platform`: the arm64 userland run and the gpio-sim kernel run, each time-boxed.
# The gpio-sim kernel builds in the background while the arm64 root is made and tested (a
# first run does both; later runs find them in ~/.cache/pca-platform). Exit: 0 all passed,
# 1 a test failed or timed out. A part whose tools cannot be set up here is reported as
# SKIPPED (exit 90 from its script) and does not fail the run.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
arm64_s=${PCA_ARM64_TIMEOUT_S:-1800}
kernel_s=${PCA_KERNEL_TIMEOUT_S:-1800}
guest_s=${PCA_GUEST_TIMEOUT_S:-900}
log() { printf '[platform %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
t0=$(date +%s)
cache=${PCA_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pca-platform}
mkdir -p "$cache"
[ -n "$(ls "$cache" 2>/dev/null)" ] || log "FIRST RUN on this machine: building a Debian arm64 root and a kernel (about 20-30 minutes; cached in $cache)"

kernel_out=$(mktemp)
trap 'rm -f "$kernel_out"; [ -n "${kpid:-}" ] && kill "$kpid" 2>/dev/null' EXIT
timeout --kill-after=30 "$kernel_s" "$here/kernel.sh" >"$kernel_out" &
kpid=$!

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
log "arm64 userland (time-out ${arm64_s} s)"
timeout --kill-after=30 "$arm64_s" "$here/userland.sh" arm64
record "arm64 userland" $? $(( $(date +%s) - s ))

s=$(date +%s)
log "waiting for the gpio-sim kernel"
wait "$kpid"
krc=$?
kpid=
if [ "$krc" = 0 ]; then
  record "gpio-sim kernel" 0 $(( $(date +%s) - s ))
  s=$(date +%s)
  PCA_GPIOSIM_KERNEL=$(tail -1 "$kernel_out") PCA_GUEST_TIMEOUT_S=$guest_s "$here/gpiosim.sh"
  record "gpio-sim guest tests" $? $(( $(date +%s) - s ))
else
  record "gpio-sim kernel" "$krc" $(( $(date +%s) - s ))
fi

log "summary ($(( $(date +%s) - t0 )) s in all):"
printf '  %s\n' "${results[@]}"
exit "$verdict"
