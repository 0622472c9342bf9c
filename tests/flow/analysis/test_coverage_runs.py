"""The coverage campaign (flow/analysis/coverage_runs.py): the ADC groups each tile converts,
the record of a campaign, and the analysis of runs into the summary, on a fabricated run (the
co-simulations themselves are `make coverage`)."""

import json

from xbarflow.cocotb_tests.coverage_monitor import exchange_key
from xbarflow.flow.analysis import coverage as cov
from xbarflow.flow.analysis import coverage_runs as runs
from xbarflow.flow.core import config as cfgmod

from .test_coverage import RUN_A, SOURCE


def test_design_tiles():
    # 196-256-10 on 128 x 128 tiles (64 differential outputs each), 16 shared ADCs per tile:
    # layer 1 is 2 x 4 tiles of 64 outputs (4 groups each), layer 2 is 2 tiles of 10 (1 group).
    mlp = runs.design_tiles(cfgmod.load(cfgmod.CONFIG_DIR / "mlp.toml"))
    assert sorted(g for _, g in mlp) == [1, 1] + [4] * 8
    assert [t for t, _ in mlp] == list(range(10))
    assert runs.design_tiles(cfgmod.load(cfgmod.CONFIG_DIR / "slp.toml")) == [(0, 1)]
    # one ADC per output (the binary MLP): every tile converts once
    assert {g for _, g in runs.design_tiles(cfgmod.load(cfgmod.CONFIG_DIR / "mlp_binary.toml"))} == {1}


def fabricated_run(tmp_path, cfg):
    folder = tmp_path / "slp-inference"
    folder.mkdir()
    cov.write_dat(RUN_A, folder / "coverage.dat")
    verilog = folder / "xbarflow_top.v"
    verilog.write_text("\n".join(SOURCE) + "\n")
    sidecar = folder / "xbarflow_top.json"
    sidecar.write_text(json.dumps({"fsms": {"top.f_state": {"0": "IDLE", "1": "RUN"}},
                                   "fsm_transitions": {"top.f_state": [["IDLE", "RUN"], ["RUN", "IDLE"]]}}))
    (folder / "fsm_samples.json").write_text(json.dumps({
        "states": {"top.f_state": {"IDLE": 2, "RUN": 1}},
        "transitions": {"top.f_state": {"IDLE->RUN": 1}},
        "exchanges": {"START ACK": 2, "READ_REG ACK": 1}, "adc_groups": {"0:0": 2}}))
    spec = next(s for s in runs.CAMPAIGN if s.name == "slp-inference")
    return runs.RunRecord(spec, cfg, folder, verilog, sidecar, "d1", 3.0, None, 2)


def test_analysis_of_a_run(cfg, tmp_path):
    record = fabricated_run(tmp_path, cfg)
    out = tmp_path / "out"
    text, open_items, unmet = runs.analyse_campaign([record], out, [])
    assert "| slp-spi | 100.0 % (1/1) | 50.0 % (1/2) | 0.0 % (0/2) |" in text
    assert "| slp-spi | top.f_state | 2/2 | 1/2 | none |" in text
    assert (out / "slp-spi" / "coverage.dat").exists()
    assert (out / "slp-spi" / "xbarflow_top.v.annotated").read_text().count("%000000") == 1
    # hit: 2 exchanges, the one tile group, "none (single layer)", spi
    bins = cov.FunctionalBins({"slp-spi": [(0, 1)]})
    try:
        total_bins = sum(len(b) for b in bins.bins.values())
    finally:
        bins.close()
    missing_bins = total_bins - 5
    assert open_items == 3 + 1 + missing_bins     # code points, RUN->IDLE, bins
    listed = (out / "open_items.txt").read_text().splitlines()
    assert len(listed) == open_items and "fsm_transition:slp-spi/top.f_state:RUN->IDLE\t" in listed
    assert "`fsm_transition` slp-spi/top.f_state" in text and "`RUN->IDLE`" in text
    waivers = [cov.Waiver("bin:*", "not in this fixture"), cov.Waiver("toggle:*:x:*", "constant")]
    text, open_items, unmet = runs.analyse_campaign([record], out, waivers)
    assert open_items == 2
    assert f"- `bin:*` ({missing_bins}): not in this fixture" in text

    path = runs.save_records([record], tmp_path / "campaign.json")
    (again,) = runs.load_records(path)
    assert (again.spec, again.folder, again.design, again.images) == (record.spec, record.folder, "d1", 2)
    assert again.cfg.digest() == cfg.digest()


