"""`xbarflow waves` on real co-simulation VCDs (Icarus and Verilator), and on synthetic ones.

Each simulator co-simulates two test images with waves (xbarflow.flow.sim.runner.build(..., waves=True) and
xbarflow.flow.sim.runner.run); the checks compare what the VCD shows with what the bench drove and the host
sent: vmm_done pulses, the DAC bus against the packed codes of each image, the ADC bus against
the co-simulation's codes, the decoded SPI frames against the frames re-encoded with
xbarflow.hdl.protocol, FSM state names, the controller's phase lengths, and the GTKWave save file.
"""

import ast
import importlib
import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest

from xbarflow.analog_models.adc import code_range
from xbarflow.flow.cli import main
from xbarflow.flow.data import pack_codes, to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.host.driver import decode_outputs
from xbarflow.flow.sim.runner import build, run
from xbarflow.flow.analysis import waves as waves_package
from xbarflow.flow.analysis.waves.errors import WavesError
from xbarflow.flow.analysis.waves.links import TimedByte, decode_uart, parse_frames
from xbarflow.flow.analysis.waves.reader import Vcd, shortest, to_int
from xbarflow.flow.analysis.waves.scan import ScannedVcd
from xbarflow.flow.analysis.waves.session import Waves, read_gtkw
from xbarflow.hdl import protocol
from xbarflow.hdl.protocol import Cmd, Reg

IMAGES = 2


@pytest.fixture(scope="module", params=["icarus", "verilator"])
def cosim(request, cfg, dataset, weights, tmp_path_factory):
    sim = request.param
    chip = GoldenChip.from_weights(cfg, weights)
    indices = np.array([3, 17])
    out = tmp_path_factory.mktemp(f"waves-{sim}")
    result = run(build(cfg, sim, waves=True), chip.array.conductance, dataset.x_test[indices],
                 dataset.y_test[indices], indices, out, cycles_every_image=True,
                 timeout_s=600)
    assert result.waves is not None and result.waves.is_file(), "the co-simulation wrote a VCD"
    codes = to_dac_codes(dataset.x_test[indices], cfg)
    return {"sim": sim, "result": result, "codes": codes, "vcd": result.waves, "out": out}


def _expected_requests(cfg, codes):
    """The bench's frames: READ_REG ID; per image WRITE_BUF, START, READ_RESULT polls (one
    entry here: repeats are collapsed), READ_BUF of the outputs, the four cycle counters."""
    frames = [protocol.encode_request(Cmd.READ_REG, Reg.ID)]
    for c in codes:
        packed = pack_codes(c, cfg.quant.dac_bits)
        for start in range(0, len(packed), protocol.MAX_PAYLOAD):
            frames.append(protocol.encode_request(Cmd.WRITE_BUF, start, packed[start:start + protocol.MAX_PAYLOAD]))
        frames.append(protocol.encode_request(Cmd.START))
        frames.append(protocol.encode_request(Cmd.READ_RESULT))
        frames.append(protocol.encode_request(Cmd.READ_BUF, 0, bytes([2 * cfg.outputs])))
        frames += [protocol.encode_request(Cmd.READ_REG, r) for r in
                   (Reg.CYCLES_TOTAL, Reg.CYCLES_DRIVE, Reg.CYCLES_CONVERT, Reg.CYCLES_ARGMAX)]
    return frames


def test_sidecar_found_through_the_run_folder(cosim):
    w = Waves(cosim["vcd"])
    assert w.sidecar_path is not None and w.sidecar_path.name == "xbarflow_top.json"
    assert set(w.fsms[w.vcd.match("controller.ctrl_state")[0]].values()) >= {
        "IDLE", "LOAD", "DRIVE", "CONVERT", "ARGMAX", "DONE"}


