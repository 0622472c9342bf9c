"""Controller FSM: sequences one inference over the layers and crossbar tiles of a network."""

import math

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from xbarflow.flow.core.config import ChipConfig

from .ports import InferenceStatusSignature
from .tile_sequencer import TileSequencer

__all__ = ["Controller", "analog_members", "sum_bits"]


def analog_members(cfg: ChipConfig, *, column_select: bool = True) -> dict[str, wiring.Member]:
    """The controller's side of the analog boundary, in port order; `xbarflow.hdl.top.Top` has
    the same ports, with ``adc_col_sel`` only when ADCs are shared (`column_select`)."""
    groups = cfg.adc_groups
    return {
        "tile_sel": Out(range(max(2, len(cfg.tiles)))),
        "dac_codes": Out(cfg.crossbar.tile_rows * cfg.quant.dac_bits),
        "vmm_start": Out(1),
        "vmm_done": In(1),
        "adc_start": Out(1),
        **({"adc_col_sel": Out(range(max(2, groups)))} if column_select else {}),
        "adc_codes": In(cfg.tile_adcs * cfg.adc.bits),
        "adc_valid": In(1),
    }


def sum_bits(cfg: ChipConfig) -> int:
    """Width of a neuron's accumulated sum: one ADC code per row tile, added up."""
    row_tiles = max(t.row_tile for t in cfg.tiles) + 1
    return cfg.adc.bits + math.ceil(math.log2(row_tiles))


class Controller(wiring.Component):
    """IDLE -> for each tile: LOAD -> DRIVE -> CONVERT -> ACCUMULATE (-> CONVERT per ADC group)
    -> NEXT_TILE, with ACTIVATE after each hidden layer -> ARGMAX -> DONE.

    Tiles run in `cfg.tiles` order (layer, column tile, row tile), the order of ``tile_sel``.
    LOAD latches the tile's slice of the layer input (the input buffer for layer 0, the previous
    layer's activation codes after) onto the DAC register. DRIVE pulses ``vmm_start`` and waits
    for ``vmm_done``; CONVERT selects an ADC group (``adc_col_sel``), pulses ``adc_start`` and
    waits for ``adc_valid``; the analog side decides both waits. ACCUMULATE adds the group's
    codes into the neurons' sums, one per clock (a tile's first row tile starts them from zero).
    ACTIVATE turns a hidden layer's sums into the next layer's input codes, one neuron per
    clock, through `Activation`. ARGMAX scans the last layer's sums: lowest index wins ties.
    IDLE, the tile walk (DRIVE to NEXT_TILE), ARGMAX and DONE are `xbarflow.hdl.tile_sequencer.
    TileSequencer`, shared with the layered controller.

    Parameters
    ----------
    cfg : ChipConfig

    Attributes
    ----------
    start : In(1)
        One-cycle pulse: begin an inference (ignored unless idle).
    status : Out(InferenceStatusSignature())
        ``busy`` (an inference is running), ``done`` (``result`` is valid; cleared by the
        next ``start``), ``result`` (winning class of the last inference), and the counters
        ``cycles_total``, ``cycles_drive``, ``cycles_convert``, ``cycles_argmax`` (clocks of
        the last inference, in all and in DRIVE, CONVERT and ARGMAX) and ``inferences``
        (completed since reset), for the register file.
    buffer_codes : In(inputs * dac_bits)
        Packed DAC codes of the image (the input buffer).
    requant_mult : In(32)
        ReLU requantiser multiplier of hidden layer ``l`` at bits ``[8l, 8l+8)`` (a register).
    tile_sel : Out(range(tiles))
        Tile being driven.
    dac_codes : Out(tile_rows * dac_bits)
        DAC register; rows past the tile's last input are 0.
    vmm_start, adc_start : Out(1)
        One-cycle strobes to the analog side.
    vmm_done, adc_valid : In(1)
        One-cycle answers from the analog side.
    adc_col_sel : Out(range(groups))
        ADC group being converted (column multiplexer).
    adc_codes : In(adcs * adc_bits)
        Signed codes of the group's outputs, valid with ``adc_valid``.
    output_codes : Out(classes * sum_bits)
        Last layer's sums, latched for the output buffer.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.sum_bits = sum_bits(cfg)
        self.adcs = cfg.tile_adcs
        self.groups = cfg.adc_groups
        layers = cfg.network.layer_shapes
        if self.sum_bits > 16:
            raise ValueError(f"sums of {self.sum_bits} bits do not fit the 16-bit output buffer")
        if len(layers) > 5:
            raise ValueError("at most 4 hidden layers fit the REQUANT_MULT register")
        super().__init__({
            "start": In(1),
            "status": Out(InferenceStatusSignature()),
            "buffer_codes": In(layers[0][0] * cfg.quant.dac_bits),
            "requant_mult": In(32),
            **analog_members(cfg),
            "output_codes": Out(layers[-1][1] * self.sum_bits),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        layers = cfg.network.layer_shapes
        dac_bits = cfg.quant.dac_bits
        slice_bits = cfg.crossbar.tile_rows * dac_bits
        n_layers = len(layers)

        seq = TileSequencer(m, self)
        tile, group, k, layer, t_row_tile = seq.tile, seq.group, seq.k, seq.layer, seq.t_row_tile

        # Layer inputs: the input buffer, then each hidden layer's activation codes, padded to
        # whole tile slices so every row tile is a plain word select.
        acts = [Signal(n_in * dac_bits, name=f"layer{l}_inputs") for l, (n_in, _) in enumerate(layers)][1:]
        sources = [self.buffer_codes, *acts]
        padded = []
        for l, src in enumerate(sources):
            words = math.ceil(layers[l][0] / cfg.crossbar.tile_rows)
            padded.append(Cat(src, Const(0, words * slice_bits - len(src))))

        seq.clear_strobes(m)

        with m.FSM(name="ctrl") as fsm:
            seq.idle_state(m, first=tile, then="LOAD")
            with m.State("LOAD"):
                with m.Switch(layer):
                    for l, src in enumerate(padded):
                        with m.Case(l):
                            m.d.sync += self.dac_codes.eq(src.word_select(t_row_tile[tile], slice_bits))
                m.d.sync += [self.tile_sel.eq(tile), self.vmm_start.eq(1), group.eq(0)]
                m.next = "DRIVE"
            seq.tile_states(m)
            with m.State("ACTIVATE"):
                # Neuron k of hidden layer `layer` becomes input k of the next layer.
                with m.Switch(layer):
                    for l in range(n_layers - 1):
                        with m.Case(l):
                            m.d.sync += acts[l].word_select(k, dac_bits).eq(seq.activation_codes[l])
                m.d.sync += k.eq(k + 1)
                with m.If(k + 1 == Array(Const(n_out) for _, n_out in layers)[layer]):
                    m.d.sync += tile.eq(tile + 1)
                    m.next = "LOAD"
            seq.result_states(m)

        seq.count_busy(m, fsm)
        return m