def test_directed_items_get_the_nack_they_are_named_for(cfg):
    """Every directed frame, fed to the reference protocol model, is refused with the error of
    its kind and the READ_REG probe after it is served: together they hit every (command,
    NACK code) bin outside BUSY."""
    from xbarflow.flow.host.driver import ChipProtocolModel
    from xbarflow.hdl import protocol

    seen = set()
    items = runs.directed_items(cfg)
    cut = protocol.encode_request(protocol.Cmd.WRITE_REG, protocol.Reg.SCRATCH, bytes(4))
    tail = ["valid", "valid", "valid", "stall"] + ["cut"] * (len(cut) - 1)
    assert [it["kind"] for it in items[-len(tail):]] == tail, \
        "REQUANT_MULT twice, the register reads, a timeout, the cuts"
    ((_, data),) = items[-len(tail) + 2]["ops"]
    model = ChipProtocolModel.from_config(cfg)
    model.err_crc = 3
    replies = protocol.FrameSplitter("response").feed(model.feed(bytes.fromhex(data)))
    assert len(replies) == protocol.NUM_REGS + 6 and all(r[1] == protocol.Status.ACK for r in replies)
    assert replies[protocol.Reg.ERR_CRC][3:7] == (3).to_bytes(4, "big") and replies[-5][3:7] == bytes(4)
    for item in items[-len(cut) + 1:]:   # each cut frame is incomplete: no response
        ((_, data),) = item["ops"]
        assert ChipProtocolModel.from_config(cfg).feed(bytes.fromhex(data)) == b""
    for item in items[:-len(tail)]:
        model = ChipProtocolModel.from_config(cfg)
        ((_, data),) = item["ops"]
        got = protocol.FrameSplitter("response").feed(model.feed(bytes.fromhex(data)))
        assert len(got) == 2, item
        nack, probe = got
        assert nack[1] == protocol.Status.NACK and protocol.Error(nack[3]).name == item["kind"].upper()
        assert probe[1] == protocol.Status.ACK
        seen.add(exchange_key(bytes.fromhex(data), nack))
    wanted = {b for b in cov.legal_exchanges() if "NACK" in b and "BUSY" not in b}
    assert seen == wanted


def test_a_run_done_again_replaces_its_record_and_the_others_stay(cfg, tmp_path, monkeypatch):
    """`run_campaign(only=..., keep=...)` (`xbarflow coverage --only`): the kept records of other
    runs stay, the re-run one is replaced, all in CAMPAIGN order, and so is the saved record."""
    from types import SimpleNamespace

    old = fabricated_run(tmp_path, cfg)
    verilog = tmp_path / "v.v"
    verilog.write_text("module m; endmodule\n")
    fake_build = SimpleNamespace(rtl=SimpleNamespace(verilog=verilog, sidecar=old.sidecar))
    monkeypatch.setattr(runs, "_one", lambda spec, *a: (cfg, fake_build, None, 7))
    first, last = runs.CAMPAIGN[0].name, runs.CAMPAIGN[-1].name
    kept_last = runs.RunRecord(runs.CAMPAIGN[-1], cfg, tmp_path, verilog, old.sidecar, "d2", 1.0)
    records = runs.run_campaign(None, tmp_path / "out", only=(first,), keep=[kept_last, old],
                                record=tmp_path / "campaign.json")
    assert [r.spec.name for r in records] == [first, last]
    assert records[0].images == 7 and records[0] is not old, "the re-run replaced the old record"
    assert [r.spec.name for r in runs.load_records(tmp_path / "campaign.json")] == [first, last]


