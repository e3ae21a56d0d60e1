rule metrics:
    input:
        data=f"{RESULTS}/{{dataset}}/preprocessed.h5ad",
        integrated=f"{RESULTS}/{{dataset}}/integrated/{{method}}/seed{{seed}}.h5ad",
    output:
        f"{RESULTS}/{{dataset}}/metrics/{{method}}/seed{{seed}}.parquet",
    params:
        batch_key=batch_key,
        label_key=label_key,
        engine=config["metrics"]["engine"],
        code=CODE_DIGEST["metrics"],
    log:
        f"{RESULTS}/logs/metrics/{{dataset}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/metrics/{{dataset}}/{{method}}/seed{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_large,
        runtime=runtime_large,
    conda:
        "../../envs/metrics.yaml"
    container:
        "docker://ghcr.io/schelix/schelix:0.1.0"
    script:
        "../../scripts/compute_metrics.py"


rule aggregate_metrics:
    input:
        metrics=run_metric_files,
        benchmarks=run_benchmark_files,
    output:
        metrics=f"{RESULTS}/tables/metrics.parquet",
        runs=f"{RESULTS}/tables/runs.parquet",
        summary_csv=report(f"{RESULTS}/tables/summary.csv", caption="../report/summary.rst", category="Summary"),
        summary_parquet=f"{RESULTS}/tables/summary.parquet",
        summary_md=f"{RESULTS}/tables/summary.md",
    params:
        code=CODE_DIGEST["aggregate_metrics"],
    log:
        f"{RESULTS}/logs/aggregate_metrics.log",
    benchmark:
        f"{RESULTS}/benchmarks/aggregate_metrics.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_small,
        runtime=runtime_small,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/aggregate_metrics.py"
