#!/usr/bin/env bash
# The LZ4 headers and library (Debian liblz4-dev): Verilator's FST writer (`--waves fst`) needs
# them. Root with apt-get installs them; otherwise one line with the command, exit 1.
set -euo pipefail
have() { echo '#include <lz4.h>' | c++ -E -x c++ - >/dev/null 2>&1; }
if have; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "xbarflow: installing the LZ4 headers with apt-get (liblz4-dev)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liblz4-dev >/dev/null
    if have; then exit 0; fi
fi
echo "xbarflow: LZ4 headers not found (Verilator's FST waves need them); install with 'sudo apt-get install liblz4-dev', then rerun" >&2
exit 1
