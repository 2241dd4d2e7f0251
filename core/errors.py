"""The one error type that means "the user's input is unusable" (as opposed to a bug).

Front ends (CLI, web app) show these as a one-line message; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad user input: a malformed file, an unknown name, a rig that cannot be mapped, an unwritable folder."""
