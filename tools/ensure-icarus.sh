#!/usr/bin/env bash
# Make sure Icarus Verilog (iverilog, vvp) is on PATH; install it from Debian when we can.
set -euo pipefail
if command -v iverilog >/dev/null && command -v vvp >/dev/null; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "xbarflow: installing Icarus Verilog with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null
    exit 0
fi
echo "xbarflow: Icarus Verilog not found; install it with 'sudo apt-get install iverilog' (or your OS's package), then rerun" >&2
exit 1
