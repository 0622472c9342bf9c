"""flow.sim: see the module map in README.md."""
