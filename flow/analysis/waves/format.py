"""Plain-text formatting shared by the session's tables, the frame descriptions and the CLI."""

from __future__ import annotations

__all__ = ["columns", "hex_bytes"]


def hex_bytes(data: bytes, limit: int) -> str:
    """'a5 03 00 … +86': the first `limit` bytes in hex, then how many were left out."""
    text = " ".join(f"{b:02x}" for b in data[:limit])
    return text + (f" … +{len(data) - limit}" if len(data) > limit else "")


def columns(header: list[str], rows: list[list[str]]) -> list[str]:
    """Aligned table lines: the first two columns (time, cycle) right-aligned, the rest left."""
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
              for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i < 2 else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header)] + [line(r) for r in rows]
