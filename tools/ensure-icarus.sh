#!/usr/bin/env bash
# Icarus Verilog (iverilog, vvp): the co-simulations' first simulator.
here=${BASH_SOURCE[0]%/*}; [ "$here" != "${BASH_SOURCE[0]}" ] || here=.
exec "$BASH" "$here/ensure-debian.sh" "Icarus Verilog" "iverilog vvp" "iverilog"
