"""Host-interface fuzzing (flow/analysis/fuzz.py), unit level: the plan is deterministic and
covers every kind; each generator produces what it claims, judged by the reference model
`ChipProtocolModel`; the UART framing-error counter is readable (ERR_FRAMING) and cleared with
the other error counters, in the RTL and in the model (the fuzz co-simulation:
tests/cosim/test_fuzz.py).
"""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from xbarflow.flow.analysis import fuzz
from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.core.paths import CONFIGS
from xbarflow.flow.host.driver import ChipProtocolModel
from xbarflow.hdl import protocol
from xbarflow.hdl.protocol import Cmd, Error, Reg, Status, decode_response
from xbarflow.hdl.uart import UART


def model_for(cfg):
    return ChipProtocolModel.from_config(cfg)


def responses(model, data: bytes) -> list:
    out = model.feed(data)
    frames, i = [], 0
    while i < len(out):
        n = protocol.response_length(out[i:i + 3])
        frames.append(decode_response(out[i:i + n]))
        i += n
    return frames


# -- the plan ------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", fuzz.HOSTS)
@pytest.mark.parametrize("frames", [50, fuzz.TEST_FRAMES])
def test_bench_timeout_is_whole_picoseconds(cfg, host, frames):
    """cocotb refuses a test timeout it cannot represent at the simulator's 1 ps precision
    (the bench then dies before its first item, as `xbarflow fuzz --frames 50` did): the bound
    must be whole picoseconds (cocotb's own check: ms * 10**9 an integer), and not below the
    sum of the items' bounds."""
    from xbarflow.cocotb_tests.test_fuzz import _test_timeout_ms, item_bound_cycles

    fuzz_cfg = fuzz.fuzz_config(cfg, host)
    items = fuzz.plan(fuzz_cfg, host, frames)
    ms = _test_timeout_ms({"config": fuzz_cfg.to_dict(), "items": items})
    assert ms * 10**9 == int(ms * 10**9)
    assert ms * 1e6 >= sum(item_bound_cycles(fuzz_cfg, it) for it in items) * 1e9 / cfg.clock.freq_hz


@pytest.mark.parametrize("host", fuzz.HOSTS)
def test_plan_is_deterministic_and_covers_every_kind(cfg, host):
    a = fuzz.plan(cfg, host, 400, seed=3)
    assert a == fuzz.plan(cfg, host, 400, seed=3)
    assert a != fuzz.plan(cfg, host, 400, seed=4)
    assert sum(it["frames"] for it in a) >= 400
    col = 0 if host == "spi" else 1
    wanted = {k for k, w in fuzz.KINDS.items() if w[col]}
    assert set(fuzz.plan_summary(a)) == wanted
    ops = {op[0] for it in a for op in it["ops"]}
    assert ops <= ({"tx", "bits", "stall"} if host == "spi" else {"tx", "ferr", "glitch", "stall"})
    assert ("bits" in ops) == (host == "spi") and ("ferr" in ops) == (host == "uart")
    for it in a:
        if any(op[0] == "bits" for op in it["ops"]):
            assert it["ops"][-1][0] == "bits"        # chip-select rises mid-byte at the end
        assert not fuzz.starts_programming(cfg, it, host)


@pytest.mark.parametrize("host", fuzz.HOSTS)
def test_plan_for_an_input_buffer_over_one_frame_keeps_each_payload_in_a_frame(host, monkeypatch):
    """cnn.toml's image is 392 bytes, more than one frame's payload (the campaign's
    cnn-directed-spi run died on an encoder error): full-length buffer writes stop at the
    frame limit."""
    cnn = cfgmod.load(CONFIGS / "cnn.toml")
    assert cnn.input_bytes > protocol.MAX_PAYLOAD
    lengths, encode = [], protocol.encode_request

    def recording(cmd, addr=0, payload=b""):
        if cmd == Cmd.WRITE_BUF:
            lengths.append(len(payload))
        return encode(cmd, addr, payload)

    monkeypatch.setattr(protocol, "encode_request", recording)
    fuzz.plan(fuzz.fuzz_config(cnn, host), host, 2000, seed=5)
    assert lengths and max(lengths) == protocol.MAX_PAYLOAD


def test_generators_make_what_they_claim(cfg):
    import random

    gen = fuzz.FrameGen(cfg, random.Random(7))
    expect = {"bad_crc": Error.BAD_CRC, "bad_cmd": Error.BAD_CMD, "bad_len": Error.BAD_LEN,
              "bad_addr": Error.BAD_ADDR}
    for _ in range(300):
        model = model_for(cfg)
        (r,) = responses(model, gen.valid())
        assert r.status == Status.ACK
        for kind, error in expect.items():
            model = model_for(cfg)
            (r,) = responses(model, getattr(gen, kind)())
            assert (r.status, r.error) == (Status.NACK, error), kind
            assert model.frames_ok == 0 and not any(model.input_buffer) and not any(model.target_buffer)
    # Oversize lengths are among them.
    lens = [f[4] for f in (gen.bad_len() for _ in range(300))]
    assert 255 in lens


@pytest.mark.parametrize("host", fuzz.HOSTS)
def test_probe_items_end_with_a_served_frame_in_the_model(cfg, host):
    """The resynchronisation claim holds in the reference itself (the bench then requires the
    chip to agree with the model and to ACK the probe)."""
    for it in fuzz.plan(cfg, host, 600, seed=9):
        if not it["probe"]:
            continue
        model, got = model_for(cfg), []
        for op in it["ops"]:
            if op[0] == "tx":
                got += responses(model, bytes.fromhex(op[1]))
            elif op[0] == "stall":
                model.drop_partial()
        assert got and got[-1].status == Status.ACK, it


# -- ERR_FRAMING in the model and in the RTL --------------------------------------------------------

def test_model_counts_and_clears_framing_errors(cfg):
    model = model_for(cfg)
    model.framing_error()
    model.framing_error()
    (r,) = responses(model, protocol.encode_request(Cmd.READ_REG, Reg.ERR_FRAMING))
    assert int.from_bytes(r.payload, "big") == 2
    responses(model, protocol.encode_request(Cmd.WRITE_REG, Reg.CTRL,
                                             protocol.CTRL_CLEAR_ERRORS.to_bytes(4, "big")))
    assert model.err_framing == 0
    (r,) = responses(model, protocol.encode_request(Cmd.WRITE_REG, Reg.ERR_FRAMING, bytes(4)))
    assert r.error == Error.BAD_ADDR                    # read-only


def test_uart_clear_resets_the_framing_counter():
    dut = UART(8)

    async def bench(ctx):
        async def char(byte, stop):
            for level in [0] + [(byte >> i) & 1 for i in range(8)] + [stop]:
                ctx.set(dut.rxd, level)
                await ctx.tick().repeat(8)
            ctx.set(dut.rxd, 1)
            await ctx.tick().repeat(16)

        await ctx.tick().repeat(4)
        await char(0x33, 0)
        await char(0x44, 0)
        assert ctx.get(dut.framing_errors) == 2
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        assert ctx.get(dut.framing_errors) == 0
        await char(0x55, 0)
        assert ctx.get(dut.framing_errors) == 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
