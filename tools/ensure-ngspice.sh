#!/usr/bin/env bash
# ngspice (batch mode): `xbarflow spice` and tests/flow/analysis/test_spice.py.
here=${BASH_SOURCE[0]%/*}; [ "$here" != "${BASH_SOURCE[0]}" ] || here=.
exec "$BASH" "$here/ensure-debian.sh" "ngspice" "ngspice" "ngspice"
