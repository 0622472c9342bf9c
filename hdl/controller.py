"""Controller FSM: sequences one inference over the layers and crossbar tiles of a network."""

import math

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from xbarflow.flow.core.config import ChipConfig

from .activation import Activation
from .argmax import Argmax
from .ports import InferenceStatusSignature

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
        status = self.status
        cfg, tiles = self.cfg, self.cfg.tiles
        layers = cfg.network.layer_shapes
        dac_bits, adc_bits, sb = cfg.quant.dac_bits, cfg.adc.bits, self.sum_bits
        slice_bits = cfg.crossbar.tile_rows * dac_bits
        n_layers, n_tiles, classes = len(layers), len(tiles), layers[-1][1]
        max_out = max(n_out for _, n_out in layers)

        # Per-tile geometry as small constant tables indexed by the tile counter.
        def table(values):
            return Array(Const(v, range(max(values) + 1)) for v in values)

        def flags(values):   # one bit each, so `~` is a logical not
            return Array(Const(int(v), 1) for v in values)
        t_layer = table([t.layer for t in tiles])
        t_row_tile = table([t.row_tile for t in tiles])
        t_out_start = table([t.out_start for t in tiles])
        t_outputs = table([t.outputs for t in tiles])
        t_first = flags([t.row_tile == 0 for t in tiles])
        t_last_of_layer = flags([k + 1 == n_tiles or tiles[k + 1].layer != t.layer
                                 for k, t in enumerate(tiles)])

        # Layer inputs: the input buffer, then each hidden layer's activation codes, padded to
        # whole tile slices so every row tile is a plain word select.
        acts = [Signal(n_in * dac_bits, name=f"layer{l}_inputs") for l, (n_in, _) in enumerate(layers)][1:]
        sources = [self.buffer_codes, *acts]
        padded = []
        for l, src in enumerate(sources):
            words = math.ceil(layers[l][0] / cfg.crossbar.tile_rows)
            padded.append(Cat(src, Const(0, words * slice_bits - len(src))))

        sums = Array(Signal(signed(sb), name=f"sum{k}") for k in range(max_out))
        adc_latched = Signal(self.adcs * adc_bits)
        codes = Array(adc_latched[k * adc_bits:(k + 1) * adc_bits].as_signed() for k in range(self.adcs))

        tile = Signal(range(n_tiles + 1))
        group = Signal(range(self.groups + 1))
        k = Signal(range(max(max_out, self.adcs) + 1))
        layer = Signal(range(n_layers))
        m.d.comb += layer.eq(t_layer[tile])

        # Codes of the current group: the tile's outputs from group * adcs, at most adcs of them.
        group_base = Signal(range(max_out + 1))
        group_count = Signal(range(self.adcs + 1))
        remaining = Signal(signed(16))
        m.d.comb += [
            group_base.eq(t_out_start[tile] + group * self.adcs),
            remaining.eq(t_outputs[tile] - group * self.adcs),
            group_count.eq(Mux(remaining > self.adcs, self.adcs, remaining)),
        ]

        # One activation unit per hidden layer (each layer has its own kind and multiplier).
        activation_codes = Array(Signal(dac_bits, name=f"act_code{l}") for l in range(max(1, n_layers - 1)))
        for l in range(n_layers - 1):
            unit = Activation(cfg.network.activations[l], sum_bits=sb, dac_bits=dac_bits,
                              mult_bits=cfg.network.requant_mult_bits, shift=cfg.network.requant_shift)
            m.submodules[f"activation{l}"] = unit
            m.d.comb += [unit.sum.eq(sums[k]), unit.mult.eq(self.requant_mult[8 * l:8 * l + 8]),
                         activation_codes[l].eq(unit.code)]

        m.submodules.argmax = argmax = Argmax(classes, sb)
        m.d.comb += argmax.codes.eq(self.output_codes)

        # Strobes are high for exactly the cycle after the state that raises them.
        m.d.sync += [self.vmm_start.eq(0), self.adc_start.eq(0), argmax.start.eq(0)]

        with m.FSM(name="ctrl") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        status.done.eq(0), tile.eq(0),
                        status.cycles_total.eq(0), status.cycles_drive.eq(0),
                        status.cycles_convert.eq(0), status.cycles_argmax.eq(0),
                    ]
                    m.next = "LOAD"
            with m.State("LOAD"):
                with m.Switch(layer):
                    for l, src in enumerate(padded):
                        with m.Case(l):
                            m.d.sync += self.dac_codes.eq(src.word_select(t_row_tile[tile], slice_bits))
                m.d.sync += [self.tile_sel.eq(tile), self.vmm_start.eq(1), group.eq(0)]
                m.next = "DRIVE"
            with m.State("DRIVE"):
                m.d.sync += status.cycles_drive.eq(status.cycles_drive + 1)
                with m.If(self.vmm_done):
                    m.d.sync += [self.adc_col_sel.eq(0), self.adc_start.eq(1)]
                    m.next = "CONVERT"
            with m.State("CONVERT"):
                m.d.sync += status.cycles_convert.eq(status.cycles_convert + 1)
                with m.If(self.adc_valid):
                    m.d.sync += [adc_latched.eq(self.adc_codes), k.eq(0)]
                    m.next = "ACCUMULATE"
            with m.State("ACCUMULATE"):
                # A tile's first row tile starts its neurons' sums; later row tiles add to them.
                base = Mux(t_first[tile], 0, sums[group_base + k])
                m.d.sync += [sums[group_base + k].eq(base + codes[k]), k.eq(k + 1)]
                with m.If(k + 1 == group_count):
                    with m.If(group_base + group_count < t_out_start[tile] + t_outputs[tile]):
                        m.d.sync += [group.eq(group + 1), self.adc_col_sel.eq(group + 1),
                                     self.adc_start.eq(1)]
                        m.next = "CONVERT"
                    with m.Else():
                        m.next = "NEXT_TILE"
            with m.State("NEXT_TILE"):
                m.d.sync += k.eq(0)
                with m.If(~t_last_of_layer[tile]):
                    m.d.sync += tile.eq(tile + 1)
                    m.next = "LOAD"
                with m.Elif(layer == n_layers - 1):
                    m.d.sync += [self.output_codes.eq(Cat(sums[n] for n in range(classes))),
                                 argmax.start.eq(1)]
                    m.next = "ARGMAX"
                with m.Else():
                    m.next = "ACTIVATE"
            with m.State("ACTIVATE"):
                # Neuron k of hidden layer `layer` becomes input k of the next layer.
                with m.Switch(layer):
                    for l in range(n_layers - 1):
                        with m.Case(l):
                            m.d.sync += acts[l].word_select(k, dac_bits).eq(activation_codes[l])
                m.d.sync += k.eq(k + 1)
                with m.If(k + 1 == Array(Const(n_out) for _, n_out in layers)[layer]):
                    m.d.sync += tile.eq(tile + 1)
                    m.next = "LOAD"
            with m.State("ARGMAX"):
                m.d.sync += status.cycles_argmax.eq(status.cycles_argmax + 1)
                with m.If(argmax.done):
                    m.d.sync += status.result.eq(argmax.index)
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.sync += [status.done.eq(1), status.inferences.eq(status.inferences + 1)]
                m.next = "IDLE"

        m.d.comb += status.busy.eq(~fsm.ongoing("IDLE"))
        with m.If(~fsm.ongoing("IDLE")):
            m.d.sync += status.cycles_total.eq(status.cycles_total + 1)
        return m
