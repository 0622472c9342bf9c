"""The error hierarchy of xbarflow: every error the project raises derives from `XbarflowError`.

A library module raises its own subclass (ConfigError, DataError, SimulatorError, ...), each
keeping its built-in base (ValueError, RuntimeError, TimeoutError) so `except ValueError`
still catches it. The command layer (flow/commands) turns bad input into `UsageError`; the CLI
maps `UsageError` to exit status 2 and any other `XbarflowError` to exit status 1, one line.
"""

from __future__ import annotations

__all__ = ["UsageError", "XbarflowError"]


class XbarflowError(Exception):
    """Base of every xbarflow error; its message is one line meant for the user."""


class UsageError(XbarflowError):
    """Bad input from the user: one line, exit status 2."""
