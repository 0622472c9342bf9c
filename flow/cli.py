"""`xbarflow` command line: the chip flow's commands (demo, verilog, train, ...).

Usage errors (bad arguments, missing or malformed files, invalid configs) print one line on
stderr and exit with status 2; a co-simulation that disagrees with the golden model exits 1.

Every subcommand lives in its own module of xbarflow.flow.commands, with
`add_arguments(parser)` and `run(args) -> int`. The parser imports a command's module only
when that command runs (none for `xbarflow --help`, which lists the commands with their help
lines), so `xbarflow waves ...` never loads the simulator or training code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .core.errors import UsageError, XbarflowError

__all__ = ["COMMANDS", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser", "main"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: name -> (module of xbarflow.flow.commands, help line), in the order `--help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "train if needed, generate Verilog, co-simulate MNIST, report"),
    "program": ("program", "program the array through the write path, then co-simulate inference"),
    "verilog": ("verilog", "write the chip's Verilog and its JSON sidecar"),
    "report": ("report", "metrics, confusion matrix and per-class table of a demo run"),
    "waves": ("waves", "inspect a co-simulation VCD or FST: signals, FSM states, SPI/UART frames, GTKWave file"),
    "spice": ("spice", "ngspice netlist of the crossbar tile, cross-checked against analog_models"),
    "cost": ("cost", "energy, latency, TOPS/W and area per inference (optionally synthesised)"),
    "sweep": ("sweep", "golden accuracy and cost over a grid of config overrides (CSV, PNG)"),
    "sim": ("sim", "co-simulate the test set in shards over local processes or a Dask cluster"),
    "classify": ("classify", "classify one image (.npy or .pgm) with the golden model, "
                             "optionally co-simulated"),
    "train": ("train", "load or train a config's weights (or ship them as reference weights), "
                       "print software and golden accuracy"),
    "figures": ("figures", "compute the README's figures into figures.json and rewrite the README "
                           "(--check: recompute and compare)"),
    "bench": ("bench", "measure the flow's speed on this machine and write BENCHMARKS.md"),
    "fuzz": ("fuzz", "fuzz the host interface (SPI, UART) on Verilator against the reference model"),
    "mutants": ("mutants", "run the mutant catalogue: every mutant must be killed by its tests"),
    "lint": ("lint", "verilator --lint-only -Wall on the generated Verilog, with the waiver file"),
    "import": ("import_model", "import an ONNX (or PyTorch) network: a config TOML and its weights file"),
    "export": ("export", "export per-tile targets, pulse schedule, register map, C header, Verilog"),
    "coverage": ("coverage", "line, toggle, FSM and functional coverage of the co-simulations "
                             "-> coverage/summary.md"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of argparse's usage block
        raise UsageError(f"{self.prog}: {message}")


def _command_module(name: str):
    return importlib.import_module(f"{__package__}.commands.{COMMANDS[name][0]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, only that command's module is imported and its options declared
    (the other commands are listed, without options); without, no command module is imported."""
    parser = _Parser(prog="xbarflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        if name == only:
            _command_module(name).add_arguments(command)
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The subcommand `argv` names (the first word; the top-level parser has only --help)."""
    if argv and argv[0] in COMMANDS:
        return argv[0]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(_command_of(argv)).parse_args(argv)
        return _command_module(args.command).run(args)
    except UsageError as exc:
        print(f"xbarflow: {exc}" if not str(exc).startswith("xbarflow") else str(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("xbarflow: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except XbarflowError as exc:   # a failure the command did not turn into a usage error
        print(f"xbarflow: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    # `python -m xbarflow.flow.cli` runs this file as __main__, a second copy of the module: run
    # the real module's main (its error classes are the ones the commands raise).
    from xbarflow.flow.cli import main as _main
    sys.exit(_main())
