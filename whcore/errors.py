"""Errors a user can act on.

A ``UserError`` carries one line naming the input and the fix; the CLIs print
it without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class SourceError(UserError):
    """One source (file, URL, window) could not be processed; the run goes on."""