def test_counter_items_count_each_event_past_bit_10_then_clear(cfg):
    """The counters run's items through the reference protocol model (chip-select raised after
    each item, as the SPI bench does): ERR_CRC, ERR_CMD, ERR_LEN, ERR_TIMEOUT and INFERENCES
    each reach COUNTED_EVENTS > 2^10 (bit 10 set), FRAMES_OK more; the last item's clear
    brings the error counters back to 0 and its READ_REG reads ERR_CRC = 0."""
    from xbarflow.flow.host.driver import ChipProtocolModel
    from xbarflow.hdl import protocol

    n = runs.COUNTED_EVENTS
    assert n > 1 << 10
    items = runs.counter_items(cfg)
    model = ChipProtocolModel.from_config(cfg)
    for item in items[:-1]:
        for op in item["ops"]:
            if op[0] == "stall":
                model.drop_partial()   # the frame timeout, as the bench models it
            else:
                model.feed(bytes.fromhex(op[1]))
        model.drop_partial()
    assert (model.err_crc, model.err_cmd, model.err_len, model.err_timeout) == (n, n, n, n + 1)
    assert model.inferences == n and model.frames_ok >= n
    burst = items[-2]
    assert [op[0] for op in items[-3]["ops"]] == ["tx", "stall", "tx"], "one frame timeout"
    ((_, data),) = burst["ops"]
    replies = protocol.FrameSplitter("response").feed(
        ChipProtocolModel.from_config(cfg).feed(bytes.fromhex(data)))
    assert len(replies) == burst["frames"] and all(r[1] == protocol.Status.ACK for r in replies)
    from xbarflow.hdl.frame_receiver import RX_FIFO_DEPTH
    from xbarflow.hdl.frame_transmitter import TX_FIFO_DEPTH
    # Net of what the host clocks out while sending: more than the tx FIFO holds, and the
    # excess (host bytes that wait in the rx FIFO meanwhile) fewer than the rx FIFO holds.
    excess = sum(map(len, replies)) - len(data) // 2 - TX_FIFO_DEPTH
    assert 0 < excess < RX_FIFO_DEPTH
    ((_, data),) = items[-1]["ops"]
    ack, read = protocol.FrameSplitter("response").feed(model.feed(bytes.fromhex(data)))
    assert ack[1] == read[1] == protocol.Status.ACK and read[3:7] == bytes(4)
    assert (model.err_crc, model.err_cmd, model.err_len, model.err_timeout) == (0, 0, 0, 0)


def _reads(model, items) -> list[tuple[int, int]]:
    """(expected, model's) value of every response an item "expect"s, the items fed to the
    reference protocol model as the SPI bench does (a deposit sets the model's counter, a
    partial frame drops at the item's end)."""
    from xbarflow.cocotb_tests.test_fuzz import COUNTER_ATTRS
    from xbarflow.hdl import protocol

    out = []
    for item in items:
        responses = b""
        for op in item["ops"]:
            if op[0] == "deposit":
                setattr(model, COUNTER_ATTRS[op[2]], op[3])
            elif op[0] == "tx":
                responses += model.feed(bytes.fromhex(op[1]))
            elif op[0] == "stall":
                model.drop_partial()
            elif op[0] == "ferr":
                model.framing_error()
        model.drop_partial()
        frames = protocol.FrameSplitter("response").feed(responses)
        out += [(want, int.from_bytes(frames[n][3:7], "big")) for n, want in item.get("expect", ())]
    return out


def test_preload_items_step_every_counter_through_every_carry(cfg):
    """Each lifetime counter is deposited at 2^k - 1 for every k and read back after one event
    as 2^k (bit k set by the increment, bits below it cleared), then past 2^32 - 1: saturating
    counters stay at all ones until CTRL's clear reads 0, FRAMES_OK and INFERENCES wrap to 0;
    the values the items expect are the reference model's."""
    from xbarflow.flow.host.driver import ChipProtocolModel

    for host in ("spi", "uart"):
        c = cfg.replace(**{"host.interface": host})
        counters = runs.preloaded_counters(c)
        assert {k.reg.name for k in counters} == (
            {"ERR_CRC", "ERR_CMD", "ERR_LEN", "ERR_TIMEOUT", "FRAMES_OK", "INFERENCES"} | ({"ERR_FRAMING"} if host == "uart" else set()))
        items = runs.preload_items(c)
        reads = _reads(ChipProtocolModel.from_config(c), items)
        assert [m for w, m in reads] == [w for w, m in reads]
        deposits = [op for it in items for op in it["ops"] if op[0] == "deposit"]
        top = (1 << 32) - 1
        for k in counters:
            values = [op[3] for op in deposits if op[2] == k.reg]
            assert values == [(1 << b) - 1 for b in range(32)] + [top - 1], k.reg.name
        wanted = [w for w, _ in reads]
        assert wanted.count(top) == 2 * sum(k.saturating for k in counters)
        assert wanted.count(0) == sum(1 for k in counters) and wanted.count(1 << 31) == len(counters)


def test_the_preload_counters_name_32_bit_registers_of_the_generated_verilog(cfg, tmp_path):
    """Every preloaded counter's path is a 32-bit register declared in the module of that
    instance, in the Verilog of the SLP (SPI and UART) and the CNN (the layered controller)."""
    import re

    from xbarflow.flow.sim.verilog import generate

    for name, host in (("slp", "spi"), ("slp", "uart"), ("cnn", "spi")):
        c = cfgmod.load(cfgmod.CONFIG_DIR / f"{name}.toml").replace(**{"host.interface": host})
        text = generate(c, tmp_path / f"{name}-{host}").verilog.read_text()
        for k in runs.preloaded_counters(c):
            scope, reg = k.path.rsplit(".", 1)
            module = re.search(rf"^module \\xbarflow_top\.{re.escape(scope)} \(.*?^endmodule", text,
                               re.M | re.S)
            assert module is not None, k.path
            assert re.search(rf"^\s*reg \[31:0\] {re.escape(reg)} = 32'd0;", module.group(0), re.M), k.path


