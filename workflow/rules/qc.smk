rule qc_preprocess:
    input:
        f"{RESULTS}/{{dataset}}/raw.h5ad",
    output:
        data=f"{RESULTS}/{{dataset}}/preprocessed.h5ad",
        qc_table=report(
            f"{RESULTS}/{{dataset}}/qc/qc_table.csv",
            caption="../report/qc_table.rst",
            category="QC",
            labels={"dataset": "{dataset}"},
        ),
    params:
        batch_key=batch_key,
        label_key=label_key,
        qc=config["qc"],
        preprocess=config["preprocess"],
        code=CODE_DIGEST["qc_preprocess"],
    log:
        f"{RESULTS}/logs/qc_preprocess/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/qc_preprocess/{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_large,
        runtime=runtime_small,
    conda:
        "../../envs/core.yaml"
    container:
        "docker://ghcr.io/schelix/schelix:0.1.0"
    script:
        "../../scripts/qc_preprocess.py"
