"""flow.analysis: see the module map in README.md."""
