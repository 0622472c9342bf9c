"""flow.commands: one module per `xbarflow` subcommand (`add_arguments`, `run`), listed in
xbarflow.flow.cli.COMMANDS; see the module map in README.md."""

__all__: list[str] = []
