"""The protocol files generated from hdl/protocol.py: the C header compiles with
g++ -Wall -Werror and its values and CRC routine agree with hdl/protocol.py; the JSON map and
the markdown page carry every command and register with the comment written beside it."""

import shutil
import subprocess

import numpy as np
import pytest

from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.interop import protocol_files
from xbarflow.flow.interop.protocol_files import (
    ProtocolDocError,
    c_header,
    markdown,
    protocol_map,
    requant_word,
)
from xbarflow.hdl import protocol

PROGRAM = r"""
#include "xbarflow.h"
#include <cstdio>
int main() {
    const uint8_t check[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
    std::printf("SYNC %u\n", (unsigned)XBF_SYNC);
    std::printf("CHIP_ID %u\n", (unsigned)XBF_CHIP_ID);
    std::printf("CMD_START_PROGRAM %u\n", (unsigned)XBF_CMD_START_PROGRAM);
    std::printf("RESP_NACK %u\n", (unsigned)XBF_RESP_NACK);
    std::printf("ERR_BUSY %u\n", (unsigned)XBF_ERR_BUSY);
    std::printf("REG_REQUANT_MULT %u\n", (unsigned)XBF_REG_REQUANT_MULT);
    std::printf("REG_GEOMETRY %u\n", (unsigned)XBF_REG_GEOMETRY);
    std::printf("STATUS_WRITE_OK %u\n", (unsigned)XBF_STATUS_WRITE_OK);
    std::printf("CHIP_GEOMETRY %u\n", (unsigned)XBF_CHIP_GEOMETRY);
    std::printf("CHIP_REQUANT_MULT %u\n", (unsigned)XBF_CHIP_REQUANT_MULT);
    std::printf("CHIP_TILES %u\n", (unsigned)XBF_CHIP_TILES);
    std::printf("CRC_CHECK %u %u\n", (unsigned)xbf_crc8(check, sizeof check), (unsigned)XBF_CRC8_CHECK);
    uint8_t frame[64];
    unsigned n = 0;
    int c;
    while (n < sizeof frame && (c = std::getchar()) != EOF) frame[n++] = (uint8_t)c;
    std::printf("CRC_FRAME %u\n", (unsigned)xbf_crc8(frame, n));
    return 0;
}
"""


def test_c_header_compiles_and_agrees_with_hdl_protocol(tmp_path):
    gpp = shutil.which("g++")
    assert gpp, "g++ is part of the toolchain (Verilator needs it)"
    cfg = cfgmod.load(cfgmod.CONFIG_DIR / "mlp.toml")
    (tmp_path / "xbarflow.h").write_text(c_header(cfg, [25]))
    (tmp_path / "check.cpp").write_text(PROGRAM)
    build = subprocess.run([gpp, "-Wall", "-Wextra", "-Werror", "-std=c++17", "-o", str(tmp_path / "check"),
                            str(tmp_path / "check.cpp")], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    frame = np.random.default_rng(2).integers(0, 256, 40, dtype=np.uint8).tobytes()
    ran = subprocess.run([str(tmp_path / "check")], input=frame, capture_output=True, timeout=60)
    got = dict(line.split(" ", 1) for line in ran.stdout.decode().splitlines())
    assert int(got["SYNC"]) == protocol.SYNC == 0xA5
    assert int(got["CHIP_ID"]) == protocol.CHIP_ID
    assert int(got["CMD_START_PROGRAM"]) == protocol.Cmd.START_PROGRAM
    assert int(got["RESP_NACK"]) == protocol.Status.NACK
    assert int(got["ERR_BUSY"]) == protocol.Error.BUSY
    assert int(got["REG_REQUANT_MULT"]) == protocol.Reg.REQUANT_MULT
    assert int(got["REG_GEOMETRY"]) == protocol.Reg.GEOMETRY
    assert int(got["STATUS_WRITE_OK"]) == protocol.STATUS_WRITE_OK
    assert int(got["CHIP_GEOMETRY"]) == protocol.geometry_word(cfg)
    assert int(got["CHIP_REQUANT_MULT"]) == 25 and int(got["CHIP_TILES"]) == 10
    assert got["CRC_CHECK"].split() == ["223", "223"]          # CRC-8/AUTOSAR check value 0xDF
    assert int(got["CRC_FRAME"]) == protocol.crc8(frame)


def test_map_and_page_carry_every_member_with_its_comment():
    pm = protocol_map()
    assert [r["name"] for r in pm["registers"]] == [r.name for r in protocol.Reg]
    assert [c["value"] for c in pm["commands"]] == [int(c) for c in protocol.Cmd]
    status = next(r for r in pm["registers"] if r["name"] == "STATUS")
    assert status["access"] == "RO" and "bit4 write_ok" in status["description"], "continuation line kept"
    assert {r["name"] for r in pm["registers"] if r["access"] in ("W", "RW")} == \
        {r.name for r in protocol.WRITABLE_REGS}
    page = markdown()
    for member in [*protocol.Reg, *protocol.Cmd]:
        assert f"| {member.name} |" in page
    assert requant_word([25, 3]) == 25 | 3 << 8


def test_a_register_documented_against_its_access_is_an_error(monkeypatch):
    monkeypatch.setattr(protocol_files.protocol, "WRITABLE_REGS", (protocol.Reg.CTRL, protocol.Reg.SCRATCH))
    with pytest.raises(ProtocolDocError, match="register REQUANT_MULT is documented RW"):
        protocol_map()
