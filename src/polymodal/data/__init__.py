"""The data layer: sources -> validation -> modality loaders -> dataset/collate/DataLoader.

Only the light modules are imported here; ``polymodal.data.loader`` (torch) and the
modality loaders are imported where they are used. See ``docs/data.md`` for the manifest
format and the "Data" contract in ``docs/design.md``.
"""

from __future__ import annotations

from polymodal.data.sources import MODALITIES, Manifest, load_manifest, manifest_stats
from polymodal.data.validate import RowIssue, ValidationReport, apply_policy, validate_rows

__all__ = [
    "MODALITIES",
    "Manifest",
    "RowIssue",
    "ValidationReport",
    "apply_policy",
    "load_manifest",
    "manifest_stats",
    "validate_rows",
]