def test_datapath_items_infer_full_scale_and_random_inputs_at_each_multiplier():
    """Through the reference protocol model: REQUANT_MULT takes 255 and 16 in every hidden
    layer's byte, then a random byte each; after each, START runs on an input buffer of every
    code at its maximum, then on random codes drawn from the config's noise seed (the same seed,
    the same codes; another seed, others)."""
    from xbarflow.flow.data import unpack_codes
    from xbarflow.flow.host.driver import ChipProtocolModel

    cfg = cfgmod.load(cfgmod.CONFIG_DIR / "cnn.toml")
    seen = []

    def infer(buffer):
        seen.append((model.requant_mult, unpack_codes(buffer, cfg.rows, cfg.quant.dac_bits)))
        return 0, [0] * cfg.outputs

    model = ChipProtocolModel.from_config(cfg, infer=infer)
    items = runs.datapath_items(cfg)
    for item in items:
        for op in item["ops"]:
            if op[0] == "tx":
                model.feed(bytes.fromhex(op[1]))
    assert len(seen) == 2 * len(runs.DATAPATH_MULTS)
    mults = [m for m, _ in seen[::2]]
    assert mults[:2] == [0xFFFF, 0x1010] and mults[2] > 0xFF
    top = (1 << cfg.quant.dac_bits) - 1
    for n, (_, codes) in enumerate(seen):
        if n % 2 == 0:
            assert (codes == top).all()
        else:
            assert codes.min() == 0 and codes.max() == top and len(set(codes.tolist())) == top + 1
    assert not (seen[1][1] == seen[3][1]).all(), "a fresh random input for each multiplier"
    assert runs.datapath_items(cfg) == items
    assert runs.datapath_items(cfg.replace(**{"seeds.noise": cfg.seeds.noise + 1})) != items


def test_the_waivers_premises_hold_in_the_configs():
    """What coverage/waivers.toml argues from the configs: one ADC group per tile on the SLP,
    the binary MLP and the CNN (several on the ReLU MLP); no padding in any CNN layer; the CNN's
    phase counters' bit lengths (the CYCLES_* waiver's thresholds) from the cost model."""
    from xbarflow.flow.analysis.cost import phase_cycles

    def load(name):
        return cfgmod.load(cfgmod.CONFIG_DIR / f"{name}.toml")

    for name in ("slp", "mlp_binary", "cnn"):
        assert set(load(name).tile_adc_groups) == {1}, name
    assert max(load("mlp").tile_adc_groups) > 1
    cnn = load("cnn")
    assert all(getattr(layer, "padding", 0) == 0 for layer in cnn.network.layers)
    bits = {k: v.bit_length() for k, v in phase_cycles(cnn).items()}
    assert sum(phase_cycles(cnn).values()).bit_length() == 16
    assert (bits["drive"], bits["convert"], bits["argmax"], bits["load_window"], bits["accumulate"],
            bits["activate"], bits["pool"]) == (12, 13, 4, 14, 13, 13, 13)
    # The programmer's counters and masks: 5-clock pulses, a 150-pulse timeout, a 3-clock
    # write-ack latency; 16 rows in every MLP and CNN partition, 25 or 24 on the SLP.
    from xbarflow.hdl.write_ack import WriteAck

    assert WriteAck.LATENCY == 3
    for name in ("slp", "mlp", "mlp_binary", "cnn"):
        c = load(name)
        assert (c.pulse_cycles, c.programming.timeout_pulses) == (5, 150), name
        assert set(c.partition_rows) == ({25, 24} if name == "slp" else {16}), name


def test_the_summary_says_how_preloaded_bits_count_when_a_preload_run_is_in(cfg, tmp_path):
    from dataclasses import replace

    record = fabricated_run(tmp_path, cfg)
    text, _, _ = runs.analyse_campaign([record], tmp_path / "out", [])
    assert runs.PRELOAD_NOTE[0] not in text
    preload = next(s for s in runs.CAMPAIGN if s.kind == "preload" and s.config == "slp")
    text, _, _ = runs.analyse_campaign([replace(record, spec=preload)], tmp_path / "out", [])
    assert "\n\n" + runs.PRELOAD_NOTE[0] + "\n" in text and "only because the real logic then moves it" in text
