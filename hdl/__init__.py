"""Amaranth components of the xbarflow digital periphery (one module per block; top.py composes)."""

__all__: list[str] = []
