rule load_dataset:
    input:
        dataset_local_input,
    output:
        f"{RESULTS}/{{dataset}}/raw.h5ad",
    params:
        spec=dataset_spec_json,
        content=dataset_content_digest,
        code=CODE_DIGEST["load_dataset"],
        cache_dir=f"{RESULTS}/downloads",
    log:
        f"{RESULTS}/logs/load_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/load_dataset/{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_small,
        runtime=runtime_small,
    conda:
        "../../envs/core.yaml"
    container:
        "docker://ghcr.io/schelix/schelix:0.1.0"
    script:
        "../../scripts/load_dataset.py"
