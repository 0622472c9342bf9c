"""The xbarflow flow: config, data, the numeric chip model, host driver, simulation, analysis
and the command line, in layers (see the module map in README.md)."""

__all__: list[str] = []
