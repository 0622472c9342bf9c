"""FST waves: `sim --waves fst` (Verilator) and `xbarflow waves` on the FST.

One sharded run of two test images dumps the first image as FST, and the same command with
`--waves` (VCD) reuses the shards and dumps it as VCD. The FST is checked against what the chip
was given (one vmm_done pulse, the DAC bus equal to the image's packed codes, the SPI frames
with good CRCs), and every query of `xbarflow waves` answers the same on the FST as on the VCD.
"""

import json

import pytest

from xbarflow.flow.cli import main
from xbarflow.flow.data import pack_codes, to_dac_codes
from xbarflow.flow.analysis.waves.reader import Vcd, to_int
from xbarflow.flow.analysis.waves.session import Waves, read_gtkw
from xbarflow.hdl import protocol
from xbarflow.hdl.protocol import Cmd, Reg

QUERIES = [
    ["--list"],
    ["-s", "vmm_done", "controller.ctrl_state", "adc_codes"],
    ["-s", "dac_codes", "--cycles", "10:400", "--every-cycle", "--wide"],
    ["--fsm"],
    ["--spi", "--bytes"],
    ["--when", "ctrl_state == CONVERT", "--all"],
    ["-s", "spi_*", "--start", "80us", "--end", "90us"],
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim-waves")
    common = ["sim", "--sim", "verilator", "--images", "2", "--jobs", "1", "--out", str(out)]
    assert main([*common, "--waves", "fst"]) == 0
    fst = json.loads((out / "report.json").read_text())["waves"]
    assert main([*common, "--waves"]) == 0          # bare --waves: VCD, shards reused
    report = json.loads((out / "report.json").read_text())
    assert report["shards_reused"] == report["shards"]
    return {"fst": out / "waves" / "waves-verilator.fst", "vcd": out / "waves" / "waves-verilator.vcd",
            "reported": (fst, report["waves"])}


def test_sim_writes_fst_and_vcd(pair):
    assert pair["reported"] == (str(pair["fst"]), str(pair["vcd"]))
    head = pair["fst"].read_bytes()[:1]
    assert head == b"\x00", "an FST file starts with its header block (type 0)"
    assert Vcd(pair["fst"]).format == "fst" and Vcd(pair["vcd"]).format == "vcd"
    assert pair["fst"].stat().st_size < pair["vcd"].stat().st_size / 5, "FST is compact"


def test_fst_shows_what_the_chip_was_given(cfg, dataset, pair):
    w = Waves(pair["fst"])
    names = {p: w.vcd.match(p)[0] for p in ("vmm_start", "vmm_done", "dac_codes")}
    tr = w.vcd.load(names.values())
    assert len(tr[names["vmm_done"]].rising_edges()) == 1, "one image, one tile: one VMM"
    start = tr[names["vmm_start"]].rising_edges()[0]
    codes = to_dac_codes(dataset.x_test[:1], cfg)[0]
    assert tr[names["dac_codes"]].at(start) == int.from_bytes(pack_codes(codes, cfg.quant.dac_bits), "little")
    requests = w.spi().requests()
    assert requests[0].raw == protocol.encode_request(Cmd.READ_REG, Reg.ID)
    assert all(f.complete and f.crc_ok for f in requests)
    ctrl = w.vcd.match("controller.ctrl_state")[0]
    seen = {w.fsms[ctrl].get(v) for v in map(to_int, w.vcd.trace(ctrl).values)}
    assert {"IDLE", "LOAD", "DRIVE", "CONVERT", "ARGMAX", "DONE"} <= seen


@pytest.mark.parametrize("query", QUERIES, ids=[" ".join(q) for q in QUERIES])
def test_every_query_answers_the_same_on_fst_and_vcd(pair, query, capsys):
    answers = []
    for kind in ("vcd", "fst"):
        assert main(["waves", str(pair[kind]), *query]) == 0
        answers.append(capsys.readouterr().out)
    assert answers[0] == answers[1] and answers[0].strip()


def test_gtkw_from_fst(pair, tmp_path):
    saves = {}
    for kind in ("vcd", "fst"):
        out = tmp_path / f"{kind}.gtkw"
        assert main(["waves", str(pair[kind]), "--gtkw", str(out)]) == 0
        saves[kind] = read_gtkw(out)
    (dump_fst, groups_fst, filters_fst), (dump_vcd, groups_vcd, filters_vcd) = saves["fst"], saves["vcd"]
    assert dump_fst == str(pair["fst"].resolve()) and dump_vcd == str(pair["vcd"].resolve())
    assert groups_fst == groups_vcd and groups_fst["controller"]
    assert set(filters_fst) == set(filters_vcd) and filters_fst


def test_fst_needs_verilator(capsys):
    assert main(["demo", "--sim", "icarus", "--waves", "fst", "--images", "1"]) == 2
    err = capsys.readouterr().err
    assert "FST waves come from Verilator" in err and err.count("\n") == 1
