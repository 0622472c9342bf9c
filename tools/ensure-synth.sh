#!/usr/bin/env bash
# The iCE40 synthesis tools (Yosys, nextpnr-ice40, icestorm's icepack): `xbarflow cost --synth`
# and tests/flow/analysis/test_cost.py::test_synthesis_of_a_small_chip.
here=${BASH_SOURCE[0]%/*}; [ "$here" != "${BASH_SOURCE[0]}" ] || here=.
exec "$BASH" "$here/ensure-debian.sh" "the iCE40 synthesis tools" "yosys nextpnr-ice40 icepack" \
    "yosys nextpnr-ice40 fpga-icestorm"
