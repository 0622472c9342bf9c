"""flow.model: see the module map in README.md."""
