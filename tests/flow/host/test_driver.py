"""HostDriver against the in-memory ChipProtocolModel transport, and the model itself."""

import asyncio

import pytest

from xbarflow.flow.core.config import ChipConfig
from xbarflow.flow.host.driver import (
    ChipProtocolModel,
    HostDriver,
    InferenceTimeout,
    NackError,
    ProgrammingTimeout,
    Transport,
    decode_outputs,
    encode_outputs,
)
from xbarflow.hdl import protocol
from xbarflow.hdl.protocol import (
    Cmd,
    Error,
    ProtocolError,
    Reg,
    Status,
    encode_request,
    encode_response,
)

CODES = [-128, 127, -1, 0, 5, -77, 100, -3, 64, -64]


def fake_infer(buf: bytes):
    """Deterministic stand-in for the analog array: class = sum of input bytes mod 10."""
    return sum(buf) % 10, CODES


class Recorder:
    """A transport wrapper that records every request frame."""

    def __init__(self, inner):
        self.inner, self.requests = inner, []

    async def exchange(self, request):
        self.requests.append(request)
        return await self.inner.exchange(request)


def make(cfg=None, **model_kwargs):
    cfg = cfg or ChipConfig()
    model = ChipProtocolModel.from_config(cfg, infer=fake_infer, **model_kwargs)
    rec = Recorder(model)
    return cfg, model, rec, HostDriver(rec, cfg)


def run(coro):
    return asyncio.run(coro)


def test_model_is_a_transport():
    assert isinstance(ChipProtocolModel(4, 4), Transport)


def test_registers_and_identity():
    cfg, model, rec, drv = make()

    async def go():
        assert await drv.read_reg(Reg.ID) == protocol.CHIP_ID
        await drv.write_reg(Reg.SCRATCH, 0xA5A5_0001)
        assert await drv.read_reg(Reg.SCRATCH) == 0xA5A5_0001
        await drv.check_identity()
        assert await drv.read_reg(Reg.GEOMETRY) == protocol.geometry_word(cfg)

    run(go())
    assert rec.requests[1] == encode_request(Cmd.WRITE_REG, Reg.SCRATCH, b"\xA5\xA5\x00\x01")


def test_requant_mult_reads_back_what_was_written():
    """REQUANT_MULT is read/write in the RTL (hdl/registers.py): the model keeps the value."""
    _, model, _, drv = make()

    async def go():
        assert await drv.read_reg(Reg.REQUANT_MULT) == 0
        await drv.write_reg(Reg.REQUANT_MULT, 0x0000_FF10)
        assert await drv.read_reg(Reg.REQUANT_MULT) == 0x0000_FF10

    run(go())
    assert model.requant_mult == 0xFF10


def test_geometry_layout_of_the_default_config():
    cfg = ChipConfig()
    # inputs 196, outputs 10, dac_bits 4, adc_bits 8 -> 7 in the top nibble.
    assert protocol.geometry_word(cfg) == 196 | 10 << 16 | 4 << 24 | 7 << 28


def test_check_identity_rejects_another_chip():
    cfg, model, rec, drv = make()
    model.geometry ^= 1

    with pytest.raises(ProtocolError, match="GEOMETRY"):
        run(drv.check_identity())


def test_write_input_splits_into_255_byte_frames():
    cfg = ChipConfig().replace(**{"network.input_size": 28, "crossbar.tile_rows": 784})
    assert cfg.input_bytes == 392
    cfg, model, rec, drv = make(cfg)
    packed = bytes(i * 7 % 256 for i in range(cfg.input_bytes))
    run(drv.write_input(packed))
    assert [len(r) - 6 for r in rec.requests] == [255, 137]
    assert rec.requests[1][2:4] == (255).to_bytes(2, "big")     # ADDR of the second chunk
    assert bytes(model.input_buffer) == packed
    with pytest.raises(ValueError):
        run(drv.write_input(packed + b"\x00"))


def test_read_outputs_decodes_signed_big_endian():
    cfg, model, rec, drv = make()

    async def go():
        await drv.start()
        return await drv.read_outputs(), await drv.read_outputs(3)

    all_codes, first3 = run(go())
    assert all_codes == CODES
    assert first3 == CODES[:3]
    assert rec.requests[-1] == encode_request(Cmd.READ_BUF, 0, bytes([6]))
    assert decode_outputs(b"\xff\x80\x00\x7f") == [-128, 127]
    assert decode_outputs(encode_outputs([-32768, 32767])) == [-32768, 32767]


