"""Rule load_dataset: a configured dataset as raw counts with validated batch and label keys."""

import json

from schelix_core.benchmark.contract import write_h5ad_atomic
from schelix_core.benchmark.workflow_io import logged

with logged(snakemake):
    spec = json.loads(snakemake.params.spec)
    from schelix_core.benchmark.data import load_dataset

    adata = load_dataset(spec, snakemake.params.cache_dir)
    adata.uns["dataset"] = {"name": snakemake.wildcards.dataset, "spec": json.dumps(spec, sort_keys=True)}
    print(f"{snakemake.wildcards.dataset}: {adata.n_obs} cells x {adata.n_vars} genes")
    write_h5ad_atomic(adata, snakemake.output[0])
