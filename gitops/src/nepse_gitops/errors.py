"""Errors that the command line reports to the user as one clear line (or a few)."""


class GitopsError(Exception):
    """A refusal or failure the user can act on; the message names the file, key or value."""

    exit_code = 1


class UsageError(GitopsError):
    """The command was called with arguments that cannot work together."""

    exit_code = 2
