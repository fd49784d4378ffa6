"""Error types the CLI turns into clean messages (no tracebacks for user mistakes)."""

from __future__ import annotations


class PolymodalError(Exception):
    """Base class: an expected failure whose message is meant for the user."""


class DataError(PolymodalError):
    """A manifest, row or file that cannot be used; the message names the file/row."""


class ModelError(PolymodalError):
    """A model that cannot be built or loaded (unknown preset, offline hub model, bad folder)."""


class TrainingError(PolymodalError):
    """A run that cannot start or continue (bad resume, NaN under the halt policy...)."""
