"""The host protocol for firmware and lab benches, generated from hdl/protocol.py so it cannot
drift: the register map and command set as JSON, a C header, and a markdown page.

Everything comes from the module itself: the enums (Cmd, Reg, Status, Error) with the comment
written beside each member in hdl/protocol.py as its description (continuation comment lines
included), the constants (SYNC, CHIP_ID, MAX_PAYLOAD, FRAME_TIMEOUT_CYCLES, the STATUS and CTRL
bits, WRITABLE_REGS) and the CRC's parameters from its amaranth.lib.crc algorithm. A register's
access (RO / W / RW) is the prefix of its comment, checked against WRITABLE_REGS. The C header
also carries the chip's own values for one config (geometry word, tiles, requantiser word).
"""

from __future__ import annotations

import enum
import inspect
import re
from typing import Any

from xbarflow.hdl import protocol
from ..core.config import ChipConfig
from ..core.errors import XbarflowError

__all__ = ["ProtocolDocError", "c_header", "markdown", "protocol_map", "requant_word"]

_MEMBER = re.compile(r"^\s+([A-Z][A-Z0-9_]*)\s*=\s*[^#]*?(?:#\s?(.*))?$")
_CONTINUATION = re.compile(r"^\s+#\s?(.*)$")
_STATUS_BITS = ("STATUS_BUSY", "STATUS_DONE", "STATUS_IRQ", "STATUS_PROG_BUSY", "STATUS_WRITE_OK")
_CTRL_BITS = ("CTRL_START", "CTRL_CLEAR_ERRORS")
_CONSTANTS = ("SYNC", "CHIP_ID", "MAX_PAYLOAD", "FRAME_TIMEOUT_CYCLES", "REQUEST_HEADER_BYTES",
              "RESPONSE_HEADER_BYTES", "NUM_REGS")


class ProtocolDocError(XbarflowError):
    """hdl/protocol.py says two different things (e.g. a writable register documented RO)."""


def _comments(cls: type[enum.Enum]) -> dict[str, str]:
    """Member name -> the comment beside it (and the comment lines under it) in the source."""
    out: dict[str, str] = {}
    current = None
    for line in inspect.getsource(cls).splitlines()[1:]:
        member = _MEMBER.match(line)
        if member and member.group(1) in cls.__members__:
            current = member.group(1)
            out[current] = (member.group(2) or "").strip()
            continue
        more = _CONTINUATION.match(line)
        if more and current is not None:
            out[current] = f"{out[current]} {more.group(1).strip()}".strip()
        elif line.strip():
            current = None
    return out


def _members(cls: type[enum.IntEnum]) -> list[dict[str, Any]]:
    notes = _comments(cls)
    return [{"name": m.name, "value": int(m.value), "description": notes.get(m.name, "")} for m in cls]


def protocol_map() -> dict[str, Any]:
    """The register map, command set, status and error codes, bits, constants and CRC."""
    registers = []
    for entry in _members(protocol.Reg):
        access = re.match(r"(RO|RW|W)\b", entry["description"])
        kind = access.group(1) if access else "RO"
        writable = protocol.Reg[entry["name"]] in protocol.WRITABLE_REGS
        if writable != (kind in ("W", "RW")):
            raise ProtocolDocError(f"hdl/protocol.py: register {entry['name']} is documented {kind} "
                                   f"but is {'' if writable else 'not '}in WRITABLE_REGS")
        registers.append({"name": entry["name"], "address": entry["value"], "access": kind,
                          "description": entry["description"]})
    alg = protocol.CRC.algorithm
    return {
        "source": "hdl/protocol.py",
        "request_frame": "SYNC CMD ADDR_HI ADDR_LO LEN payload[LEN] CRC",
        "response_frame": "SYNC STATUS LEN payload[LEN] CRC",
        "crc": {"name": "CRC-8/AUTOSAR", "width": alg.crc_width, "polynomial": alg.polynomial,
                "initial": alg.initial_crc, "reflect_input": alg.reflect_input,
                "reflect_output": alg.reflect_output, "xor_output": alg.xor_output,
                "over": "every byte after SYNC and before CRC",
                "check_123456789": protocol.crc8(b"123456789")},
        "constants": {name: int(getattr(protocol, name)) for name in _CONSTANTS},
        "commands": _members(protocol.Cmd),
        "statuses": _members(protocol.Status),
        "errors": _members(protocol.Error),
        "registers": registers,
        "status_bits": {name: int(getattr(protocol, name)) for name in _STATUS_BITS},
        "ctrl_bits": {name: int(getattr(protocol, name)) for name in _CTRL_BITS},
    }


def requant_word(requant_mult: tuple[int, ...] | list[int]) -> int:
    """REQUANT_MULT register value: hidden layer l's multiplier at bits [8l, 8l + 8)."""
    return sum(int(m) << (8 * layer) for layer, m in enumerate(requant_mult))


def _c_comment(text: str) -> str:
    return text.replace("*/", "* /")


