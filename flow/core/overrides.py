"""`--set section.key=value`: one config override from the command line, with a TOML value.

Every command that takes `--set` (demo, program, sim, train, ...) and the sweep's value lists
parse values here, so `4`, `1.5e-8`, `true`, `[128, 10]` and `"sar"` mean the same everywhere;
a bare word that is not TOML (`sar`) is taken as a string.
"""

from __future__ import annotations

import tomllib
from typing import Any

from .errors import XbarflowError

__all__ = ["OverrideError", "parse_override", "toml_value"]


class OverrideError(XbarflowError, ValueError):
    """An override that is not KEY=VALUE; one line for the user."""


def toml_value(text: str) -> Any:
    """A TOML value ('4', '1.5e-8', 'true', '[10]', '"sar"'); a bare word is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_override(text: str, *, dotted: bool = True) -> tuple[str, Any]:
    """`section.key=value` as (key, value); `dotted=False` accepts a key without a section."""
    key, sep, raw = text.partition("=")
    if not sep or (dotted and "." not in key):
        raise OverrideError(f"expected section.key=value, got '{text}'")
    return key.strip(), toml_value(raw)
