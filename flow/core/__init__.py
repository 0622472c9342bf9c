"""flow.core: see the module map in README.md."""
