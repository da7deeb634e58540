"""User-facing errors: each carries one line naming the bad key or file and what is allowed.

Stage scripts turn them into that line on stderr and the exit code below; nothing here imports
heavy libraries, so errors can be raised and caught before torch, Ray or MLflow load.
"""


class GenZooError(Exception):
    exit_code = 1


class ConfigError(GenZooError, ValueError):
    """Bad params or CLI arguments."""

    exit_code = 2


class DataError(GenZooError, ValueError):
    """A dataset source or prepared dataset that is missing, changed or malformed."""

    exit_code = 2


class TrainingError(GenZooError, RuntimeError):
    """Training did not finish: a non-finite loss or too many worker failures."""


class TrackingError(GenZooError, RuntimeError):
    """The MLflow store cannot be used (unreachable server, bad URI)."""


class EvaluationError(GenZooError, RuntimeError):
    """Evaluation cannot produce trustworthy numbers (a feature network below its accuracy gate)."""
