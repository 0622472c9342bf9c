"""flow.model: see the module map in README.md."""

__all__: list[str] = []
