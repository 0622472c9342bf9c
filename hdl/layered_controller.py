"""Controller FSM of a layered network (conv, pool, flatten, dense): each window from the
feature-map memory onto the crossbar tiles, activations and pooling back into the memory."""

import math
from dataclasses import dataclass

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from xbarflow.flow.core.config import ChipConfig

from .controller import analog_members, sum_bits
from .feature_map import address_width
from .pooling import Pooling
from .ports import CodeReadSignature, CodeWriteSignature, InferenceStatusSignature
from .tile_sequencer import TileSequencer, flags, table
from .window import WindowGenerator

__all__ = ["LayeredController", "Step", "steps"]


@dataclass(frozen=True)
class Step:
    """One step of the controller's program: a weight stage (conv, or dense after flatten as a
    1 x 1 map of all the input codes with K = 1) walked by a window generator, or a pool stage.

    ``height, width, channels, kernel, stride, padding, in_base`` are the window walk's (or the
    pooling's) geometry; ``out_base`` is the output map's base (-1: the last dense layer, whose
    sums go to the output buffer); ``layer`` the weight layer (-1 for pool); ``mode`` the pool's.
    """
    kind: str                 # "weights" | "pool"
    stage: int                # index in cfg.network.stages
    layer: int
    height: int
    width: int
    channels: int
    kernel: int
    stride: int
    padding: int
    in_base: int
    out_base: int
    mode: str = ""


def steps(cfg: ChipConfig) -> tuple[Step, ...]:
    """The program of a layered network, stage by stage (flatten moves nothing: no step)."""
    net = cfg.network
    maps = net.feature_maps
    out = []
    for i, (spec, (src, dst)) in enumerate(zip(net.stages, net.stage_maps)):
        in_base = maps[src].base
        out_base = maps[dst].base if dst >= 0 else -1
        H, W, C = spec.in_shape
        if spec.kind == "conv":
            out.append(Step("weights", i, spec.weight_layer, H, W, C, spec.kernel, spec.stride,
                            spec.padding, in_base, out_base))
        elif spec.kind == "dense":
            out.append(Step("weights", i, spec.weight_layer, 1, 1, H * W * C, 1, 1, 0,
                            in_base, out_base))
        elif spec.kind == "pool":
            out.append(Step("pool", i, -1, H, W, C, spec.kernel, spec.stride, 0, in_base,
                            out_base, spec.mode))
    return tuple(out)


