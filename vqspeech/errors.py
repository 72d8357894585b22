"""User-facing error types.

Every error a user can cause (bad file, bad argument, bad config) is raised as a
:class:`UserError` whose message already names the file / line / argument.  The CLI
prints it as one line and exits with status 2; anything else is a bug and keeps its
traceback.
"""


class UserError(Exception):
    """An error caused by user input; printed as one line, exit status 2."""

    exit_status = 2


class DataDirError(UserError):
    """A Kaldi data directory is malformed (message names file and line)."""


class AudioError(UserError):
    """An audio file is missing, unreadable, empty or corrupt."""


class AlignmentError(UserError):
    """A phone alignment file is malformed."""


class ConfigError(UserError):
    """A config file has an unknown key, a wrong type or a bad value."""


class CheckpointError(UserError):
    """A checkpoint is truncated, from an incompatible version, or unsafe."""
