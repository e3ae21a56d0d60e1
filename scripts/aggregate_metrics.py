"""Rule aggregate_metrics: the long metrics table, the run table and the summaries."""

from schelix_core.benchmark.workflow_io import logged, write_atomic

with logged(snakemake):
    import pandas as pd

    from schelix_core.benchmark.aggregate import RUN_KEYS, read_benchmark, summarise, summary_markdown

    run_cols = RUN_KEYS + ["status", "error", "output_type", "uses_labels", "is_control", "engine"]
    tables, runs = [], []
    # Both lists come from common.smk's runs(), in the same (dataset, method, seed) order.
    for metrics_path, benchmark_path in zip(snakemake.input.metrics, snakemake.input.benchmarks, strict=True):
        table = pd.read_parquet(metrics_path)
        tables.append(table)
        runs.append({**table[run_cols].iloc[0].to_dict(), **read_benchmark(benchmark_path)})
    metrics = pd.concat(tables, ignore_index=True)
    runs = pd.DataFrame(runs)
    summary = summarise(metrics, runs)
    long = metrics[metrics["metric"] != ""].drop(columns=["error"])
    write_atomic(snakemake.output.metrics, lambda tmp: long.to_parquet(tmp, index=False))
    write_atomic(snakemake.output.runs, lambda tmp: runs.to_parquet(tmp, index=False))
    write_atomic(snakemake.output.summary_csv, lambda tmp: summary.to_csv(tmp, index=False))
    write_atomic(snakemake.output.summary_parquet, lambda tmp: summary.to_parquet(tmp, index=False))
    markdown = summary_markdown(summary)
    write_atomic(snakemake.output.summary_md, lambda tmp: tmp.write_text(markdown))
    print(markdown)
