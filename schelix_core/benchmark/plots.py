"""Report figures: the scIB-style results table, resources, completeness and UMAP grids."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from schelix_core.benchmark.metrics import BATCH, BIO  # noqa: E402

SCORE_COLUMNS = ((f"{BATCH}_mean", "Batch correction"), (f"{BIO}_mean", "Bio conservation"), ("total_mean", "Total"))


def _label(row) -> str:
    return row["method"] + (" (labels)" if row["uses_labels"] else "")


def results_table_figure(summary: pd.DataFrame):
    """Methods x scores per dataset, sorted by total, coloured by value (scIB style)."""
    datasets = sorted(summary["dataset"].unique())
    heights = [max(2.0, 0.32 * (summary["dataset"] == d).sum() + 1) for d in datasets]
    fig, axes = plt.subplots(len(datasets), 1, figsize=(7.5, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    cmap = plt.get_cmap("PRGn")
    for ax, dataset in zip(axes[:, 0], datasets):
        group = summary[summary["dataset"] == dataset].sort_values("total_mean", ascending=False, na_position="last")
        values = group[[c for c, _ in SCORE_COLUMNS]].to_numpy(dtype=float)
        ax.imshow(np.nan_to_num(values, nan=0.0), cmap=cmap, vmin=0, vmax=1, aspect="auto")
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                text = "failed" if np.isnan(values[i, j]) else f"{values[i, j]:.3f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(SCORE_COLUMNS)), [name for _, name in SCORE_COLUMNS])
        ax.set_yticks(range(len(group)), [_label(r) for _, r in group.iterrows()], fontsize=8)
        ax.xaxis.tick_top()
        ax.set_title(f"{dataset} (raw scores, mean over seeds)", fontsize=10, pad=22)
    fig.tight_layout()
    return fig


def resources_figure(summary: pd.DataFrame):
    """Median wall time and peak memory of each method's integration job."""
    table = summary.groupby("method")[["runtime_s", "peak_mem_mb"]].max().sort_values("runtime_s")
    fig, axes = plt.subplots(1, 2, figsize=(10, max(3, 0.3 * len(table) + 1)))
    axes[0].barh(table.index, table["runtime_s"], color="tab:blue")
    axes[0].set_xlabel("wall time (s, median over seeds; max over datasets)")
    axes[1].barh(table.index, table["peak_mem_mb"], color="tab:orange")
    axes[1].set_xlabel("peak resident memory (MB)")
    axes[1].set_yticks([])
    fig.tight_layout()
    return fig


def completeness_figure(runs: pd.DataFrame):
    """Every dataset x method x seed: green ran, red failed. Nothing is dropped silently."""
    runs = runs.assign(column=runs["dataset"] + " / seed " + runs["seed"].astype(str))
    grid = runs.pivot_table(index="method", columns="column", values="status", aggfunc="first")
    ok = (grid == "ok").to_numpy()
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * grid.shape[1] + 3), max(3, 0.3 * grid.shape[0] + 1)))
    colours = matplotlib.colors.ListedColormap(["tab:red", "tab:green"])
    ax.imshow(ok.astype(float), cmap=colours, vmin=0, vmax=1, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            ax.text(j, i, "ok" if ok[i, j] else "failed", ha="center", va="center", fontsize=7, color="white")
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=8)
    n_failed = int((~ok).sum())
    ax.set_title(f"Completeness: {ok.size - n_failed}/{ok.size} runs ok", fontsize=10)
    fig.tight_layout()
    return fig


def umap_grid_figure(coords: dict, batches, labels, title: str):
    """One row per method, coloured by batch (left) and cell type (right)."""
    methods = list(coords)
    fig, axes = plt.subplots(len(methods), 2, figsize=(8, 3.6 * len(methods)), squeeze=False)
    batches = pd.Categorical(batches)
    labels = pd.Categorical(labels)
    for row, method in enumerate(methods):
        xy = coords[method]
        for col, (values, name) in enumerate(((batches, "batch"), (labels, "cell type"))):
            ax = axes[row, col]
            if xy is None:
                ax.text(0.5, 0.5, "failed", ha="center", va="center", transform=ax.transAxes, color="tab:red")
            else:
                cmap = plt.get_cmap("tab10" if len(values.categories) <= 10 else "tab20")
                for k, cat in enumerate(values.categories):
                    mask = np.asarray(values == cat)
                    ax.scatter(xy[mask, 0], xy[mask, 1], s=2, color=cmap(k % cmap.N), label=cat, rasterized=True)
                if row == 0:
                    ax.legend(markerscale=4, fontsize=6, loc="best", frameon=False)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{method}: {name}", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
