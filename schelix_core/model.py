"""User-facing scHelix model."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import graph
from .checks import SCHelixInputError, get_counts, validate_counts
from .partition import coerce_partition, harmony_corrected, partition_genes
from .preprocess import PCAFit, cosine_normalize, log_normalize, pca

# "no_fusion" trains the full protocol and outputs the Anchor latent, so it isolates what the
# gated Variant message adds (no_refine also drops the Anchor refinement of phase 2).
ABLATIONS = (None, "no_partition", "no_align", "no_refine", "concat", "no_diffusion", "unbounded_gate",
             "no_fusion")

DEFAULTS = dict(
    n_latent=32,
    n_hidden=128,
    scale_dim=64,
    dropout=0.1,
    n_pcs_anchor=50,
    n_pcs_variant=30,
    scale_pcs=True,
    # PCs of the graph that picks neighbours (for diffusion and the contrast's positives):
    # True reads the Anchor stream's scaled PCs; False, PCs of the unscaled log expression of
    # the Anchor genes, where each gene weighs by its own variance and the many faint genes
    # that unit scaling lifts to equal weight no longer blur who neighbours whom (graph label
    # purity on Kang 0.765 -> 0.831; k-means-averaged total +0.030 there over six seeds).
    scale_graph_pcs=False,
    # True: the unscaled graph PCs are of the cosine-normalised log expression (fastMNN's
    # cosNorm), so a cell's depth, through how many genes it detects, no longer sets whom it
    # neighbours. Over seeds 0-5 it raised the k-means-averaged total on all nine benchmark and
    # held-out data sets (+0.002 to +0.016; docs/benchmark_analyses.md).
    cosine_graph=True,
    diffusion_scales=(0, 1, 2, 4),
    n_neighbors=15,
    # the Variant residual moves a cell by at most half its anchor norm: Anchors dominate
    alpha_max=0.5,
    lr=1e-3,
    # Refine phase: the Anchor encoder learns at this fraction of lr, under the drift penalty.
    # 0.3 rather than 0.1 raised the total on all six benchmark data sets over six seeds
    # (NMI/ARI averaged over 10 k-means seeds; +0.002 to +0.008), mostly through bio conservation.
    anchor_lr_factor=0.3,
    weight_decay=1e-4,
    temperature=0.2,
    recon_weight=1.0,
    # Neighbour InfoNCE (phases 0 and 2) spreads cells over the sphere; at weight 1 it
    # outweighed reconstruction and split large types (k-means NMI/ARI fell), so it only
    # sharpens local structure. Aligning the Variant stream to the Anchors has its own weight.
    contrast_weight=0.1,
    align_weight=1.0,
    # Within-group batch mixing on the Anchor latent (phase 2, at the Anchor's reduced learning
    # rate, under the drift penalty) and on the Variant latent (phase 1); at weight 1 the
    # Anchor latent kept much of its batch variance (PCR comparison 0.70 on sim_mild, scVI 0.87).
    mix_weight=3.0,
    drift_weight=1.0,
    # None: sized for the device (training.batch_size_for)
    batch_size=None,
    target_steps=(400, 250, 250),
    n_mix_groups=None,
    ablation=None,
    partition_kwargs=None,
)

_STATE_FILE = "model.pt"
_META_FILE = "meta.json"
_ARRAYS_FILE = "arrays.npz"
_PARTITION_FILE = "partition.tsv"
_MODEL_FILES = (_STATE_FILE, _META_FILE, _ARRAYS_FILE, _PARTITION_FILE)


def check_model_folder(dir_path, overwrite: bool = True) -> None:
    """Raise FileExistsError unless :meth:`SCHelix.save` may write to ``dir_path`` (callers can
    ask before training): a new or empty folder, or with ``overwrite`` one holding a saved model."""
    d = Path(dir_path)
    if not d.exists():
        return
    if not d.is_dir():
        raise FileExistsError(f"{d} exists and is not a directory")
    present = {p.name for p in d.iterdir()}
    if present and not overwrite:
        raise FileExistsError(f"{d} exists and is not empty")
    foreign = sorted(present - set(_MODEL_FILES))
    if foreign:
        raise FileExistsError(f"{d} holds files that are not part of a saved scHelix model "
                              f"({', '.join(foreign[:5])}); save into a new or empty directory")


def _resolve_device(accelerator: str):
    import torch

    acc = (accelerator or "auto").lower()
    if acc == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if acc == "cpu":
        return torch.device("cpu")
    if acc in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise SCHelixInputError(
                f"accelerator='{accelerator}' was requested but CUDA is not available "
                "(torch.cuda.is_available() is False); use accelerator='cpu' or 'auto'"
            )
        return torch.device("cuda")
    raise SCHelixInputError(f"unknown accelerator '{accelerator}'; use 'auto', 'cpu' or 'gpu'")


def _device_batch_size(device, n_cells: int) -> int:
    import torch

    from .training import batch_size_for

    if device.type == "cuda":
        return batch_size_for(n_cells, torch.cuda.get_device_properties(device).total_memory)
    return batch_size_for(n_cells)


def _set_seed(seed: int):
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class SCHelix:
    """scHelix integration model.

    Parameters
    ----------
    adata : AnnData with raw counts in ``X`` or ``layers[layer]``.
    batch_key : column of ``adata.obs`` with the batch.
    layer : optional layer holding the counts.
    labels_key : optional cell labels, used only to build the groups of the gene partition.
    partition : optional :class:`PartitionResult` or Series of roles ("anchor"/"variant")
        indexed by var_names; computed in :meth:`train` otherwise.
    **hyperparameters : see ``DEFAULTS``.
    """

    def __init__(self, adata, batch_key: str = "batch", layer: str | None = None,
                 labels_key: str | None = None, partition=None, **hyperparameters):
        unknown = set(hyperparameters) - set(DEFAULTS)
        if unknown:
            raise SCHelixInputError(f"unknown hyperparameters {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        params = dict(DEFAULTS)
        params.update(hyperparameters)
        if params["ablation"] not in ABLATIONS:
            raise SCHelixInputError(f"ablation must be one of {ABLATIONS}, got {params['ablation']!r}")
        params["diffusion_scales"] = tuple(int(s) for s in params["diffusion_scales"])
        if isinstance(params["target_steps"], (int, float)):
            params["target_steps"] = (int(params["target_steps"]),) * 3
        params["target_steps"] = tuple(int(s) for s in params["target_steps"])
        if not 0 < float(params["alpha_max"]):
            raise SCHelixInputError("alpha_max must be positive")
        validate_counts(adata, batch_key, layer=layer, labels_key=labels_key)
        self.adata = adata
        self.batch_key = batch_key
        self.layer = layer
        self.labels_key = labels_key
        self._params = params
        self.partition_ = coerce_partition(partition, adata.var_names) if partition is not None else None
        cats = pd.Categorical(adata.obs[batch_key].astype(str))
        self.batch_categories_ = list(cats.categories)
        self._batch_codes = cats.codes.astype(np.int64)
        self.module = None
        self.history: dict[str, list[float]] = {}
        self.is_trained_ = False
        self._seed = None
        self._data = None
        self._pca_fits: dict[str, PCAFit] = {}
        self._feat_scale: dict[str, float] = {}
        self._train_info: dict = {}
        self.timings_: dict[str, float] = {}

    # ------------------------------------------------------------------ properties
    @property
    def params(self) -> dict:
        """All hyperparameters plus the seed (JSON-friendly)."""
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self._params.items()}
        out["seed"] = self._seed
        out.update({k: v for k, v in self._train_info.items()})
        return out

    @property
    def streams_(self) -> dict[str, pd.Index]:
        if self.partition_ is None:
            return {}
        if self._params["ablation"] == "no_partition":
            return {"anchor": self.adata.var_names}
        return {"anchor": self.partition_.anchors, "variant": self.partition_.variants}

    # ------------------------------------------------------------------ preparation
    def _ensure_partition(self, seed: int):
        if self.partition_ is None:
            kw = dict(self._params.get("partition_kwargs") or {})
            self.partition_ = partition_genes(self.adata, self.batch_key, layer=self.layer,
                                              labels_key=self.labels_key, seed=seed, validate=False, **kw)
        roles = self.partition_.roles
        if self._params["ablation"] != "no_partition":
            n_a, n_v = int((roles == "anchor").sum()), int((roles == "variant").sum())
            if n_a < 2 or n_v < 2:
                raise SCHelixInputError(
                    f"the partition has {n_a} anchor and {n_v} variant genes; each role needs at least 2 "
                    "(or use ablation='no_partition')"
                )

    def _gene_columns(self, Xlog, genes):
        """``(matrix, columns)`` for :func:`pca` of some genes of ``Xlog``.

        Most of the genes (the Anchors) are read in place, since a copy would nearly double the
        memory; a few (the Variants) are copied, which is faster to multiply.
        """
        cols = self.adata.var_names.get_indexer(genes)
        if 2 * len(cols) > Xlog.shape[1]:
            return Xlog, cols
        return Xlog[:, cols], None

    def _stream_features(self, Xlog, genes, key, n_pcs, seed, refit):
        Xs, columns = self._gene_columns(Xlog, genes)
        if refit or key not in self._pca_fits:
            scores, fit = pca(Xs, n_comps=n_pcs, scale=bool(self._params["scale_pcs"]), seed=seed, columns=columns)
            self._pca_fits[key] = fit
            sd = float(np.sqrt(np.mean(scores.var(axis=0)))) or 1.0
            self._feat_scale[key] = sd
        else:
            scores = self._pca_fits[key].transform(Xs, columns)
        return scores / self._feat_scale[key]

    def _prepare(self, seed: int, device, refit: bool = True):
        """Partition, PCA per stream, graph, and cached multi-scale diffusion (computed once).

        The graph's cross-batch neighbours are found on Harmony-corrected Anchor PCs: on the
        raw PCs a strong condition effect (Kang's IFN-beta stimulation) linked stimulated cells
        to the wrong control types, and diffusion then blurred the types (total 0.788; 0.823 on
        the corrected PCs, mean over the six benchmark data sets 0.791 -> 0.799). Harmony only
        picks the neighbours: the features diffused are the streams' own PCs.
        """
        import torch

        from .training import TrainData, preferred_neighbours

        clock = time.perf_counter()

        def lap(stage):
            nonlocal clock
            now = time.perf_counter()
            self.timings_[stage] = now - clock
            clock = now

        self._ensure_partition(seed)
        lap("partition")
        X, _ = get_counts(self.adata, self.layer)
        Xlog = log_normalize(X)
        streams = self.streams_
        scales = (0,) if self._params["ablation"] == "no_diffusion" else self._params["diffusion_scales"]
        xa = self._stream_features(Xlog, streams["anchor"], "anchor", self._params["n_pcs_anchor"], seed, refit)
        xv = None
        if "variant" in streams:
            xv = self._stream_features(Xlog, streams["variant"], "variant", self._params["n_pcs_variant"],
                                       seed, refit)
        graph_pcs = xa
        if self._params["scale_pcs"] and not self._params["scale_graph_pcs"]:
            Xgraph = cosine_normalize(Xlog) if self._params["cosine_graph"] else Xlog
            Xs, columns = self._gene_columns(Xgraph, streams["anchor"])
            graph_pcs, _ = pca(Xs, n_comps=self._params["n_pcs_anchor"], scale=False, seed=seed, columns=columns)
        lap("pca")
        A = graph.batch_balanced_knn(harmony_corrected(graph_pcs, self._batch_codes, seed), self._batch_codes,
                                     k=int(self._params["n_neighbors"]), seed=seed)
        A_hat = graph.to_torch_sparse(graph.normalized_adjacency(A)).to(device)
        lap("graph")
        feats_a = [f.to(device) for f in graph.diffuse(A_hat, torch.from_numpy(xa).to(device), scales)]
        feats_v = None
        if xv is not None:
            feats_v = [f.to(device) for f in graph.diffuse(A_hat, torch.from_numpy(xv).to(device), scales)]
        lap("diffusion_cache")
        indptr, indices = preferred_neighbours(A, self._batch_codes)
        self._graph = A
        self._data = TrainData(
            feats_a=feats_a,
            feats_v=feats_v,
            batch=torch.from_numpy(self._batch_codes).to(device),
            nbr_indptr=indptr.to(device),
            nbr_indices=indices.to(device),
            n_batches=len(self.batch_categories_),
        )
        self._scales = scales
        return self._data

    def _build_module(self):
        from .module import SCHelixModule

        p = self._params
        d = self._data
        abl = p["ablation"]
        self.module = SCHelixModule(
            dim_a=d.feats_a[0].shape[1],
            dim_v=d.feats_v[0].shape[1] if d.feats_v is not None else 0,
            n_scales=len(d.feats_a),
            n_batches=d.n_batches,
            n_latent=int(p["n_latent"]),
            scale_dim=int(p["scale_dim"]),
            n_hidden=int(p["n_hidden"]),
            dropout=float(p["dropout"]),
            alpha_max=float(p["alpha_max"]),
            bounded_gate=abl != "unbounded_gate",
            fusion="concat" if abl == "concat" else "gate",
        )
        return self.module

    # ------------------------------------------------------------------ training
    def train(self, accelerator: str = "auto", seed: int = 0, max_epochs=None, max_epochs_phase0=None,
              max_epochs_phase1=None, max_epochs_phase2=None, batch_size: int | None = None,
              num_threads: int = 1, progress_bar: bool = True, deterministic: bool = True):
        """Fit the model (partition if needed, cached diffusion, phases 0-2). Returns self."""
        import torch

        device = _resolve_device(accelerator)
        if num_threads is not None and int(num_threads) > 0:
            torch.set_num_threads(int(num_threads))
        if batch_size is not None:
            self._params["batch_size"] = int(batch_size)
        prev_det = torch.are_deterministic_algorithms_enabled()
        prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
        if deterministic and device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            self._fit(device, seed, max_epochs, max_epochs_phase0, max_epochs_phase1, max_epochs_phase2,
                      progress_bar)
        finally:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        return self

    def _fit(self, device, seed, max_epochs, max_epochs_phase0, max_epochs_phase1, max_epochs_phase2,
             progress_bar):
        from .training import epochs_for, train_protocol

        self._seed = int(seed)
        _set_seed(self._seed)
        self._prepare(self._seed, device, refit=True)
        _set_seed(self._seed)
        self._build_module().to(device)

        n = self.adata.n_obs
        bs = self._params["batch_size"]
        bs = _device_batch_size(device, n) if bs is None else int(bs)
        if max_epochs is None:
            epochs = [epochs_for(n, bs, t) for t in self._params["target_steps"]]
        elif isinstance(max_epochs, (int, np.integer)):
            epochs = [int(max_epochs)] * 3
        else:
            epochs = [int(e) for e in max_epochs]
            if len(epochs) != 3:
                raise SCHelixInputError("max_epochs must be an int or a (phase0, phase1, phase2) tuple")
        for i, e in enumerate((max_epochs_phase0, max_epochs_phase1, max_epochs_phase2)):
            if e is not None:
                epochs[i] = int(e)
        params = {**self._params, "batch_size": bs}
        self.history, groups = train_protocol(self.module, self._data, params, tuple(epochs), seed=self._seed,
                                              progress_bar=progress_bar, device=device,
                                              timings=self.timings_)
        self._mix_groups = groups
        self._train_info = {"epochs": list(epochs), "device": str(device), "batch_size": bs}
        self.is_trained_ = True

    # ------------------------------------------------------------------ outputs
    def _check_trained(self):
        if not self.is_trained_ or self.module is None:
            raise RuntimeError("the model is not trained yet; call .train() first")

    def get_latent_representation(self, which: str = "fused") -> np.ndarray:
        """Embedding (n_cells x n_latent; 2*n_latent for the "concat" ablation).

        ``which`` in {"fused", "anchor", "variant"}.
        """
        from .training import encode_all

        self._check_trained()
        what = which
        if self._params["ablation"] in ("no_refine", "no_fusion") and which == "fused":
            what = "anchor"
        start = time.perf_counter()
        z = encode_all(self.module, self._data, what).detach().cpu().numpy().astype(np.float32)
        self.timings_["embedding"] = time.perf_counter() - start
        return z

    def gate_weights(self) -> np.ndarray:
        """Per-cell, per-dimension gate |alpha * tanh(g)| on the Variant message (gate fusion only)."""
        import torch

        self._check_trained()
        if not self.module.has_v or self.module.fusion != "gate":
            raise RuntimeError("this model has no fusion gate")
        self.module.eval()
        with torch.no_grad():
            za = self.module.enc_a(self._data.feats_a)
            zv = self.module.enc_v(self._data.feats_v)
            return self.module.gate.gate(za, zv).abs().cpu().numpy()

    # ------------------------------------------------------------------ persistence
    def save(self, dir_path, overwrite: bool = True):
        """Write the model to ``dir_path``, all or nothing.

        The files are written to a temporary folder beside it, which then takes its place, so an
        interrupted save leaves the previous model (or no folder), never a mix of the two. A folder
        holding anything but a saved model is refused rather than replaced.
        """
        import shutil
        import tempfile

        self._check_trained()
        d = Path(dir_path)
        check_model_folder(d, overwrite)
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=d.parent, prefix=f".{d.name}.saving-"))
        try:
            # mkdtemp makes the folder private (0o700); give it the mode a plain mkdir would
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)
            self._write_files(tmp)
            if d.exists():
                previous = Path(tempfile.mkdtemp(dir=d.parent, prefix=f".{d.name}.previous-"))
                os.replace(d, previous)
                os.replace(tmp, d)
                shutil.rmtree(previous)
            else:
                os.replace(tmp, d)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)

    def _write_files(self, d: Path):
        import torch

        torch.save({k: v.detach().cpu() for k, v in self.module.state_dict().items()}, d / _STATE_FILE)
        arrays = {}
        for key, fit in self._pca_fits.items():
            arrays[f"{key}_components"] = fit.components
            arrays[f"{key}_mean"] = fit.mean
            arrays[f"{key}_scale"] = fit.scale
        np.savez(d / _ARRAYS_FILE, **arrays)
        meta = {
            "params": self.params,
            "batch_key": self.batch_key,
            "layer": self.layer,
            "labels_key": self.labels_key,
            "batch_categories": self.batch_categories_,
            "feat_scale": self._feat_scale,
            "history": self.history,
            "var_names": list(map(str, self.adata.var_names)),
        }
        (d / _META_FILE).write_text(json.dumps(meta, indent=1, default=str))
        self.partition_.to_frame().to_csv(d / _PARTITION_FILE, sep="\t")

    @classmethod
    def load(cls, dir_path, adata, accelerator: str = "auto") -> "SCHelix":
        import torch

        d = Path(dir_path)
        meta = json.loads((d / _META_FILE).read_text())
        if list(map(str, adata.var_names)) != meta["var_names"]:
            raise SCHelixInputError("adata.var_names differ from those the model was trained on")
        p = dict(meta["params"])
        seed = p.pop("seed")
        info = {k: p.pop(k) for k in ("epochs", "device") if k in p}
        part = pd.read_csv(d / _PARTITION_FILE, sep="\t", index_col=0)
        model = cls(adata, meta["batch_key"], layer=meta["layer"], labels_key=meta["labels_key"],
                    partition=part, **p)
        model.partition_.scores = part["score"].reindex(adata.var_names).astype(float)
        if list(model.batch_categories_) != list(meta["batch_categories"]):
            raise SCHelixInputError(
                f"batches of adata {model.batch_categories_} differ from the model's {meta['batch_categories']}"
            )
        arr = np.load(d / _ARRAYS_FILE)
        for key in ("anchor", "variant"):
            if f"{key}_components" in arr:
                model._pca_fits[key] = PCAFit(arr[f"{key}_components"], arr[f"{key}_mean"], arr[f"{key}_scale"])
        model._feat_scale = {k: float(v) for k, v in meta["feat_scale"].items()}
        device = _resolve_device(accelerator)
        model._seed = seed
        model._prepare(seed, device, refit=False)
        model._build_module().to(device)
        state = torch.load(d / _STATE_FILE, weights_only=True, map_location=device)
        model.module.load_state_dict(state)
        model.history = meta["history"]
        model._train_info = info
        model.is_trained_ = True
        return model


def integrate(adata, batch_key: str = "batch", seed: int = 0, layer: str | None = None,
              labels_key: str | None = None, partition=None, accelerator: str = "auto",
              num_threads: int = 1, progress_bar: bool = False, max_epochs=None, **hyperparameters) -> np.ndarray:
    """One-call integration: returns the scHelix embedding (n_cells x n_latent)."""
    model = SCHelix(adata, batch_key, layer=layer, labels_key=labels_key, partition=partition, **hyperparameters)
    model.train(accelerator=accelerator, seed=seed, num_threads=num_threads, progress_bar=progress_bar,
                max_epochs=max_epochs)
    return model.get_latent_representation()
