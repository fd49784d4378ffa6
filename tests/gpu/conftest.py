"""The ``gpu`` marker: tests that need a CUDA GPU (run with ``pytest -m gpu tests/gpu``).

Registered here rather than in pyproject.toml (the file this folder must not change):
``--strict-markers`` checks a marker when a test module is imported, and pytest loads this
conftest, and calls its ``pytest_configure``, before it imports any module in this folder.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one)")
