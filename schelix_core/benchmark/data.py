"""Loading a configured dataset: a local .h5ad, a checksummed download, or a simulation."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import numpy as np

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class DatasetError(ValueError):
    """A dataset that cannot be used, with the reason in words."""


def check_dataset_name(name: str) -> str:
    if not SAFE_NAME.match(name) or ".." in name:
        raise DatasetError(
            f"dataset name {name!r} is not a safe file name: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit"
        )
    return name


def read_h5ad_checked(path: str | Path):
    """Read an .h5ad, turning a missing, truncated or foreign file into one clear error."""
    import anndata as ad

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: file does not exist")
    try:
        return ad.read_h5ad(path)
    except Exception as exc:  # h5py/anndata raise many types for a damaged file
        raise DatasetError(f"{path}: not a readable .h5ad file (truncated or another format?): {exc}") from exc


def download(url: str, sha256: str, cache_dir: str | Path) -> Path:
    """Fetch ``url`` into ``cache_dir``; pooch verifies the checksum and keeps no bad file."""
    import pooch

    if not re.fullmatch(r"[0-9a-fA-F]{64}", sha256 or ""):
        raise DatasetError(f"{url}: sha256 must be 64 hexadecimal characters, got {sha256!r}")
    try:
        path = pooch.retrieve(url=url, known_hash=f"sha256:{sha256.lower()}", path=str(cache_dir), progressbar=False)
    except ValueError as exc:  # pooch's hash mismatch; the partial or wrong file is deleted
        raise DatasetError(f"{url}: download refused, checksum mismatch ({exc})") from exc
    except Exception as exc:
        raise DatasetError(f"{url}: download failed: {exc}") from exc
    return Path(path)


def _check_key(adata, key: str, role: str) -> None:
    if key not in adata.obs.columns:
        close = difflib.get_close_matches(key, list(adata.obs.columns), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; obs has {list(adata.obs.columns)[:20]}"
        raise DatasetError(f"{role} {key!r} is not a column of obs{hint}")
    if adata.obs[key].isna().any():
        raise DatasetError(f"{role} {key!r} has missing values in {int(adata.obs[key].isna().sum())} cells")


def load_dataset(spec: dict, cache_dir: str | Path):
    """Return the dataset's AnnData with raw counts in X and categorical batch and label columns."""
    from schelix_core.simulate import simulate

    if "simulate" in spec:
        adata = simulate(**spec["simulate"])
    elif "path" in spec:
        adata = read_h5ad_checked(spec["path"])
    elif "url" in spec:
        adata = read_h5ad_checked(download(spec["url"], spec.get("sha256", ""), cache_dir))
    else:
        raise DatasetError("a dataset needs one of 'path', 'url' (with 'sha256') or 'simulate'")
    batch_key, label_key = spec["batch_key"], spec["label_key"]
    if adata.n_obs == 0 or adata.n_vars == 0:  # before the key checks: an empty obs has no batches
        raise DatasetError(f"the matrix is empty ({adata.n_obs} cells x {adata.n_vars} genes)")
    if adata.X is None:
        raise DatasetError("the file has no expression matrix (X is empty); raw counts are needed in X")
    _check_key(adata, batch_key, "batch_key")
    _check_key(adata, label_key, "label_key")
    for key in (batch_key, label_key):
        adata.obs[key] = adata.obs[key].astype(str).astype("category")
    if adata.obs[batch_key].nunique() < 2:
        raise DatasetError(f"batch_key {batch_key!r} has a single batch: there is nothing to integrate")
    if not adata.obs_names.is_unique:
        raise DatasetError("cell names (obs_names) are not unique")
    if not adata.var_names.is_unique:
        raise DatasetError("gene names (var_names) are not unique")
    adata.X = adata.X.astype(np.float32) if adata.X.dtype != np.float32 else adata.X
    return adata
