#!/usr/bin/env bash
# Make sure ngspice (batch mode, for `xbarflow spice` and tests/test_spice.py) is on PATH: install
# Debian's package with apt-get when it is missing and we are root; otherwise print one line and
# carry on (only the SPICE cross-check needs it, and its test then fails saying the same).
# With --synth, the same for the optional synthesis tools behind `xbarflow cost --synth`
# (yosys, nextpnr-ice40, fpga-icestorm); that mode fails when it cannot install them.
set -euo pipefail
if [ "${1:-}" = "--synth" ]; then
    tools="yosys nextpnr-ice40 icepack"; pkgs="yosys nextpnr-ice40 fpga-icestorm"
    what="the iCE40 synthesis tools"; status=1
else
    tools="ngspice"; pkgs="ngspice"; what="ngspice"; status=0
fi
missing=0
for t in $tools; do command -v "$t" >/dev/null || missing=1; done
if [ "$missing" = 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "xbarflow: installing $what with apt-get ($pkgs)" >&2
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
    exit 0
fi
echo "xbarflow: $what not found; install with 'sudo apt-get install $pkgs' (or your OS's packages)" >&2
exit "$status"
