"""Rule metrics: scIB metrics of one (dataset, method, seed) as a long table."""

from schelix_core.benchmark.workflow_io import logged, write_atomic

with logged(snakemake):
    import anndata as ad
    import pandas as pd

    from schelix_core.benchmark.metrics import compute_metrics, engine_version

    w = snakemake.wildcards
    engine = snakemake.params.engine
    out = ad.read_h5ad(snakemake.input.integrated)
    status, error = out.uns["status"], out.uns.get("error", "")
    if status == "ok":
        pre = ad.read_h5ad(snakemake.input.data)
        try:
            table = compute_metrics(pre, out, snakemake.params.batch_key, snakemake.params.label_key, engine, int(w.seed))
        except Exception as exc:
            import traceback

            traceback.print_exc()
            status, error = "failed", f"metrics: {type(exc).__name__}: {exc}"
            table = pd.DataFrame({"metric": [""], "metric_type": [""], "value": [float("nan")], "higher_is_better": [True]})
    else:
        table = pd.DataFrame({"metric": [""], "metric_type": [""], "value": [float("nan")], "higher_is_better": [True]})
    table.insert(0, "seed", int(w.seed))
    table.insert(0, "method", w.method)
    table.insert(0, "dataset", w.dataset)
    table["status"] = status
    table["error"] = error
    table["output_type"] = out.uns["output_type"]
    table["uses_labels"] = bool(out.uns["uses_labels"])
    table["is_control"] = bool(out.uns["is_control"])
    table["engine"] = f"{engine} {engine_version(engine)}"
    print(table.to_string(index=False))
    write_atomic(snakemake.output[0], lambda tmp: table.to_parquet(tmp, index=False))
