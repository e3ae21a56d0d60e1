"""Turn ``benchmarks/results/{scaling,scaling_metrics,scaling_kmeans,scaling_gpu,startup}.csv`` and
``batch_size_quality.csv`` into ``docs/performance.md`` and a log-log figure.

Medians over repeats; the scHelix/scVI time ratio per size comes from runs made in the same
invocation of ``benchmarks/scaling.py`` (same machine, same threads). Quality at each size is the
scIB total (batch 0.4, bio 0.6, raw metric values) of the first repeat's embedding.

    python benchmarks/report_performance.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from schelix_core.benchmark.aggregate import run_scores  # noqa: E402

HERE = Path(__file__).resolve().parent
STAGES = ("partition", "pca", "graph", "diffusion_cache", "train_phase0", "train_phase1", "train_phase2", "embedding")
NOTES = [
    "- Peak memory is the peak resident memory of the method's process, including the loaded input "
    "(log-normalised `X` and the `counts` layer, as a workflow job loads it).",
    "- The simulated counts (about 2,500 per cell over 2,000 genes) have about half their entries "
    "non-zero, denser than a typical 10x matrix of highly variable genes, so memory figures are on the high side.",
    "- scVI runs with scvi-tools' default epochs, min(400, 400 x 20,000 / cells): above 20k cells it "
    "sees a constant 8 million cells in total, so its time is flat there.",
    "- scHelix trains each phase for a budget of optimiser steps (400, 250, 250 mini-batches; 256 cells each on a CPU, up "
    "to 1,024 on a GPU): "
    "whole epochs while an epoch fits in the budget, part of one beyond (from about 64k cells), so its "
    "training time is nearly flat in the cells and the same at every size; what grows is the partition, "
    "PCA and graph. Above 50,000 cells its kNN search is approximate (pynndescent).",
    "- Every method runs the workflow's own method script (`scripts/methods/`) on the same preprocessed "
    "file, in a fresh process, with the same thread count.",
    "- Metric stage: scib-metrics' silhouette-based metrics (silhouette_label, bras, isolated_labels) take "
    "time quadratic in the cells of a label (computed in chunks, so memory stays linear); the workflow "
    "prepares no n x n input.",
]
TIMES_HEADING = "## End-to-end wall time (s, median over runs) and peak resident memory (MB)"
TIME_RATIO_TARGET, MEMORY_GROWTH_TARGET, MEMORY_LIMIT_MB, STARTUP_TARGET_S = 0.5, 2.2, 8 * 1024, 10.0
QUALITY_TOLERANCE = 0.01  # total-score differences this small are within seed-to-seed spread
GPU_TARGET_CELLS = 1_000_000
GPU_COMMAND = ("python benchmarks/scaling.py --sizes 1000000 --methods schelix --accelerator gpu "
               "--metrics-sizes --out benchmarks/results/scaling_gpu.csv")


def totals(table: pd.DataFrame) -> pd.DataFrame:
    ok = table[(table["stage"] == "total") & (table["status"] == "ok")]
    return ok.groupby(["n_cells", "method"]).agg(seconds=("seconds", "median"), peak_mb=("peak_mb", "median"),
                                                 runs=("seconds", "size")).reset_index()


def quality(metrics: pd.DataFrame) -> pd.DataFrame:
    """scIB batch, bio and total per (size, method) from the metric stage's values."""
    long = metrics.assign(dataset=metrics["n_cells"], status="ok")
    scores = run_scores(long).rename(columns={"dataset": "n_cells"})
    return scores.set_index(["n_cells", "method"])


