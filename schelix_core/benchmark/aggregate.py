"""From per-run metric tables to the summary: scIB aggregation (batch 0.4, bio 0.6).

Scores are reported on raw metric values and, as in the scIB paper, on values min-max scaled
across methods within a dataset. Failed runs stay in every table with their reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from schelix_core.benchmark.metrics import BATCH, BIO

BATCH_WEIGHT, BIO_WEIGHT = 0.4, 0.6
RUN_KEYS = ["dataset", "method", "seed"]


def run_scores(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, method, seed): batch, bio and total, raw and min-max scaled."""
    ok = metrics[metrics["status"] == "ok"].copy()
    if ok.empty:
        return pd.DataFrame(columns=RUN_KEYS)
    span = ok.groupby(["dataset", "metric"])["value"].agg(["min", "max"])
    ok = ok.join(span, on=["dataset", "metric"])
    width = (ok["max"] - ok["min"]).replace(0, np.nan)
    ok["scaled"] = ((ok["value"] - ok["min"]) / width).fillna(0.0)
    out = []
    for column, suffix in (("value", ""), ("scaled", "_scaled")):
        by_type = ok.pivot_table(index=RUN_KEYS, columns="metric_type", values=column, aggfunc="mean")
        by_type = by_type.reindex(columns=[BATCH, BIO])
        by_type.columns = [f"{BATCH}{suffix}", f"{BIO}{suffix}"]
        by_type[f"total{suffix}"] = BATCH_WEIGHT * by_type[f"{BATCH}{suffix}"] + BIO_WEIGHT * by_type[f"{BIO}{suffix}"]
        out.append(by_type)
    return pd.concat(out, axis=1).reset_index()


def read_benchmark(path: str | Path) -> dict:
    """Snakemake's benchmark file: wall seconds and peak resident memory (MB)."""
    table = pd.read_csv(path, sep="\t")
    return {"runtime_s": float(table["s"].iloc[-1]), "peak_mem_mb": float(table["max_rss"].iloc[-1])}


def summarise(metrics: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, method): mean and sd over seeds, resources, status."""
    scores = run_scores(metrics)
    runs = runs.merge(scores, on=RUN_KEYS, how="left") if not scores.empty else runs
    value_cols = [c for c in runs.columns if c.startswith((BATCH, BIO, "total"))]
    rows = []
    for (dataset, method), group in runs.groupby(["dataset", "method"], sort=False):
        row = {"dataset": dataset, "method": method}
        for col in value_cols:
            row[f"{col}_mean"] = group[col].mean()
            row[f"{col}_sd"] = group[col].std(ddof=1) if group[col].notna().sum() > 1 else np.nan
        row["runtime_s"] = group["runtime_s"].median()
        row["peak_mem_mb"] = group["peak_mem_mb"].max()
        failed = group[group["status"] != "ok"]
        row["n_seeds"] = len(group)
        row["n_seeds_ok"] = len(group) - len(failed)
        if failed.empty:
            row["status"] = "ok"
        else:
            row["status"] = f"failed {len(failed)}/{len(group)}: {failed['error'].iloc[0][:200]}"
        for flag in ("uses_labels", "is_control", "output_type", "engine"):
            row[flag] = group[flag].iloc[0]
        rows.append(row)
    summary = pd.DataFrame(rows)
    if "total_mean" in summary:
        summary = summary.sort_values(["dataset", "total_mean"], ascending=[True, False], na_position="last")
    return summary.reset_index(drop=True)


def format_mean_sd(mean, sd) -> str:
    if pd.isna(mean):
        return "n/a"
    return f"{mean:.3f}" if pd.isna(sd) else f"{mean:.3f} ± {sd:.3f}"


def summary_markdown(summary: pd.DataFrame) -> str:
    """Readable tables, one per dataset, sorted by total (raw scores)."""
    lines = []
    engine = summary["engine"].dropna().unique()
    lines.append(f"Metrics engine: {', '.join(map(str, engine))}. Total = {BATCH_WEIGHT} batch + {BIO_WEIGHT} bio, raw values; mean ± sd over seeds.")
    for dataset, group in summary.groupby("dataset", sort=True):
        lines += ["", f"## {dataset}", ""]
        header = "| method | batch correction | bio conservation | total | total (scaled) | runtime (s) | peak mem (MB) | status |"
        lines += [header, "|" + "---|" * 8]
        for _, r in group.iterrows():
            name = r["method"] + (" (labels)" if r["uses_labels"] else "") + (" [control]" if r["is_control"] else "")
            lines.append(
                f"| {name} | {format_mean_sd(r.get(f'{BATCH}_mean'), r.get(f'{BATCH}_sd'))} "
                f"| {format_mean_sd(r.get(f'{BIO}_mean'), r.get(f'{BIO}_sd'))} | {format_mean_sd(r.get('total_mean'), r.get('total_sd'))} "
                f"| {format_mean_sd(r.get('total_scaled_mean'), r.get('total_scaled_sd'))} "
                f"| {r['runtime_s']:.1f} | {r['peak_mem_mb']:.0f} | {r['status']} |"
            )
    return "\n".join(lines) + "\n"