def test_read_outputs_uses_even_chunks_when_large():
    cfg = ChipConfig().replace(**{"network.layers": [200], "crossbar.tile_cols": 400})
    cfg, model, rec, drv = make(cfg)
    model.output_buffer[:] = encode_outputs([(-1) ** k * k for k in range(200)])
    codes = run(drv.read_outputs())
    assert codes == [(-1) ** k * k for k in range(200)]
    assert [r[-2] for r in rec.requests] == [254, 146]    # READ_BUF counts, codes kept whole


def test_classify_polls_until_done():
    cfg, model, rec, drv = make(latency_polls=3)
    packed = bytes(range(cfg.input_bytes))
    result = run(drv.classify(packed))
    assert result == sum(packed) % 10
    polls = [r for r in rec.requests if r[1] == Cmd.READ_RESULT]
    assert len(polls) == 4          # 3 while busy, then done
    assert model.inferences == 1


def test_classify_gives_up_after_max_polls():
    cfg, model, rec, drv = make(latency_polls=None)     # a chip that never finishes
    with pytest.raises(InferenceTimeout, match="5 READ_RESULT polls") as info:
        run(drv.classify(bytes(cfg.input_bytes), max_polls=5))
    assert isinstance(info.value, ProtocolError)
    assert len([r for r in rec.requests if r[1] == Cmd.READ_RESULT]) == 5


def test_nack_raises_naming_the_error():
    cfg, model, rec, drv = make()
    with pytest.raises(NackError, match="BAD_ADDR") as info:
        run(drv.write_reg(Reg.ID, 1))
    assert info.value.error == Error.BAD_ADDR
    model.busy, model.polls_left = True, None
    with pytest.raises(NackError, match="BUSY"):
        run(drv.start())
    with pytest.raises(NackError, match="BUSY"):
        run(drv.write_input(b"\x01"))


class FixedTransport:
    def __init__(self, response):
        self.response = response

    async def exchange(self, request):
        return self.response


@pytest.mark.parametrize("response, message", [
    (encode_response(Status.ACK, b"\x01\x02\x03")[:-1] + b"\x00", "CRC"),
    (encode_response(Status.ACK, b"\x01\x02"), "expected 4"),
    (encode_response(Status.NACK, b"\x77"), "unknown error 0x77"),
    (b"", "too short"),
])
def test_malformed_responses_raise(response, message):
    drv = HostDriver(FixedTransport(response), ChipConfig())
    with pytest.raises(ProtocolError, match=message):
        run(drv.read_reg(Reg.SCRATCH))


def test_counters_and_clear_errors():
    cfg, model, rec, drv = make()
    bad = encode_request(Cmd.READ_REG, Reg.ID)
    model.feed(bad[:-1] + bytes([bad[-1] ^ 1]))               # BAD_CRC
    model.feed(encode_request(0x33))                           # BAD_CMD
    model.feed(encode_request(Cmd.READ_REG, 200))              # BAD_ADDR -> err_len
    model.feed(encode_request(Cmd.WRITE_BUF, 0)[:4])           # partial ...
    model.drop_partial()                                       # ... then timeout

    async def go():
        first = await drv.counters()
        await drv.clear_errors()
        return first, await drv.counters()

    first, second = run(go())
    assert set(first) == {r.name.lower() for r in (
        Reg.CYCLES_TOTAL, Reg.CYCLES_DRIVE, Reg.CYCLES_CONVERT, Reg.CYCLES_ARGMAX,
        Reg.INFERENCES, Reg.FRAMES_OK, Reg.ERR_CRC, Reg.ERR_CMD, Reg.ERR_LEN, Reg.ERR_TIMEOUT)}
    assert (first["err_crc"], first["err_cmd"], first["err_len"], first["err_timeout"]) == (1, 1, 1, 1)
    assert first["frames_ok"] == 5      # the five counter reads before FRAMES_OK's own read
    assert (second["err_crc"], second["err_cmd"], second["err_len"], second["err_timeout"]) == (0, 0, 0, 0)