def kmeans_averaged(metrics: pd.DataFrame, kmeans: pd.DataFrame) -> pd.DataFrame:
    """Metric rows with NMI/ARI replaced by their mean over k-means seeds (``scaling_kmeans.csv``).

    Only runs whose k-means seed-0 scores there match the metric stage's are kept: a run
    re-scored since then would otherwise mix two embeddings.
    """
    keys = ["n_cells", "method", "seed"]
    recorded = metrics[metrics["metric"].isin(["nmi_kmeans", "ari_kmeans"])].pivot_table(
        index=keys, columns="metric", values="value")
    k = kmeans.set_index(keys)
    common = recorded.index.intersection(k.index)
    match = ((recorded.loc[common, "nmi_kmeans"] - k.loc[common, "nmi_kmeans_seed0"]).abs() < 1e-3) & \
            ((recorded.loc[common, "ari_kmeans"] - k.loc[common, "ari_kmeans_seed0"]).abs() < 1e-3)
    current = match[match].index
    means = k.loc[current, ["nmi_mean", "ari_mean"]].rename(columns={"nmi_mean": "nmi_kmeans", "ari_mean": "ari_kmeans"})
    means = means.stack().rename("averaged")
    means.index = means.index.set_names("metric", level=-1)
    rows = metrics.set_index(keys).loc[current].reset_index().join(means, on=[*keys, "metric"])
    rows["value"] = rows["averaged"].fillna(rows["value"])
    return rows.drop(columns="averaged")


def _cell(frame, n, m, fmt):
    return fmt.format(frame.loc[n, m]) if m in frame.columns and n in frame.index and pd.notna(frame.loc[n, m]) else "n/a"


