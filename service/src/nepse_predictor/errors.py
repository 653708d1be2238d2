"""Errors that reach a user: each message names the file, field or value and the problem."""


class UserError(Exception):
    """A problem the user can fix; the CLI prints it without a traceback."""


class DataError(UserError):
    """A price-history file that cannot be used for training or prediction."""


class ModelIntegrityError(UserError):
    """A model directory that is missing, incomplete or does not match its checksums."""


class FetchError(UserError):
    """A model download that failed or did not match its checksums."""