def test_model_error_counters_saturate_like_the_rtl():
    model = ChipProtocolModel(16, 4)
    model.err_crc = model.err_timeout = (1 << 32) + 5      # more errors than 32 bits count
    model.frames_ok = (1 << 32) + 5                        # FRAMES_OK is no error counter: it wraps
    assert model.read_reg(Reg.ERR_CRC) == model.read_reg(Reg.ERR_TIMEOUT) == 0xFFFFFFFF
    assert model.read_reg(Reg.FRAMES_OK) == 5

# -- the reference model's byte-stream behaviour ----------------------------------------------

def test_model_skips_garbage_and_handles_split_frames():
    model = ChipProtocolModel(16, 4)
    req = encode_request(Cmd.WRITE_BUF, 2, b"\x09\x08")
    assert model.feed(b"\x00\x13\xff" + req[:4]) == b""
    assert model.in_frame
    assert model.feed(req[4:]) == encode_response(Status.ACK)
    assert bytes(model.input_buffer[:5]) == b"\x00\x00\x09\x08\x00"
    # Two frames in one feed give two responses back to back.
    two = encode_request(Cmd.READ_REG, Reg.SCRATCH) + encode_request(Cmd.READ_BUF, 0, b"\x02")
    assert model.feed(two) == encode_response(Status.ACK, bytes(4)) + \
        encode_response(Status.ACK, bytes(2))
    model.drop_partial()                 # no partial frame: nothing counted
    assert model.err_timeout == 0


def test_model_exchange_without_response_raises():
    model = ChipProtocolModel(4, 4)
    with pytest.raises(ProtocolError, match="no response"):
        run(model.exchange(encode_request(Cmd.START)[:-1]))


# -- programming ------------------------------------------------------------------------------

def fake_program(targets: bytes):
    """Stand-in for the write-verify run: (pulses, failures, cycles) from the targets."""
    return sum(targets), targets.count(31), 1000 + len(targets)


def test_write_targets_splits_into_255_byte_frames():
    cfg, model, rec, drv = make()
    assert cfg.target_bytes == 196 * 20
    levels = bytes(i * 11 % 32 for i in range(cfg.target_bytes))
    run(drv.write_targets(levels))
    assert [len(r) - 6 for r in rec.requests] == [255] * 15 + [cfg.target_bytes - 15 * 255]
    assert all(r[1] == Cmd.WRITE_TARGETS for r in rec.requests)
    assert rec.requests[3][2:4] == (3 * 255).to_bytes(2, "big")
    assert bytes(model.target_buffer) == levels
    assert bytes(model.input_buffer) == bytes(cfg.input_bytes)
    run(drv.write_targets(b"\x07\x08", offset=cfg.target_bytes - 2))
    assert model.target_buffer[-2:] == b"\x07\x08"
    with pytest.raises(ValueError):
        run(drv.write_targets(b"\x00", offset=cfg.target_bytes))


def test_program_polls_status_until_write_ok_and_returns_counters():
    cfg, model, rec, drv = make(program=fake_program, program_latency_polls=4)
    levels = bytes([31, 2, 3] * 100)
    run(drv.write_targets(levels))
    result = run(drv.program())
    assert result == {"pulses": sum(levels), "failures": 100, "cycles": 1000 + cfg.target_bytes,
                      "steps": max(cfg.partition_rows) * cfg.crossbar.tile_cols}
    polls = [r for r in rec.requests if r == encode_request(Cmd.READ_REG, Reg.STATUS)]
    assert len(polls) == 5          # 4 while busy, then write_ok
    assert model.programs == 1
    assert any(r == encode_request(Cmd.START_PROGRAM) for r in rec.requests)

    status = run(drv.read_reg(Reg.STATUS))
    assert status == protocol.STATUS_WRITE_OK


def test_program_gives_up_after_max_polls():
    cfg, model, rec, drv = make(program=fake_program, program_latency_polls=None)
    with pytest.raises(ProgrammingTimeout, match="3 STATUS polls") as info:
        run(drv.program(max_polls=3))
    assert isinstance(info.value, ProtocolError)


