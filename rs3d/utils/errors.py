"""The errors a user's input can cause, shared by every layer so the command-line tools can turn them into one
``error: ...`` line without knowing (importing) where they come from."""
from __future__ import annotations


class UserInputError(Exception):
    """Bad input from the user (config, annotation file, checkpoint, paths): the message names the file or key.
    Command-line tools print it as one line and exit with :attr:`exit_code`."""

    exit_code = 2


class RunStoppedError(Exception):
    """A run that stopped itself for a reason the user must act on (e.g. a NaN loss); exit status 3."""

    exit_code = 3
