"""flow.commands: see the module map in README.md."""