def test_vmm_done_pulses_and_buses_match_the_bench(cfg, cosim):
    w = Waves(cosim["vcd"])
    names = {p: w.vcd.match(p)[0] for p in ("clk", "vmm_start", "vmm_done", "dac_codes",
                                            "adc_valid", "adc_codes")}
    tr = w.vcd.load(names.values())
    period = w.clock_period()
    assert period == round(1 / cfg.clock.freq_hz / w.vcd.timescale_s)
    done_rises, done_falls = tr[names["vmm_done"]].rising_edges(), tr[names["vmm_done"]].falling_edges()
    assert len(done_rises) == IMAGES, "one vmm_done pulse per image"
    assert [b - a for a, b in zip(done_rises, done_falls)] == [period] * IMAGES, "one clock wide"
    starts = tr[names["vmm_start"]].rising_edges()
    valids = tr[names["adc_valid"]].rising_edges()
    assert len(starts) == len(valids) == IMAGES
    result = cosim["result"]
    lo, _ = code_range(cfg.adc.bits)
    for k in range(IMAGES):
        want_dac = int.from_bytes(pack_codes(cosim["codes"][k], cfg.quant.dac_bits), "little")
        assert tr[names["dac_codes"]].at(starts[k]) == want_dac, f"DAC bus of image {k}"
        assert starts[k] < done_rises[k] < valids[k]
        adc = tr[names["adc_codes"]].at(valids[k])
        fields = [(adc >> (j * cfg.adc.bits)) & ((1 << cfg.adc.bits) - 1) for j in range(cfg.outputs)]
        signed = [f - (1 << cfg.adc.bits) if f >= -lo else f for f in fields]
        assert signed == result.bridge_adc_codes[k].tolist(), f"ADC bus of image {k}"


def test_spi_frames_equal_what_the_host_sent(cfg, cosim):
    w = Waves(cosim["vcd"])
    traffic = w.spi()
    requests, responses = traffic.requests(), traffic.responses()
    assert all(f.complete and f.crc_ok for f in traffic.frames)
    collapsed = [k for k, _ in itertools.groupby(f.raw for f in requests)]
    assert collapsed == _expected_requests(cfg, cosim["codes"])
    assert len(responses) == len(requests), "one response per request"
    assert all(r.raw[1] == protocol.Status.ACK for r in responses)
    assert traffic.windows == len(requests), "one chip-select window per exchange"
    # the class in the last READ_RESULT answer of each image and the codes read back
    result = cosim["result"]
    pairs = list(zip(requests, responses))
    finals = [resp for (req, resp), (nxt, _) in zip(pairs, pairs[1:])
              if req.code == Cmd.READ_RESULT and nxt.code != Cmd.READ_RESULT]
    assert [f.payload[1] for f in finals] == result.classes.tolist()
    assert all(f.payload[0] & protocol.STATUS_DONE for f in finals)
    reads = [resp for req, resp in pairs if req.code == Cmd.READ_BUF]
    assert [decode_outputs(r.payload) for r in reads] == result.sums.tolist()
    # the response frames decode with xbarflow.hdl.protocol's own parser
    assert all(protocol.decode_response(r.raw).ok for r in responses)


def test_controller_phases_match_the_cycle_counters(cfg, cosim):
    w = Waves(cosim["vcd"])
    state = w.vcd.match("controller.ctrl_state")[0]
    tr = w.vcd.load([state, w.clock_name])
    edges = tr[w.clock_name].rising_edges()
    names = w.fsms[state]
    counts = {s: 0 for s in names.values()}
    for t in edges:   # a flop samples the state just before each rising edge
        v = tr[state].at(t, before=True)
        if v is not None:
            counts[names[v]] += 1
    cycles = cosim["result"].cycles
    assert counts["DRIVE"] == IMAGES * int(cycles["drive"][0])
    assert counts["CONVERT"] == IMAGES * int(cycles["convert"][0])
    assert counts["ARGMAX"] == IMAGES * int(cycles["argmax"][0])
    busy = sum(v for s, v in counts.items() if s != "IDLE")
    assert busy == int(cycles["total"].sum())


def test_when_finds_conditions(cosim):
    w = Waves(cosim["vcd"])
    done = w.vcd.trace(w.vcd.match("vmm_done")[0]).rising_edges()
    t0, t1 = w.window()
    hits = w.when("vmm_done == 1", t0, t1)
    assert [a for a, _ in hits] == done
    drive = w.when("ctrl_state == DRIVE and not vmm_start", t0, t1)
    assert len(drive) == IMAGES and all(a < d < b for (a, b), d in zip(drive, done))
    # "next": start the window after the first hit
    assert w.when("vmm_done == 1", hits[0][1], t1)[0][0] == done[1]
    assert w.when("vmm_done == 1 and adc_valid == 1", t0, t1) == []
    assert w.when("controller.ctrl_state > 3 or irq", t0, t1)
    for bad in ("vmm_done ==", "vmm_done = 1", "nosuchsignal == 1", "ctrl_state == NOSUCHSTATE",
                "(vmm_done == 1", "vmm_* == 1"):
        with pytest.raises(WavesError):
            w.when(bad, t0, t1)


