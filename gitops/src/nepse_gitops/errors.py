"""Errors that the command line reports to the user as one clear line (or a few)."""


class GitopsError(Exception):
    """A refusal or failure the user can act on; the message names the file, key or value."""

    exit_code = 1


class UsageError(GitopsError):
    """The command was called with arguments that cannot work together."""

    exit_code = 2


class GateError(GitopsError):
    """The gate could not judge: its configuration or its metrics are wrong (exit 2)."""

    exit_code = 2


class GateConfigError(GateError):
    """A gate threshold or metrics source that cannot work."""


class MetricsError(GateError):
    """Metrics that cannot be read, or that come from another model than the slot pins."""


class CandidateUnscraped(MetricsError):
    """Prometheus holds no series of any candidate pod within the window."""
