#!/usr/bin/env bash
# ensure-debian.sh WHAT "TOOLS" "PACKAGES": make sure every command in TOOLS is on PATH. When one
# is missing and we are root with apt-get, install Debian's PACKAGES; otherwise print one line
# with the command to run and exit 1, so that `make setup` (and `make test` after it) stops
# instead of running tests that would fail later for want of a tool.
set -euo pipefail
what=$1 tools=$2 pkgs=$3
missing() { for t in $tools; do command -v "$t" >/dev/null || return 0; done; return 1; }
if ! missing; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "xbarflow: installing $what with apt-get ($pkgs)" >&2
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
    if ! missing; then exit 0; fi
fi
echo "xbarflow: $what not found; install with 'sudo apt-get install $pkgs' (or your OS's packages), then rerun" >&2
exit 1
