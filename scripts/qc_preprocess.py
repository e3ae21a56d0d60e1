"""Rule qc_preprocess: QC filters with a per-batch table, then normalise, HVGs and PCA."""

from schelix_core.benchmark.contract import write_h5ad_atomic
from schelix_core.benchmark.workflow_io import logged, write_atomic

with logged(snakemake):
    import anndata as ad
    import numpy as np

    from schelix_core.benchmark.preprocess import preprocess, qc_filter
    from schelix_core.checks import validate_counts

    batch_key = snakemake.params.batch_key
    qc, pre = snakemake.params.qc, snakemake.params.preprocess
    adata = ad.read_h5ad(snakemake.input[0])
    # Check the values before QC, so log-normalised or NaN data fail as what they are, not
    # as "QC removed every cell". Empty cells and genes are QC's job, so they are left out here.
    cell_sums, gene_sums = (np.asarray(adata.X.sum(axis=a)).ravel() for a in (1, 0))
    validate_counts(adata[cell_sums != 0][:, gene_sums != 0], batch_key, labels_key=snakemake.params.label_key)
    filtered, table = qc_filter(adata, batch_key, **qc)
    print(table.to_string(index=False))
    print(f"genes: {table.attrs['n_genes_in']} -> {table.attrs['n_genes_out']}")
    result = preprocess(filtered, batch_key, **pre)
    result.uns["qc"] = dict(qc)
    write_atomic(snakemake.output.qc_table, lambda tmp: table.to_csv(tmp, index=False))
    write_h5ad_atomic(result, snakemake.output.data)
