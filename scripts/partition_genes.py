"""Rule partition_genes: scHelix's Anchor/Variant split, its table and its figure.

On simulated data the figure also gives precision and recall against the genes the
simulator made batch-sensitive (``var["batch_affected"]``).
"""

import json

from schelix_core.benchmark.workflow_io import logged, write_atomic

with logged(snakemake):
    import anndata as ad
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from schelix_core import partition_genes

    seed = int(snakemake.wildcards.seed)
    adata = ad.read_h5ad(snakemake.input[0])
    kwargs = json.loads(snakemake.params.partition)
    result = partition_genes(adata, snakemake.params.batch_key, layer="counts", seed=seed, **kwargs)
    table = result.to_frame().rename_axis("gene").reset_index()
    title = f"{snakemake.wildcards.dataset} (seed {seed}): {int((table['role'] == 'variant').sum())} variants"
    if "batch_affected" in adata.var:
        truth = adata.var["batch_affected"].reindex(table["gene"]).to_numpy(dtype=bool)
        table["simulated_batch_affected"] = truth
        called = table["role"].to_numpy() == "variant"
        precision = (called & truth).sum() / max(called.sum(), 1)
        recall = (called & truth).sum() / max(truth.sum(), 1)
        title += f"; precision {precision:.2f}, recall {recall:.2f} vs simulated"
        print(f"precision={precision:.3f} recall={recall:.3f}")
    table["threshold"] = result.threshold
    table["anchor_variance_share"] = result.anchor_variance_share
    write_atomic(snakemake.output.table, lambda tmp: table.to_parquet(tmp, index=False))

    fig, ax = plt.subplots(figsize=(6, 4))
    scores = table["score"].to_numpy()
    bins = np.linspace(scores.min(), scores.max(), 60)
    for role, colour in (("anchor", "tab:blue"), ("variant", "tab:orange")):
        ax.hist(scores[table["role"] == role], bins=bins, color=colour, alpha=0.7, label=role)
    ax.axvline(result.threshold, color="black", linestyle="--", label="threshold")
    ax.set_yscale("log")
    ax.set_xlabel("batch-sensitivity score (share of within-group variance from batch, minus null)")
    ax.set_ylabel("genes")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    write_atomic(snakemake.output.figure, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