def test_inference_and_programming_exclude_each_other():
    cfg, model, rec, drv = make(program=fake_program, program_latency_polls=2, latency_polls=2)

    async def go():
        await drv.start_program()
        assert await drv.read_reg(Reg.STATUS) == protocol.STATUS_PROG_BUSY
        for call in (drv.start(), drv.start_program(), drv.write_input(b"\x01"),
                     drv.write_targets(b"\x01")):
            with pytest.raises(NackError, match="BUSY"):
                await call
        # A CTRL start is silently ignored while programming (the RTL gates it too).
        await drv.write_reg(Reg.CTRL, protocol.CTRL_START)
        assert model.starts == 0
        assert await drv.read_reg(Reg.STATUS) == protocol.STATUS_PROG_BUSY
        assert await drv.read_reg(Reg.STATUS) == protocol.STATUS_WRITE_OK
        await drv.start()
        with pytest.raises(NackError, match="BUSY"):
            await drv.start_program()
        assert model.programs == 1
        # write_ok stays set through an inference; the next START_PROGRAM clears it.
        status, _ = await drv.read_result()
        assert status == protocol.STATUS_BUSY | protocol.STATUS_WRITE_OK
        await drv.read_result()
        status, _ = await drv.read_result()
        assert status == (protocol.STATUS_DONE | protocol.STATUS_IRQ | protocol.STATUS_WRITE_OK)
        await drv.start_program()
        assert await drv.read_reg(Reg.STATUS) == (protocol.STATUS_PROG_BUSY | protocol.STATUS_DONE
                                                  | protocol.STATUS_IRQ)
        assert await drv.read_reg(Reg.PROG_PULSES) == 0      # cleared by the new run

    run(go())


def test_model_write_targets_bounds():
    model = ChipProtocolModel(4, 4, target_bytes=10)
    assert model.feed(encode_request(Cmd.WRITE_TARGETS, 8, b"\x01\x02")) == \
        encode_response(Status.ACK)
    assert model.feed(encode_request(Cmd.WRITE_TARGETS, 9, b"\x01\x02")) == \
        encode_response(Status.NACK, bytes([Error.BAD_ADDR]))
    assert model.feed(encode_request(Cmd.WRITE_TARGETS, 0)) == \
        encode_response(Status.NACK, bytes([Error.BAD_LEN]))
    assert model.feed(encode_request(Cmd.START_PROGRAM, 0, b"\x00")) == \
        encode_response(Status.NACK, bytes([Error.BAD_LEN]))
    assert bytes(model.target_buffer) == bytes(8) + b"\x01\x02"
    assert model.err_len == 3
    # No target memory: every WRITE_TARGETS is out of range.
    assert ChipProtocolModel(4, 4).feed(encode_request(Cmd.WRITE_TARGETS, 0, b"\x01")) == \
        encode_response(Status.NACK, bytes([Error.BAD_ADDR]))


def test_program_tile_selects_uploads_and_starts_each_tile():
    """A 10-tile chip (configs/mlp.toml): program_tile writes PROG_TILE and reads it back,
    uploads that tile's targets, then START_PROGRAM; the model programs the tile PROG_TILE
    names. A tile out of range is refused before anything is sent; a chip that ignores the
    write (it has fewer tiles than the driver thinks) is a ProtocolError."""
    from xbarflow.flow.core.config import load
    cfg, model, rec, drv = make(load("configs/mlp.toml"), program=fake_program)
    for tile in (7, 0, 9):
        levels = bytes([tile + 1]) * cfg.target_bytes
        assert run(drv.program_tile(tile, levels))["pulses"] == (tile + 1) * cfg.target_bytes
    assert model.programmed_tiles == [7, 0, 9] and model.prog_tile == 9
    sent = len(rec.requests)
    for bad in (10, -1):
        with pytest.raises(ValueError, match=f"tile {bad} out of range"):
            run(drv.select_tile(bad))
    assert len(rec.requests) == sent
    # The chip keeps PROG_TILE when the index is past its tiles, as the RTL does.
    run(drv.write_reg(Reg.PROG_TILE, 10))
    assert run(drv.read_reg(Reg.PROG_TILE)) == 9
    small = ChipProtocolModel.from_config(ChipConfig(), program=fake_program)
    with pytest.raises(ProtocolError, match="PROG_TILE reads 0 after writing 3"):
        run(HostDriver(small, cfg).select_tile(3))