def c_header(cfg: ChipConfig, requant_mult: tuple[int, ...] | list[int] = ()) -> str:
    """xbarflow.h: the protocol (frames, commands, registers, bits, CRC-8 routine) and this chip's
    geometry, in C (also valid C++)."""
    pm = protocol_map()
    lines = [
        "/* xbarflow host protocol and chip constants: generated from hdl/protocol.py by",
        f" * `xbarflow export` for config {cfg.name} ({cfg.digest()}). Do not edit. */",
        "#ifndef XBARFLOW_H", "#define XBARFLOW_H", "", "#include <stddef.h>", "#include <stdint.h>", "",
        f"/* request: {pm['request_frame']}; response: {pm['response_frame']} */",
    ]
    for name, value in pm["constants"].items():
        lines.append(f"#define XBF_{name} 0x{value:X}u")
    for group, prefix in (("commands", "CMD"), ("statuses", "RESP"), ("errors", "ERR")):
        lines.append("")
        for m in pm[group]:
            note = f"  /* {_c_comment(m['description'])} */" if m["description"] else ""
            lines.append(f"#define XBF_{prefix}_{m['name']} 0x{m['value']:02X}u{note}")
    lines.append("")
    for r in pm["registers"]:
        lines.append(f"#define XBF_REG_{r['name']} {r['address']}u  /* {_c_comment(r['description'])} */")
    lines.append("")
    for name, value in {**pm["status_bits"], **pm["ctrl_bits"]}.items():
        lines.append(f"#define XBF_{name} 0x{value:02X}u")
    crc = pm["crc"]
    lines += [
        "", f"/* {crc['name']}: poly 0x{crc['polynomial']:02X}, init 0x{crc['initial']:02X}, "
        f"xorout 0x{crc['xor_output']:02X}, not reflected; over {crc['over']} */",
        f"#define XBF_CRC8_CHECK 0x{crc['check_123456789']:02X}u  /* of the ASCII bytes \"123456789\" */",
        "static inline uint8_t xbf_crc8(const uint8_t *data, size_t len)", "{",
        f"    uint8_t crc = 0x{crc['initial']:02X}u;",
        "    for (size_t i = 0; i < len; i++) {",
        "        crc = (uint8_t)(crc ^ data[i]);",
        "        for (int bit = 0; bit < 8; bit++)",
        f"            crc = (uint8_t)((crc & 0x80u) ? ((crc << 1) ^ 0x{crc['polynomial']:02X}u) : (crc << 1));",
        "    }",
        f"    return (uint8_t)(crc ^ 0x{crc['xor_output']:02X}u);", "}", "",
        f"/* this chip: config {cfg.name} */",
        f'#define XBF_CONFIG_DIGEST "{cfg.digest()}"',
        f"#define XBF_CHIP_INPUTS {cfg.rows}u",
        f"#define XBF_CHIP_OUTPUTS {cfg.outputs}u",
        f"#define XBF_CHIP_DAC_BITS {cfg.quant.dac_bits}u",
        f"#define XBF_CHIP_ADC_BITS {cfg.adc.bits}u",
        f"#define XBF_CHIP_INPUT_BYTES {cfg.input_bytes}u  /* DAC codes packed LSB first */",
        f"#define XBF_CHIP_GEOMETRY 0x{protocol.geometry_word(cfg):08X}u  /* expected XBF_REG_GEOMETRY */",
        f"#define XBF_CHIP_TILES {len(cfg.tiles)}u",
        f"#define XBF_CHIP_TILE_ROWS {cfg.crossbar.tile_rows}u",
        f"#define XBF_CHIP_TILE_COLS {cfg.crossbar.tile_cols}u",
        f"#define XBF_CHIP_PARTITIONS {cfg.crossbar.partitions}u",
        f"#define XBF_CHIP_TARGET_BYTES {cfg.target_bytes}u  /* WRITE_TARGETS: row * TILE_COLS + col */",
        f"#define XBF_CHIP_WEIGHT_LEVELS {cfg.quant.weight_levels}u",
        f"#define XBF_CHIP_REQUANT_SHIFT {cfg.network.requant_shift}u",
        f"#define XBF_CHIP_REQUANT_MULT 0x{requant_word(requant_mult):08X}u  /* write to XBF_REG_REQUANT_MULT */",
        "", "#endif /* XBARFLOW_H */", ""]
    return "\n".join(lines)


def _md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    esc = [[str(c).replace("|", "\\|") for c in row] for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in esc]


def markdown() -> str:
    """protocol.md: the same map as a page for people."""
    pm = protocol_map()
    crc = pm["crc"]
    lines = ["# xbarflow host protocol", "",
             "Generated from `hdl/protocol.py` by `xbarflow export`; do not edit.", "",
             f"Request (host -> chip): `{pm['request_frame']}`  ", f"Response (chip -> host): `{pm['response_frame']}`",
             "", f"CRC: {crc['name']} (polynomial 0x{crc['polynomial']:02X}, initial 0x{crc['initial']:02X}, "
             f"final XOR 0x{crc['xor_output']:02X}, not reflected) over {crc['over']}; "
             f"CRC of `123456789` = 0x{crc['check_123456789']:02X}.", "", "## Constants", ""]
    lines += _md_table(["name", "value"], [[k, f"0x{v:X}"] for k, v in pm["constants"].items()])
    for title, key in (("Commands", "commands"), ("Response status", "statuses"), ("NACK error codes", "errors")):
        lines += ["", f"## {title}", ""]
        lines += _md_table(["name", "code", "description"],
                           [[m["name"], f"0x{m['value']:02X}", m["description"]] for m in pm[key]])
    lines += ["", "## Registers (32 bit, READ_REG / WRITE_REG)", ""]
    lines += _md_table(["address", "name", "access", "description"],
                       [[r["address"], r["name"], r["access"], r["description"]] for r in pm["registers"]])
    lines += ["", "## STATUS and CTRL bits", ""]
    lines += _md_table(["name", "mask"], [[k, f"0x{v:02X}"] for k, v in {**pm["status_bits"], **pm["ctrl_bits"]}.items()])
    return "\n".join(lines) + "\n"
