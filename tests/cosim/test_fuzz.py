"""Host-interface fuzzing, co-simulated (Verilator, the bench cocotb_tests/test_fuzz.py):
`TEST_FRAMES` seeded frames per host through the pins, every response, register, inference and
finally the target memory against the model; `make fuzz` runs the full 10,000 per host. A
self-test corrupts one byte on the wire behind the model's back and the bench must report the
mismatch."""

from __future__ import annotations

import pytest

from xbarflow.flow.analysis import fuzz
from xbarflow.hdl import protocol


# -- co-simulation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("host", fuzz.HOSTS)
def test_fuzz_cosim(cfg, host, tmp_path):
    s = fuzz.run_fuzz(cfg, host, fuzz.TEST_FRAMES, tmp_path, seed=1, timeout_s=1800)
    assert s["problems"] == []
    assert s["frames"] >= fuzz.TEST_FRAMES
    col = 0 if host == "spi" else 1
    assert set(s["frames_by_kind"]) == {k for k, w in fuzz.KINDS.items() if w[col]}
    # Every NACK code the parser can give outside BUSY came back, and ACKs.
    for key in ("ACK", "NACK BAD_CRC", "NACK BAD_CMD", "NACK BAD_LEN", "NACK BAD_ADDR"):
        assert s["responses"].get(key, 0) > 0, key
    totals = s["counters_total"]
    assert totals["err_crc"] > 0 and totals["err_cmd"] > 0 and totals["err_len"] > 0
    assert totals["err_timeout"] > 0
    assert (totals["err_framing"] > 0) == (host == "uart")
    assert s["probes"] > 0 and s["probes_served"] == s["probes"]
    assert s["inferences"] > 0
    assert s["max_exchange_cycles"] <= s["exchange_bound_cycles"]
    end = s["end_checks"]
    assert end["registers"].startswith(str(protocol.NUM_REGS))
    assert end["final_inference"] == "equal"
    assert end["input_buffer_rtl"] == "equal" and end["targets_rtl"] == "equal"
    assert end["programming_fuzzed_targets"]["cells_written"] > 0
    # The chip's own counters (read at the end) are the model's since the last CTRL clear.
    assert set(s["counters"]) >= {"frames_ok", "err_crc", "err_framing"}


def test_fuzz_bench_catches_a_corrupted_byte(cfg, tmp_path):
    """Self-test: item 3's last byte is flipped on the wire but not in the model."""
    with pytest.raises(fuzz.FuzzError, match="item 3"):
        fuzz.run_fuzz(cfg, "spi", 20, tmp_path, seed=1, extra_job={"sabotage_item": 3,
                                                                     "end_checks": False})


def test_lifetime_counters_saturate_or_wrap_on_the_chip(cfg, tmp_path):
    """The coverage campaign's preload (backdoor deposit, events through the pins, read back):
    ERR_CRC deposited at 2^32 - 2 reads 2^32 - 1 after two bad frames and after a third, and 0
    after CTRL's clear; FRAMES_OK wraps to 0; ERR_CRC deposited at 2^k - 1 reads 2^k after one
    bad frame. A wrong expected value is reported."""
    from xbarflow.flow.analysis import coverage_runs
    from xbarflow.hdl.protocol import Reg

    items = coverage_runs.preload_items(cfg)

    def of(reg):
        return [it for it in items if any(op[0] == "tx" and bytes.fromhex(op[1])[1:4] ==
                                          bytes([protocol.Cmd.READ_REG, 0, reg]) for op in it["ops"])]
    crc, ok = of(Reg.ERR_CRC), of(Reg.FRAMES_OK)
    chosen = crc[15:17] + crc[-3:] + ok[-1:]
    assert [w for it in chosen for _, w in it["expect"]] == [1 << 15, 1 << 16, (1 << 32) - 1, (1 << 32) - 1, 0, 0]
    s = fuzz.run_fuzz(cfg, "spi", 1, tmp_path / "good", seed=1,
                      extra_job={"items": chosen, "end_checks": False})
    assert s["problems"] == [] and s["responses"]["NACK BAD_CRC"] == 5
    wrong = [dict(chosen[3], expect=[[chosen[3]["expect"][0][0], (1 << 32) - 2]])]
    with pytest.raises(fuzz.FuzzError, match="expected 0xfffffffe"):
        fuzz.run_fuzz(cfg, "spi", 1, tmp_path / "wrong", seed=1, extra_job={"items": wrong, "end_checks": False})
