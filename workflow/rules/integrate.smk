rule partition_genes:
    input:
        f"{RESULTS}/{{dataset}}/preprocessed.h5ad",
    output:
        table=f"{RESULTS}/{{dataset}}/partition/seed{{seed}}.parquet",
        figure=report(
            f"{RESULTS}/{{dataset}}/partition/seed{{seed}}.png",
            caption="../report/partition.rst",
            category="Gene partition",
            labels={"dataset": "{dataset}", "seed": "{seed}"},
        ),
    params:
        batch_key=batch_key,
        partition=partition_params_json,
        code=CODE_DIGEST["partition_genes"],
    log:
        f"{RESULTS}/logs/partition_genes/{{dataset}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/partition_genes/{{dataset}}/seed{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_large,
        runtime=runtime_large,
    conda:
        "../../envs/core.yaml"
    container:
        "docker://ghcr.io/schelix/schelix:0.1.0"
    script:
        "../../scripts/partition_genes.py"


# One rule for every method: each is one script with the same contract (see
# schelix_core/benchmark/contract.py). A Python error is recorded by the script; a kill from
# outside exits non-zero for a retry, and the last attempt records the failure.
rule integrate:
    input:
        unpack(integrate_input),
    output:
        f"{RESULTS}/{{dataset}}/integrated/{{method}}/seed{{seed}}.h5ad",
    params:
        script=method_script,
        method_params=method_params_json,
        batch_key=batch_key,
        label_key=label_key,
        max_attempts=METHOD_ATTEMPTS,
        code=method_code_digest,
    log:
        f"{RESULTS}/logs/integrate/{{dataset}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/integrate/{{dataset}}/{{method}}/seed{{seed}}.tsv"
    retries: METHOD_ATTEMPTS - 1
    threads: method_threads
    resources:
        mem_mb=mem_mb_large,
        runtime=runtime_large,
        gpu=gpu_request,
        attempt=attempt_number,
    conda:
        "../../envs/methods.yaml"
    container:
        "docker://ghcr.io/schelix/schelix:0.1.0"
    shell:
        "python {params.script:q} --input {input.data:q} --output {output:q} --method {wildcards.method}"
        " --seed {wildcards.seed} --threads {threads} --batch-key {params.batch_key:q}"
        " --label-key {params.label_key:q} --params {params.method_params:q} > {log:q} 2>&1"
        " || python -m schelix_core.benchmark.contract record-failure --input {input.data:q}"
        " --output {output:q} --method {wildcards.method} --seed {wildcards.seed} --exit-code $?"
        " --attempt {resources.attempt} --max-attempts {params.max_attempts} --log {log:q} >> {log:q} 2>&1"
