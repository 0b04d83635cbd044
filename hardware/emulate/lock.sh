# Sourced by kernel.sh and userland.sh: one run at a time on a cached kernel or root.
# cache_lock NAME holds "$cache/NAME.lock" until the script exits (the descriptor dies with it,
# a SIGKILL included); a second run says that it waits, then waits, rather than unpacking or
# debootstrapping into the same folder at once. Needs `cache` and `log` set by the caller.
cache_lock() {
  mkdir -p "$cache"
  exec 8>"$cache/$1.lock"
  flock -n 8 && return 0
  log "another run is using $1 in $cache: waiting for it"
  flock 8
  log "$1 is ours now"
}
