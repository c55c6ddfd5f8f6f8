"""Errors srdeploy raises on purpose. Each message names the problem and the fix.

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code`` (srdeploy/entry.py).
Anything else that escapes a command is a bug: the CLI prints one "internal error" line and exits
3; ``srdeploy --debug`` shows the traceback for a bug report.
"""

from __future__ import annotations


class SrdeployError(Exception):
    """Base class: a problem the user can fix. ``hint`` says how."""

    exit_code = 2

    def __init__(self, problem: str, hint: str = "") -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(f"{problem} — {hint}" if hint else problem)


class RecipeError(SrdeployError):
    """The recipe file is missing, malformed, or has unknown or invalid keys."""


class ModelError(SrdeployError):
    """A checkpoint cannot be read, is corrupt, or matches no known architecture."""


class DataError(SrdeployError):
    """An image or image set is missing, unreadable, empty, or of an unsupported kind."""


class ExportError(SrdeployError):
    """ONNX export failed or produced a graph that does not honour dynamic sizes."""


class PlanError(SrdeployError):
    """A quantization plan is inconsistent, or does not fit the model or graph it is applied to."""


class RewriteError(SrdeployError):
    """An ONNX pass could not apply the plan to the graph."""


class BackendUnavailable(SrdeployError):
    """An optional backend (TensorRT, CUDA) is not installed or has no device."""


class BuildFolderError(SrdeployError):
    """A build folder is missing files or was written by an incompatible version."""


class ValidationFailed(SrdeployError):
    """Validation ran and a threshold failed. The message lists each failure."""

    exit_code = 1


class OutputError(SrdeployError):
    """An output path is unsafe to write: it holds files srdeploy did not write, is a file, lies
    under a file, is not writable, or another srdeploy process is writing it."""
