localrules:
    aggregate_metrics,
    plot_summary,
    check_status,


rule plot_summary:
    input:
        summary=f"{RESULTS}/tables/summary.parquet",
        runs=f"{RESULTS}/tables/runs.parquet",
    output:
        results_png=report(f"{RESULTS}/figures/results_table.png", caption="../report/results_table.rst", category="Summary"),
        results_svg=f"{RESULTS}/figures/results_table.svg",
        resources_png=report(f"{RESULTS}/figures/resources.png", caption="../report/resources.rst", category="Resources"),
        resources_svg=f"{RESULTS}/figures/resources.svg",
        completeness_png=report(f"{RESULTS}/figures/completeness.png", caption="../report/completeness.rst", category="Summary"),
        completeness_svg=f"{RESULTS}/figures/completeness.svg",
    params:
        code=CODE_DIGEST["plot_summary"],
    log:
        f"{RESULTS}/logs/plot_summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/plot_summary.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_small,
        runtime=runtime_small,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/plot_summary.py"


rule plot_umaps:
    input:
        data=f"{RESULTS}/{{dataset}}/preprocessed.h5ad",
        integrated=umap_inputs,
    output:
        png=report(
            f"{RESULTS}/figures/umap_{{dataset}}.png",
            caption="../report/umap.rst",
            category="UMAPs",
            labels={"dataset": "{dataset}"},
        ),
        svg=f"{RESULTS}/figures/umap_{{dataset}}.svg",
    params:
        batch_key=batch_key,
        label_key=label_key,
        seed=min(SEEDS),
        code=CODE_DIGEST["plot_umaps"],
    log:
        f"{RESULTS}/logs/plot_umaps/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/plot_umaps/{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_large,
        runtime=runtime_large,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/plot_umaps.py"


# Last: every table and figure exists before this says whether any run failed.
rule check_status:
    input:
        runs=f"{RESULTS}/tables/runs.parquet",
        figures=rules.plot_summary.output,
    output:
        f"{RESULTS}/tables/status.txt",
    params:
        fail_on_error=config["fail_on_method_error"],
    log:
        f"{RESULTS}/logs/check_status.log",
    script:
        "../../scripts/check_status.py"
