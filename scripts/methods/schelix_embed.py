"""scHelix and its ablations (``params["ablation"]``), on the raw counts of the HVGs.

The gene partition comes from the workflow's own ``partition`` rule (``params["partition"]``,
a table with one row per gene), so the partition is made, plotted and checked once per
dataset and seed; the no-partition ablation ignores it.
"""

import pandas as pd

from schelix_core.benchmark.contract import MethodResult, MethodSpec, main

SPEC = MethodSpec("schelix", "embedding")
TRAIN_KEYS = ("accelerator", "max_epochs", "batch_size")


def run(adata, batch_key, label_key, seed, params, threads):
    from schelix_core import SCHelix

    params = dict(params)
    partition_path = params.pop("partition", None)
    train_kwargs = {k: params.pop(k) for k in TRAIN_KEYS if k in params}
    partition = None
    if partition_path and params.get("ablation") != "no_partition":
        partition = pd.read_parquet(partition_path).set_index("gene")["role"]
    model = SCHelix(adata, batch_key=batch_key, layer="counts", partition=partition, **params)
    model.train(seed=seed, num_threads=threads, progress_bar=False, **train_kwargs)
    return MethodResult(
        embedding=model.get_latent_representation(),
        extra_uns={"schelix_params": {k: str(v) for k, v in model.params.items()}},
    )


if __name__ == "__main__":
    raise SystemExit(main(SPEC, run))
