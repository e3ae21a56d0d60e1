"""scHelix: gene-partitioned dual-stream diffusion integration of single-cell RNA-seq.

``import schelix_core`` stays light: torch-heavy modules are imported on first use.
"""

from __future__ import annotations

from .checks import SCHelixInputError, validate_counts

__version__ = "0.1.0"

__all__ = [
    "SCHelix",
    "integrate",
    "partition_genes",
    "PartitionResult",
    "SCHelixInputError",
    "validate_counts",
    "ABLATIONS",
    "DEFAULTS",
]

_LAZY = {
    "SCHelix": ("model", "SCHelix"),
    "integrate": ("model", "integrate"),
    "ABLATIONS": ("model", "ABLATIONS"),
    "DEFAULTS": ("model", "DEFAULTS"),
    "partition_genes": ("partition", "partition_genes"),
    "PartitionResult": ("partition", "PartitionResult"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{mod}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'schelix_core' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
