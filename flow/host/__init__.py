"""flow.host: see the module map in README.md."""
