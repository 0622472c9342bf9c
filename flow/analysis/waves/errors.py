"""The error of `xbarflow waves`: a VCD, sidecar, pattern, time or expression that cannot be used.

Every module of xbarflow.flow.analysis.waves raises it with a one-line message; `xbarflow.flow.commands.waves` turns it into
the CLI's usage error (one line on stderr, exit 2).
"""

from __future__ import annotations

from ...core.errors import XbarflowError

__all__ = ["WavesError"]


class WavesError(XbarflowError, ValueError):
    """A VCD, pattern or expression that cannot be used; one line for the user."""