def test_table_shows_state_names_and_cycles(cosim):
    w = Waves(cosim["vcd"])
    t0, t1 = w.window()
    first = w.when("ctrl_state == LOAD", t0, t1)[0][0]
    cyc = w.cycle_of(first, w.clock_edges())
    lines = w.table(["ctrl_state", "vmm_start", "vmm_done"], *w.window(cycles=f"{cyc}:{cyc + 8}"),
                    every_cycle=True)
    assert "controller.ctrl_state" in lines[0]
    body = "\n".join(lines[1:])
    for state in ("LOAD", "DRIVE", "CONVERT"):
        assert state in body
    assert len(lines) == 1 + 9


def test_gtkw_names_only_existing_signals(cosim, tmp_path):
    w = Waves(cosim["vcd"])
    path, filters = w.write_gtkw(tmp_path / "view.gtkw")
    dumpfile, groups, filter_of = read_gtkw(path)
    assert dumpfile == str(cosim["vcd"].resolve())
    assert list(groups) == ["host", "command layer", "controller", "analog boundary"]
    named = [n for g in groups.values() for n in g]
    assert named and all(n in w.vcd.signals for n in named)
    assert {"xbarflow_top.spi_sclk", "xbarflow_top.controller.ctrl_state",
            "xbarflow_top.dac_codes", "xbarflow_top.vmm_done"} <= set(named)
    ctrl = filter_of["xbarflow_top.controller.ctrl_state"]
    text = open(ctrl).read()
    assert "2 DRIVE" in text.splitlines() and len(filters) == len(w.fsms)


def test_reader_equals_the_old_scanner_and_vcdvcd(cosim):
    """pywellen's value changes are the hand-written scanner's and vcdvcd's, value for value
    (those keep the digits as the file writes them: Verilator full width, Icarus shortest)."""
    vcd = Vcd(cosim["vcd"])
    names = vcd.resolve(["clk", "dac_codes", "adc_codes", "spi_*", "controller.ctrl_state"])
    new = vcd.load(names)
    old = ScannedVcd(cosim["vcd"])
    assert set(old.signals) - set(vcd.signals) <= {n for n in old.signals if "[-" in n}
    for engine in ("scan", "vcdvcd"):
        ref = old.uncached().load(names, engine=engine)
        for n in names:
            assert new[n].times == ref[n].times, (engine, n)
            assert new[n].values == [shortest(v) for v in ref[n].values], (engine, n)
            assert [to_int(v) for v in new[n].values] == [to_int(v) for v in ref[n].values]


def test_shortest_is_how_vcd_shortens_a_value():
    # IEEE 1364 18.2.1: a value is left-extended with 0 (leading 0 or 1), x or z
    assert [shortest(v) for v in ("00101", "0", "1", "xxxx", "ZZ", "00x1", "0x1", "x01", "1100")] \
        == ["101", "0", "1", "x", "z", "0x1", "0x1", "x01", "1100"]


def test_cli_on_the_cosim_vcd(cosim, tmp_path, capsys):
    vcd = str(cosim["vcd"])
    assert main(["waves", vcd, "--spi"]) == 0
    out = capsys.readouterr().out
    assert "READ_REG ID  crc ok" in out and "WRITE_BUF addr=0x0000 len=98" in out and "CRC BAD" not in out
    assert main(["waves", vcd, "--when", "vmm_done == 1", "--all"]) == 0
    assert capsys.readouterr().out.count("holds at") == IMAGES
    assert main(["waves", vcd, "--fsm"]) == 0
    assert "DRIVE" in capsys.readouterr().out
    assert main(["waves", vcd, "--list"]) == 0
    assert "FSM: IDLE, LOAD, DRIVE" in capsys.readouterr().out
    assert main(["waves", vcd, "-s", "vmm_*", "--cycles", "0:50"]) == 0
    assert "vmm_done" in capsys.readouterr().out
    assert main(["waves", vcd, "--gtkw", str(tmp_path / "a.gtkw")]) == 0
    assert (tmp_path / "a.gtkw").is_file()
    # without a sidecar next to it, FSM registers show codes; --sidecar brings the names back
    lone = tmp_path / "lone.vcd"
    shutil.copy(vcd, lone)
    assert Waves(lone).fsms == {}
    sidecar = Waves(vcd).sidecar_path
    assert Waves(lone, sidecar=sidecar).fsms