def metrics_section(metrics: pd.DataFrame, kmeans: pd.DataFrame | None = None) -> list[str]:
    per_run = metrics.groupby(["n_cells", "method"]).agg(seconds=("seconds", "first"), peak_mb=("peak_mb", "first"))
    secs, mem = per_run["seconds"].unstack(), per_run["peak_mb"].unstack()
    scores = quality(metrics)
    total = scores["total"].unstack()
    methods = list(secs.columns)
    lines = ["", "## Metric stage per embedding: seconds (peak MB)", "",
             "The workflow's `compute_metrics` (scib-metrics, 10 metrics) on each method's first-repeat "
             "embedding, in its own process; peak memory includes the preprocessed input it reads.", "",
             "| cells | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for n in secs.index:
        lines.append(f"| {n:,} | " + " | ".join(f"{_cell(secs, n, m, '{:.0f}')} ({_cell(mem, n, m, '{:.0f}')})"
                                                  for m in methods) + " |")
    lines += ["", "## Quality at each size: scIB total (batch 0.4, bio 0.6; raw metric values)", "",
              "| cells | " + " | ".join(total.columns) + " | scHelix - scVI |", "|---" * (len(total.columns) + 2) + "|"]
    for n in total.index:
        gap = total.loc[n, "schelix"] - total.loc[n, "scvi"] if {"schelix", "scvi"} <= set(total.columns) else float("nan")
        lines.append(f"| {n:,} | " + " | ".join(_cell(total, n, m, "{:.3f}") for m in total.columns)
                     + (" | n/a |" if pd.isna(gap) else f" | {gap:+.3f} |"))
    averaged = kmeans_averaged(metrics, kmeans) if kmeans is not None else None
    if averaged is not None and not averaged.empty:
        total = quality(averaged)["total"].unstack()
        ari = kmeans.groupby(["n_cells", "method"]).agg(lo=("ari_min", "min"), hi=("ari_max", "max"),
                                                       mean=("ari_mean", "mean"))
        n_seeds = int(kmeans["n_kmeans_seeds"].iloc[0])
        lines += ["", f"## Quality with NMI and ARI averaged over {n_seeds} k-means seeds", "",
                  "scib-metrics clusters each embedding once (k-means seed 0), and on these data the clustering "
                  "alone moves ARI by up to 0.3. `python benchmarks/kmeans_seed_sensitivity.py --scaling-dir "
                  "<data dir>` re-clusters the same embeddings (it refuses any whose seed-0 scores differ from "
                  "the metric stage's); the other eight metrics are as above. ARI: mean (min-max over k-means seeds).", "",
                  "| cells | " + " | ".join(f"{m} total | {m} ARI" for m in total.columns) + " |",
                  "|---" * (2 * len(total.columns) + 1) + "|"]
        for n in total.index:
            cells = []
            for m in total.columns:
                spread = (f"{ari.loc[(n, m), 'mean']:.3f} ({ari.loc[(n, m), 'lo']:.2f}-{ari.loc[(n, m), 'hi']:.2f})"
                          if (n, m) in ari.index and pd.notna(total.loc[n, m]) else "n/a")
                cells.append(f"{_cell(total, n, m, '{:.3f}')} | {spread}")
            lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    return lines


def gpu_runs(gpu: pd.DataFrame | None) -> pd.DataFrame:
    """scHelix's finished GPU runs: medians per size of time, resident and GPU memory."""
    if gpu is None:
        return pd.DataFrame()
    ok = gpu[(gpu["stage"] == "total") & (gpu["status"] == "ok") & (gpu["method"] == "schelix")]
    if ok.empty:
        return pd.DataFrame()
    return ok.groupby("n_cells").agg(seconds=("seconds", "median"), peak_mb=("peak_mb", "median"),
                                     gpu_peak_mb=("gpu_peak_mb", "median"), batch_size=("batch_size", "first"),
                                     gpu=("gpu", "first"), runs=("seconds", "size"))


def batch_size_section(table: pd.DataFrame) -> list[str]:
    """Scores of mini-batch sizes up to and past the GPU's, trained on a CPU (``batch_size_quality.py``)."""
    long = table.assign(dataset=table["kmeans"], method=table["batch_size"], status="ok")
    runs = table.groupby(["n_cells", "batch_size", "seed"])["train_s"].first()
    lines = ["", "## Mini-batch size and quality (larger mini-batches, trained on a CPU)", "",
             "A GPU trains with up to 1,024 cells a step, a CPU with 256, for the same step budget. Here "
             "larger sizes are trained on this CPU and scored by the workflow's metric stage, and again with "
             f"NMI/ARI averaged over {int(table['n_kmeans_seeds'].iloc[0])} k-means seeds. Written by: "
             + "; ".join(f"`{c}`" for c in table["command"].unique()) + ".", "",
             "| cells | cells a step | seed | batch | bio | total | total, NMI/ARI averaged | wall s (this CPU, shared) |",
             "|---|---|---|---|---|---|---|---|"]
    totals = []
    for (n, size, seed), seconds in runs.items():
        first = long[(long["n_cells"] == n) & (long["batch_size"] == size) & (long["seed"] == seed)]
        s0 = run_scores(first[first["kmeans"] == "seed0"]).iloc[0]
        sa = run_scores(first[first["kmeans"] == "averaged"]).iloc[0]
        lines.append(f"| {n:,} | {size} | {seed} | {s0['batch_correction']:.3f} | {s0['bio_conservation']:.3f} | "
                     f"{s0['total']:.3f} | {sa['total']:.3f} | {seconds:.0f} |")
        totals.append({"n_cells": n, "batch_size": size, "total": s0["total"], "averaged": sa["total"]})
    means = pd.DataFrame(totals).groupby(["n_cells", "batch_size"]).agg(
        total=("total", "mean"), averaged=("averaged", "mean"), seeds=("total", "size"))
    lines += ["", "Mean over seeds:", "", "| cells | cells a step | seeds | total | total, NMI/ARI averaged |",
              "|---|---|---|---|---|"]
    lines += [f"| {n:,} | {size} | {int(r['seeds'])} | {r['total']:.3f} | {r['averaged']:.3f} |"
              for (n, size), r in means.iterrows()]
    return lines


def gpu_section(gpu: pd.DataFrame | None) -> list[str]:
    runs = gpu_runs(gpu)
    lines = ["", "## scHelix on a GPU", ""]
    if runs.empty:
        return lines + ["Not measured yet: no GPU machine has run `" + GPU_COMMAND + "` (it writes "
                        "`benchmarks/results/scaling_gpu.csv`, which this report then reads)."]
    stages = gpu[(gpu["method"] == "schelix") & gpu["stage"].isin(STAGES) & (gpu["status"] == "ok")]
    med = stages.groupby(["n_cells", "stage"])["seconds"].median()
    lines += ["| cells | GPU | mini-batch | seconds | peak GPU MB | peak resident MB | runs | "
              + " | ".join(f"{s} s" for s in STAGES) + " |", "|---" * (7 + len(STAGES)) + "|"]
    for n, r in runs.iterrows():
        lines.append(f"| {n:,} | {r['gpu']} | {int(r['batch_size'])} | {r['seconds']:.1f} | {r['gpu_peak_mb']:.0f} | "
                     f"{r['peak_mb']:.0f} | {int(r['runs'])} | "
                     + " | ".join(f"{med[(n, s)]:.1f}" if (n, s) in med.index else "n/a" for s in STAGES) + " |")
    commands = gpu["command"].dropna().unique().tolist() if "command" in gpu else []
    return lines + ["", "Written by: " + "; ".join(f"`{c}`" for c in commands or [GPU_COMMAND]) + "."]


def targets_section(table: pd.DataFrame, metrics: pd.DataFrame | None, startup: pd.DataFrame | None,
                    kmeans: pd.DataFrame | None = None, gpu: pd.DataFrame | None = None) -> list[str]:
    """Issue #6's targets, each with the measured figure and a verdict computed here."""
    tot = totals(table)
    secs = tot.pivot(index="n_cells", columns="method", values="seconds")
    mem = tot.pivot(index="n_cells", columns="method", values="peak_mb")
    rows = []

    def verdict(ok):
        return "n/a (not measured)" if ok is None else ("met" if ok else "**not met**")

    ratio = secs.loc[100_000, "schelix"] / secs.loc[100_000, "scvi"] if 100_000 in secs.index and \
        {"schelix", "scvi"} <= set(secs.columns) else None
    rows.append(("scHelix time at 100k cells <= 0.5x scVI's",
                 "n/a" if ratio is None else f"{ratio:.2f}x", verdict(None if ratio is None else ratio <= TIME_RATIO_TARGET)))
    growth = mem.loc[200_000, "schelix"] / mem.loc[100_000, "schelix"] if {100_000, 200_000} <= set(mem.index) \
        and "schelix" in mem.columns else None
    rows.append(("scHelix peak memory 200k / 100k <= 2.2x", "n/a" if growth is None else f"{growth:.2f}x",
                 verdict(None if growth is None else growth <= MEMORY_GROWTH_TARGET)))
    peak = mem.loc[200_000, "schelix"] if 200_000 in mem.index and "schelix" in mem.columns else None
    rows.append(("scHelix peak memory at 200k < 8 GB", "n/a" if peak is None else f"{peak / 1024:.2f} GB",
                 verdict(None if peak is None else peak < MEMORY_LIMIT_MB)))
    if metrics is not None:
        total = quality(metrics)["total"].unstack()
        own = total["schelix"].dropna() if "schelix" in total.columns else pd.Series(dtype=float)
        if 100_000 in own.index and own.index.min() < 100_000:
            small = own.index.min()
            rows.append((f"scHelix quality at 100k: total vs its own at {small:,} cells (no loss at scale)",
                         f"{own[100_000]:.3f} vs {own[small]:.3f}",
                         verdict(own[100_000] >= own[small] - QUALITY_TOLERANCE)))
            averaged = kmeans_averaged(metrics, kmeans) if kmeans is not None else None
            robust = quality(averaged)["total"] if averaged is not None and not averaged.empty else None
            if robust is not None and {(100_000, "schelix"), (small, "schelix")} <= set(robust.index):
                big, ref = robust[(100_000, "schelix")], robust[(small, "schelix")]
                rows.append((f"scHelix quality at 100k vs {small:,} cells, NMI/ARI averaged over k-means seeds",
                             f"{big:.3f} vs {ref:.3f}", verdict(big >= ref - QUALITY_TOLERANCE)))
        if 100_000 in own.index and "scvi" in total.columns and pd.notna(total.loc[100_000, "scvi"]):
            rows.append(("scHelix quality at 100k: total vs scVI's",
                         f"{own[100_000]:.3f} vs {total.loc[100_000, 'scvi']:.3f}",
                         verdict(own[100_000] >= total.loc[100_000, "scvi"] - QUALITY_TOLERANCE)))
    if startup is not None:
        med = startup.groupby("case")["seconds"].median()
        worst = med.drop([c for c in med.index if "umap and pynndescent imported" in c]).max()
        rows.append(("per-job start-up overhead < 10 s (warm caches, worst job kind)", f"{worst:.1f} s",
                     verdict(worst < STARTUP_TARGET_S)))
    runs = gpu_runs(gpu)
    measured = runs.loc[GPU_TARGET_CELLS] if GPU_TARGET_CELLS in runs.index else None
    rows.append(("scHelix at 1,000,000 cells on a GPU: time and peak GPU memory",
                 "n/a" if measured is None else f"{measured['seconds']:.1f} s, {measured['gpu_peak_mb'] / 1024:.2f} GB",
                 "n/a (not measured)" if measured is None else "reported"))
    lines = ["", "## Targets (issue #6)", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {v} |" for t, m, v in rows]
    return lines


def startup_section(startup: pd.DataFrame) -> list[str]:
    med = startup.groupby("case")["seconds"].agg(["median", "size"])
    lines = ["", "## Per-job start-up overhead (s, median; warm caches)", "",
             f"From `benchmarks/results/startup.csv` (`python benchmarks/startup.py`, on {startup['machine'].iloc[0]}).", "",
             "| job kind | seconds | runs |", "|---|---|---|"]
    lines += [f"| {case} | {r['median']:.2f} | {int(r['size'])} |" for case, r in med.iterrows()]
    return lines


def _commands(table: pd.DataFrame, metrics: pd.DataFrame | None) -> list[str]:
    """Every scaling.py invocation behind the figures, timings' and metric scores' alike."""
    found = [t["command"].dropna().tolist() for t in (table, metrics) if t is not None and "command" in t]
    return list(dict.fromkeys(c for part in found for c in part)) or ["python benchmarks/scaling.py"]


def markdown(table: pd.DataFrame, command: str, metrics: pd.DataFrame | None = None,
             startup: pd.DataFrame | None = None, kmeans: pd.DataFrame | None = None,
             gpu: pd.DataFrame | None = None, batch_sizes: pd.DataFrame | None = None) -> str:
    tot = totals(table)
    wide = tot.pivot(index="n_cells", columns="method", values="seconds")
    mem = tot.pivot(index="n_cells", columns="method", values="peak_mb")
    runs = tot.pivot(index="n_cells", columns="method", values="runs")
    machine = table[["machine", "cpu", "n_cpus", "threads"]].iloc[0]
    lines = [
        "# Performance",
        "",
        f"Measured on `{machine['machine']}` ({machine['cpu']}, {machine['n_cpus']} CPUs), "
        f"{machine['threads']} threads per method, CPU only. Generated by `{command}` from "
        "`benchmarks/results/scaling.csv` and `scaling_metrics.csv`, written by:",
        "",
        *[f"    {c}" for c in _commands(table, metrics)],
        "",
        TIMES_HEADING,
        "",
        "| cells | " + " | ".join(f"{m} s" for m in wide.columns) + " | scHelix/scVI time | "
        + " | ".join(f"{m} MB" for m in mem.columns) + " | runs |",
        "|---" * (2 * len(wide.columns) + 3) + "|",
    ]
    for n in wide.index:
        ratio = wide.loc[n, "schelix"] / wide.loc[n, "scvi"] if {"schelix", "scvi"} <= set(wide.columns) else float("nan")
        lines.append(
            f"| {n:,} | " + " | ".join(_cell(wide, n, m, "{:.1f}") for m in wide.columns)
            + (" | n/a | " if pd.isna(ratio) else f" | {ratio:.2f} | ")
            + " | ".join(_cell(mem, n, m, "{:.0f}") for m in mem.columns) + f" | {int(runs.loc[n].max())} |"
        )
    failed = table[(table["stage"] == "total") & (table["status"] != "ok")]
    if not failed.empty:
        def largest_finished(method):
            done = tot[tot["method"] == method]
            if done.empty:
                return "none finished"
            last = done.loc[done["n_cells"].idxmax()]
            return f"largest finished: {last['n_cells']:,} cells, peak {last['peak_mb'] / 1024:.1f} GB"

        lines += ["", "Runs that did not finish (failed, or stopped where they would not fit in memory): "
                  + "; ".join(f"{r.method} at {r.n_cells:,} cells ({largest_finished(r.method)})"
                              for r in failed.itertuples()) + "."]
    stages = table[(table["method"] == "schelix") & table["stage"].isin(STAGES) & (table["status"] == "ok")]
    if not stages.empty:
        med = stages.groupby(["n_cells", "stage"]).agg(seconds=("seconds", "median"), peak_mb=("peak_mb", "median"))
        lines += ["", "## scHelix by stage: seconds (peak MB during the stage)", "",
                  "| cells | " + " | ".join(STAGES) + " |", "|---" * (len(STAGES) + 1) + "|"]
        for n in sorted(stages["n_cells"].unique()):
            cells = [f"{med.loc[(n, s), 'seconds']:.1f} ({med.loc[(n, s), 'peak_mb']:.0f})" if (n, s) in med.index
                     else "n/a" for s in STAGES]
            lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    if "schelix" in mem.columns and len(mem.index) > 1:
        sizes = sorted(mem.index)
        growth = [f"{b:,}/{a:,}: {mem.loc[b, 'schelix'] / mem.loc[a, 'schelix']:.2f}x memory for {b / a:.1f}x cells"
                  for a, b in zip(sizes, sizes[1:])]
        lines += ["", "scHelix peak memory growth: " + "; ".join(growth) + "."]
    if metrics is not None:
        lines += metrics_section(metrics, kmeans)
    if startup is not None:
        lines += startup_section(startup)
    if batch_sizes is not None:
        lines += batch_size_section(batch_sizes)
    lines += gpu_section(gpu)
    lines += ["", "![time and memory against cells](performance.png)", "", "## How to read these figures", "", *NOTES, ""]
    at = lines.index(TIMES_HEADING)  # the targets come first, right after the header
    return "\n".join(lines[:at] + targets_section(table, metrics, startup, kmeans, gpu)[1:] + [""] + lines[at:])


def figure(table: pd.DataFrame, path: Path) -> None:
    tot = totals(table)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for method, group in tot.groupby("method"):
        axes[0].loglog(group["n_cells"], group["seconds"], marker="o", label=method)
        axes[1].loglog(group["n_cells"], group["peak_mb"], marker="o", label=method)
    axes[0].set(xlabel="cells", ylabel="wall time (s)")
    axes[1].set(xlabel="cells", ylabel="peak resident memory (MB)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=HERE / "results" / "scaling.csv")
    p.add_argument("--docs", type=Path, default=HERE.parent / "docs")
    args = p.parse_args(argv)
    table = pd.read_csv(args.results)
    metrics_path = args.results.with_name(args.results.stem + "_metrics.csv")
    startup_path = args.results.with_name("startup.csv")
    metrics = pd.read_csv(metrics_path) if metrics_path.exists() else None
    startup = pd.read_csv(startup_path) if startup_path.exists() else None
    kmeans_path = args.results.with_name(args.results.stem + "_kmeans.csv")
    kmeans = pd.read_csv(kmeans_path) if kmeans_path.exists() else None
    gpu_path = args.results.with_name(args.results.stem + "_gpu.csv")
    gpu = pd.read_csv(gpu_path) if gpu_path.exists() else None
    batch_size_path = args.results.with_name("batch_size_quality.csv")
    batch_sizes = pd.read_csv(batch_size_path) if batch_size_path.exists() else None
    args.docs.mkdir(parents=True, exist_ok=True)
    figure(table, args.docs / "performance.png")
    text = markdown(table, "python benchmarks/report_performance.py", metrics, startup, kmeans, gpu,
                    batch_sizes)
    (args.docs / "performance.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