class LayeredController(wiring.Component):
    """IDLE -> for each step: START_STEP, then a weight stage: for each output position
    (SLIDE_WINDOW ->) LOAD_WINDOW -> LOAD_WINDOW_END -> for each of the layer's tiles LOAD ->
    DRIVE -> CONVERT -> ACCUMULATE (-> CONVERT per ADC group) -> NEXT_TILE, then ACTIVATE ->
    NEXT_POSITION; or a pool stage: POOL; -> NEXT_STEP ... the last dense layer's NEXT_TILE ->
    ARGMAX -> DONE.

    The program is `steps`: every conv, pool and dense stage of ``cfg.network.stages``, reading
    and writing the maps of ``cfg.network.feature_maps`` (CNN_SPEC section 2). LOAD_WINDOW takes
    a position's window from the stage's `WindowGenerator`, one element per clock, reads each
    code from the feature-map memory (a padding element is 0 and reads nothing) and puts it in
    row r of the window register; LOAD_WINDOW_END lets the last code land. Along an output row
    of a conv with S < K the window slides on: SLIDE_WINDOW moves its columns S to the left in
    one clock and LOAD_WINDOW reads only the S new columns (K*S*C_in codes instead of K*K*C_in;
    `WindowGenerator` ``slide``). Each tile's LOAD then
    latches its row slice of the window onto the DAC register (rows past the tile's last row
    are 0), so the window is read once per position whatever the number of tiles. IDLE,
    DRIVE, CONVERT, ACCUMULATE, NEXT_TILE, ARGMAX and DONE are `xbarflow.hdl.tile_sequencer.
    TileSequencer`'s, as in `xbarflow.hdl.controller.Controller`; a position's
    tiles run in ``cfg.tiles`` order. ACTIVATE writes the C_out activation codes of the position
    to the next addresses of the output map (raster, channel fastest), one per clock. POOL runs
    the stage's `Pooling` unit on the feature-map ports. ARGMAX scans the last layer's sums.

    Parameters
    ----------
    cfg : ChipConfig
        A layered network (``cfg.network.layered``).

    Attributes
    ----------
    start : In(1)
        One-cycle pulse: begin an inference (ignored unless idle).
    status : Out(InferenceStatusSignature())
        As `xbarflow.hdl.controller.Controller`'s; ``cycles_drive``, ``cycles_convert`` and
        ``cycles_argmax`` count DRIVE, CONVERT and ARGMAX over all positions.
    cycles_load_window, cycles_accumulate, cycles_activate, cycles_pool : Out(32)
        Clocks of the last inference in LOAD_WINDOW (with LOAD_WINDOW_END), ACCUMULATE,
        ACTIVATE and POOL.
    requant_mult : In(32)
        ReLU requantiser multiplier of weight layer ``l`` at bits ``[8l, 8l+8)`` (a register).
    feature_read : Out(CodeReadSignature(addr_width, dac_bits))
        Reads of the feature-map memory (`xbarflow.hdl.feature_map.FeatureMap.code_read`).
    feature_write : Out(CodeWriteSignature(addr_width, dac_bits))
        Writes of the feature-map memory (`xbarflow.hdl.feature_map.FeatureMap.code_write`).
    tile_sel, dac_codes, vmm_start, vmm_done, adc_start, adc_col_sel, adc_codes, adc_valid
        The analog boundary, as `xbarflow.hdl.controller.Controller`'s.
    output_codes : Out(classes * sum_bits)
        Last layer's sums, latched for the output buffer.
    """

    def __init__(self, cfg: ChipConfig):
        if not cfg.network.layered:
            raise ValueError("a dense network runs on hdl.controller.Controller")
        self.cfg = cfg
        self.sum_bits = sum_bits(cfg)
        self.adcs = cfg.tile_adcs
        self.groups = cfg.adc_groups
        self.program = steps(cfg)
        self.addr_width = address_width(cfg.network.feature_map_codes)
        layers = cfg.network.layer_shapes
        if self.sum_bits > 16:
            raise ValueError(f"sums of {self.sum_bits} bits do not fit the 16-bit output buffer")
        if len(layers) > 5:
            raise ValueError("at most 4 hidden layers fit the REQUANT_MULT register")
        codes = dict(addr_width=self.addr_width, code_bits=cfg.quant.dac_bits)
        super().__init__({
            "start": In(1),
            "status": Out(InferenceStatusSignature()),
            "cycles_load_window": Out(32),
            "cycles_accumulate": Out(32),
            "cycles_activate": Out(32),
            "cycles_pool": Out(32),
            "requant_mult": In(32),
            "feature_read": Out(CodeReadSignature(**codes)),
            "feature_write": Out(CodeWriteSignature(**codes)),
            **analog_members(cfg),
            "output_codes": Out(layers[-1][1] * self.sum_bits),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, tiles, program = self.cfg, self.cfg.tiles, self.program
        layers = cfg.network.layer_shapes
        dac_bits = cfg.quant.dac_bits
        tile_rows = cfg.crossbar.tile_rows
        slice_bits = tile_rows * dac_bits
        n_layers = len(layers)
        max_in = max(n_in for n_in, _ in layers)

        # The tile walk, its per-tile tables and units (spare=1: at least one bit, an all-zero
        # table would be zero-width nets), then per-tile, per-layer and per-step constants.
        seq = TileSequencer(m, self, spare=1)
        tile, group, k, layer, t_row_tile = seq.tile, seq.group, seq.k, seq.layer, seq.t_row_tile
        t_row_mask = Array(Const((1 << t.rows * dac_bits) - 1, slice_bits) for t in tiles)
        first_tiles = [min(t.index for t in tiles if t.layer == l) for l in range(n_layers)]
        l_first_tile = table(first_tiles, spare=1)
        l_outputs = table([n_out for _, n_out in layers], spare=1)
        s_is_pool = flags([s.kind == "pool" for s in program])
        s_first_tile = table([first_tiles[s.layer] if s.kind == "weights" else 0 for s in program], spare=1)
        s_out_base = table([max(0, s.out_base) for s in program], spare=1)

        # The window register: the codes of one window (or a dense layer's inputs), row r at
        # bits [r*dac_bits, (r+1)*dac_bits), padded to whole tile slices.
        window = Signal(math.ceil(max_in / tile_rows) * slice_bits, name="window")

        step = Signal(range(len(program)))
        out_addr = Signal(self.addr_width)
        last_position = Signal()

        # Each step's unit: a window generator per weight stage, a pooling unit per pool stage,
        # joined to the common element stream and the feature-map ports by the step counter.
        unit_start = Signal()
        el_ready = Signal()
        el_valid, el_pad = Signal(), Signal()
        el_addr = Signal(self.addr_width)
        el_last_in_window, el_last_position = Signal(), Signal()
        el_row, el_slide = Signal(range(max_in + 1)), Signal()
        pool_busy, pooling, sliding = Signal(), Signal(), Signal()
        with m.Switch(step):
            for i, s in enumerate(program):
                with m.Case(i):
                    if s.kind == "weights":
                        gen = WindowGenerator(height=s.height, width=s.width, channels=s.channels,
                                              kernel=s.kernel, stride=s.stride, padding=s.padding,
                                              base=s.in_base, addr_width=self.addr_width, slide=True)
                        m.submodules[f"window{s.layer}"] = gen
                        el = gen.elements
                        m.d.comb += [
                            gen.start.eq(unit_start), el.ready.eq(el_ready),
                            el_valid.eq(el.valid), el_pad.eq(el.payload.pad),
                            el_addr.eq(el.payload.addr), el_row.eq(el.payload.row),
                            el_slide.eq(el.payload.slide),
                            el_last_in_window.eq(el.payload.last_in_window),
                            el_last_position.eq(el.payload.last_position),
                        ]
                        if gen.slide:
                            # SLIDE_WINDOW: columns kx >= S move to kx - S (rows of one ky block
                            # move S*C rows down); the new columns' rows are loaded after.
                            K, S, C = s.kernel, s.stride, s.channels
                            moved = [(ky * K + kx) * C + c for ky in range(K) for kx in range(K)
                                     for c in range(C)]
                            source = {r: r + S * C for r in moved if (r // C) % K < K - S}
                            with m.If(sliding):
                                m.d.sync += window.eq(Cat(
                                    window.word_select(source.get(r, r), dac_bits)
                                    for r in range(len(window) // dac_bits)))
                    else:
                        pool = Pooling(s.mode, size=s.kernel, stride=s.stride, height=s.height,
                                       width=s.width, channels=s.channels, in_base=s.in_base,
                                       out_base=s.out_base, addr_width=self.addr_width,
                                       dac_bits=dac_bits)
                        m.submodules[f"pool{s.stage}"] = pool
                        m.d.comb += [pool.start.eq(unit_start), pool_busy.eq(pool.busy),
                                     pool.read.data.eq(self.feature_read.data)]
                        with m.If(pooling):
                            m.d.comb += [
                                self.feature_read.addr.eq(pool.read.addr),
                                self.feature_read.en.eq(pool.read.en),
                                self.feature_write.addr.eq(pool.write.addr),
                                self.feature_write.data.eq(pool.write.data),
                                self.feature_write.en.eq(pool.write.en),
                            ]

        # A window code arrives one clock after its read and lands in its row.
        take = el_valid & el_ready
        arriving, arriving_pad = Signal(), Signal()
        arriving_row = Signal(range(max_in + 1))
        m.d.sync += [arriving.eq(take), arriving_pad.eq(el_pad), arriving_row.eq(el_row)]
        with m.If(arriving):
            m.d.sync += window.word_select(arriving_row, dac_bits).eq(
                Mux(arriving_pad, 0, self.feature_read.data))

        seq.clear_strobes(m)

        with m.FSM(name="ctrl") as fsm:
            seq.idle_state(m, first=step, counters=[self.cycles_load_window, self.cycles_accumulate,
                                                    self.cycles_activate, self.cycles_pool],
                           then="START_STEP")
            with m.State("START_STEP"):
                m.d.comb += unit_start.eq(1)
                m.d.sync += [tile.eq(s_first_tile[step]), out_addr.eq(s_out_base[step])]
                with m.If(s_is_pool[step]):
                    m.next = "POOL"
                with m.Else():
                    m.next = "LOAD_WINDOW"
            with m.State("LOAD_WINDOW"):
                m.d.sync += self.cycles_load_window.eq(self.cycles_load_window + 1)
                m.d.comb += [el_ready.eq(1), self.feature_read.addr.eq(el_addr),
                             self.feature_read.en.eq(take & ~el_pad)]
                with m.If(take & el_last_in_window):
                    m.d.sync += last_position.eq(el_last_position)
                    m.next = "LOAD_WINDOW_END"
            with m.State("LOAD_WINDOW_END"):
                # The window's last code lands in the window register at the end of this clock.
                m.d.sync += self.cycles_load_window.eq(self.cycles_load_window + 1)
                m.next = "LOAD"
            with m.State("LOAD"):
                m.d.sync += [
                    self.dac_codes.eq(window.word_select(t_row_tile[tile], slice_bits) & t_row_mask[tile]),
                    self.tile_sel.eq(tile), self.vmm_start.eq(1), group.eq(0),
                ]
                m.next = "DRIVE"
            seq.tile_states(m, accumulate_cycles=self.cycles_accumulate)
            with m.State("ACTIVATE"):
                # Output k of the position goes to the next address of the output map.
                m.d.sync += self.cycles_activate.eq(self.cycles_activate + 1)
                m.d.comb += [self.feature_write.en.eq(1), self.feature_write.addr.eq(out_addr),
                             self.feature_write.data.eq(seq.activation_codes[layer])]
                m.d.sync += [out_addr.eq(out_addr + 1), k.eq(k + 1)]
                with m.If(k + 1 == l_outputs[layer]):
                    m.next = "NEXT_POSITION"
            with m.State("NEXT_POSITION"):
                m.d.sync += tile.eq(l_first_tile[layer])
                with m.If(last_position):
                    m.next = "NEXT_STEP"
                with m.Elif(el_slide):   # the generator offers the next window's new columns
                    m.next = "SLIDE_WINDOW"
                with m.Else():
                    m.next = "LOAD_WINDOW"
            with m.State("SLIDE_WINDOW"):
                m.d.sync += self.cycles_load_window.eq(self.cycles_load_window + 1)
                m.d.comb += sliding.eq(1)
                m.next = "LOAD_WINDOW"
            with m.State("POOL"):
                m.d.sync += self.cycles_pool.eq(self.cycles_pool + 1)
                m.d.comb += pooling.eq(1)
                with m.If(~pool_busy):
                    m.next = "NEXT_STEP"
            with m.State("NEXT_STEP"):
                m.d.sync += step.eq(step + 1)
                m.next = "START_STEP"
            seq.result_states(m)

        seq.count_busy(m, fsm)
        return m