@pytest.mark.parametrize("argv, needle", [
    (["waves", "/no/such.vcd"], "VCD file not found"),
    (["waves", "{vcd}", "-s", "nosuch*"], "no signal matches"),
    (["waves", "{vcd}", "--when", "vmm_done =="], "bad expression"),
    (["waves", "{vcd}", "--start", "10 parsecs", "-s", "clk"], "bad time"),
    (["waves", "{vcd}", "--cycles", "9:2", "-s", "clk"], "cycle range"),
    (["waves", "{vcd}", "--uart"], "no UART pins"),
    (["waves", "{vcd}", "--sidecar", "/no/side.json"], "sidecar not found"),
])
def test_usage_errors(cosim, argv, needle, capsys):
    argv = [a.replace("{vcd}", str(cosim["vcd"])) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err


# -- synthetic VCDs: UART decoding, frame parsing edge cases -------------------------------------

def _uart_vcd(path, divider, period_ps, rx_bytes, tx_bytes, bad_stop_at=None):
    """A VCD with clk, uart_rx and uart_tx carrying 8N1 bytes (LSB first)."""
    bit = divider * period_ps
    def waveform(data, gap_bits):
        t, changes = 5 * bit, []
        for k, b in enumerate(data):
            bits = [0] + [(b >> i) & 1 for i in range(8)] + [0 if k == bad_stop_at else 1]
            for v in bits:
                changes.append((t, v))
                t += bit
            changes.append((t, 1))
            t += gap_bits * bit
        return changes
    events = {}
    for ident, data, gap in (("!", rx_bytes, 1), ('"', tx_bytes, 3)):
        for t, v in waveform(data, gap):
            events.setdefault(t, []).append(f"{v}{ident}")
    end = max(events) + 4 * bit
    for k in range(0, end // (period_ps // 2) + 1):
        events.setdefault(k * (period_ps // 2), []).append(f"{k % 2 == 0 and 1 or 0}#")
    lines = ["$timescale 1ps $end", "$scope module xbarflow_top $end",
             "$var wire 1 # clk $end", "$var wire 1 ! uart_rx $end", '$var wire 1 " uart_tx $end',
             "$upscope $end", "$enddefinitions $end", "#0", "$dumpvars", "1!", '1"', "0#", "$end"]
    for t in sorted(events):
        lines.append(f"#{t}")
        lines += events[t]
    path.write_text("\n".join(lines) + "\n")


def test_uart_decoding_from_pins(cfg, tmp_path):
    rx = (protocol.encode_request(Cmd.READ_REG, Reg.ID) + b"\x00\x13"
          + protocol.encode_request(Cmd.WRITE_BUF, 2, bytes(range(7))))
    bad = bytearray(protocol.encode_request(Cmd.START))
    bad[-1] ^= 0xFF                     # a corrupted CRC
    rx += bytes(bad)
    tx = protocol.encode_response(protocol.Status.ACK, protocol.CHIP_ID.to_bytes(4, "big"))
    vcd = tmp_path / "uart.vcd"
    period_ps = round(1e12 / cfg.clock.freq_hz)
    _uart_vcd(vcd, cfg.host.uart_divider, period_ps, rx, tx)
    w = Waves(vcd, config_path=None)
    assert w.clock_period() == period_ps
    traffic = w.uart()
    assert bytes(b.value for b in traffic.bytes["request"]) == rx
    assert bytes(b.value for b in traffic.bytes["response"]) == tx
    req = traffic.requests()
    assert [f.raw for f in req] == [protocol.encode_request(Cmd.READ_REG, Reg.ID),
                                    protocol.encode_request(Cmd.WRITE_BUF, 2, bytes(range(7))),
                                    bytes(bad)]
    assert [f.crc_ok for f in req] == [True, True, False]
    assert "CRC BAD" in req[2].describe() and req[0].describe().startswith("READ_REG ID")
    (resp,) = traffic.responses()
    assert resp.crc_ok and resp.payload == protocol.CHIP_ID.to_bytes(4, "big")
    assert traffic.framing_errors == 0


def test_uart_frames_of_a_cosimulation_equal_what_the_host_sent(cfg, dataset, weights, tmp_path):
    """A co-simulated UART chip: every request the bench sent decodes from uart_rx, the first
    one included (the host's line idles high from reset, as a real UART's does)."""
    ucfg = cfg.replace(**{"host.interface": "uart"})
    chip = GoldenChip.from_weights(ucfg, weights)
    indices = np.array([3])
    result = run(build(ucfg, "icarus", waves=True), chip.array.conductance, dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, cycles_every_image=True, timeout_s=600)
    traffic = Waves(result.waves).uart()
    requests, responses = traffic.requests(), traffic.responses()
    assert traffic.framing_errors == 0
    assert all(f.complete and f.crc_ok for f in traffic.frames)
    collapsed = [k for k, _ in itertools.groupby(f.raw for f in requests)]
    assert collapsed == _expected_requests(ucfg, to_dac_codes(dataset.x_test[indices], ucfg))
    assert len(responses) == len(requests)
    assert all(r.raw[1] == protocol.Status.ACK for r in responses)


def test_uart_framing_error_is_reported(cfg, tmp_path):
    vcd = tmp_path / "frame.vcd"
    period_ps = round(1e12 / cfg.clock.freq_hz)
    _uart_vcd(vcd, cfg.host.uart_divider, period_ps, b"\xa5\x42\x17", b"", bad_stop_at=1)
    w = Waves(vcd)
    line = w.vcd.trace(w.vcd.match("uart_rx")[0])
    data = decode_uart(line, cfg.host.uart_divider * period_ps)
    assert [b.value for b in data] == [0xA5, 0x42, 0x17]
    assert [b.error for b in data] == [False, True, False]
    assert w.uart().framing_errors == 1


def test_frame_parser_hunts_sync_and_flags_truncation():
    good = protocol.encode_request(Cmd.READ_REG, Reg.RESULT)
    stream = b"\x00\x00" + good + b"\x00" + good[:4]
    frames = parse_frames([TimedByte(k, b) for k, b in enumerate(stream)], "request", "spi")
    assert [f.raw for f in frames] == [good, good[:4]]
    assert frames[0].crc_ok and frames[0].time == 2
    assert not frames[1].complete and "incomplete" in frames[1].describe()


def test_not_a_vcd(tmp_path):
    junk = tmp_path / "junk.vcd"
    junk.write_text("hello\n")
    with pytest.raises(WavesError, match="not a VCD"):
        Vcd(junk)


# -- the package's structure: one concept per module, imports only downward ----------------------

#: the sibling modules each xbarflow.flow.analysis.waves module may import; anything else is an upward import
WAVES_LAYERS = {
    "errors": set(),
    "format": set(),
    "reader": {"errors"},
    "scan": {"errors", "reader"},
    "sidecar": {"errors"},
    "links": {"format", "reader"},
    "expressions": {"errors", "reader"},
    "session": {"errors", "format", "reader", "sidecar", "links", "expressions"},
}
WAVES_DIR = Path(waves_package.__file__).parent
WAVES_PACKAGE = waves_package.__name__.split(".")


def _waves_imports(tree: ast.Module) -> list[tuple[str, str]]:
    """(sibling module, imported name) of every import of xbarflow.flow.analysis.waves in a module of it, also
    those inside functions; importing the package itself is the sibling '__init__'."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = (node.module or "").split(".")
            if node.level == 1:
                parts = base if node.module else []
            elif node.level == 0 and base[:4] == WAVES_PACKAGE:
                parts = base[4:]
            else:
                continue
            for alias in node.names:
                # `from . import x` / `from xbarflow.flow.analysis.waves import x`: x is a module or a re-export
                target = parts[0] if parts else alias.name
                if not parts and f"{target}.py" not in {p.name for p in WAVES_DIR.iterdir()}:
                    target = "__init__"
                found.append((target, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[:4] == WAVES_PACKAGE:
                    found.append((parts[4] if len(parts) > 4 else "__init__", alias.name))
    return found


def test_waves_modules_import_only_downward():
    modules = {p.stem for p in WAVES_DIR.glob("*.py")} - {"__init__"}
    assert modules == set(WAVES_LAYERS), "every module of xbarflow.flow.analysis.waves has a place in WAVES_LAYERS"
    for name in sorted(modules):
        tree = ast.parse((WAVES_DIR / f"{name}.py").read_text())
        for target, imported in _waves_imports(tree):
            assert target in WAVES_LAYERS[name], f"xbarflow.flow.analysis.waves.{name} imports {target} ({imported})"
            assert not imported.startswith("_"), f"xbarflow.flow.analysis.waves.{name} imports private {imported}"


def test_waves_modules_declare_purpose_and_public_names():
    for path in sorted(WAVES_DIR.glob("*.py")):
        module = importlib.import_module(f"xbarflow.flow.analysis.waves.{path.stem}" if path.stem != "__init__"
                                         else "xbarflow.flow.analysis.waves")
        assert (module.__doc__ or "").strip(), f"{path.name} says what it is for"
        assert module.__all__ and all(hasattr(module, n) for n in module.__all__), path.name
        assert not [n for n in module.__all__ if n.startswith("_")], path.name
    # the package re-exports each public name of its concepts (not the text helpers or the CLI)
    for name in set(WAVES_LAYERS) - {"format"}:
        module = importlib.import_module(f"xbarflow.flow.analysis.waves.{name}")
        for public in module.__all__:
            assert getattr(waves_package, public) is getattr(module, public), f"{name}.{public}"
            assert public in waves_package.__all__, f"xbarflow.flow.analysis.waves.__all__ lacks {public}"
