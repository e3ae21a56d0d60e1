"""Rule plot_umaps: a UMAP per method (first seed), coloured by batch and by cell type.

Embeddings get a kNN graph on the embedding; graph methods are laid out from their own graph.
"""

from schelix_core.benchmark.workflow_io import logged, write_atomic

with logged(snakemake):
    import anndata as ad
    import scanpy as sc

    from schelix_core.benchmark.plots import umap_grid_figure

    seed = int(snakemake.params.seed)
    pre = ad.read_h5ad(snakemake.input.data)
    coords = {}
    for path in snakemake.input.integrated:
        out = ad.read_h5ad(path)
        method = out.uns["method"]
        if out.uns["status"] != "ok":
            coords[method] = None
            continue
        work = ad.AnnData(obs=pre.obs[[]].copy())
        if out.uns["output_type"] == "graph":
            work.obsp["connectivities"] = out.obsp["connectivities"]
            work.obsp["distances"] = out.obsp["distances"]
            work.uns["neighbors"] = {
                "connectivities_key": "connectivities",
                "distances_key": "distances",
                "params": {"method": "umap", "n_neighbors": 15},
            }
        else:
            work.obsm["X_emb"] = out.obsm["X_emb"]
            sc.pp.neighbors(work, use_rep="X_emb", n_neighbors=15, random_state=seed)
        sc.tl.umap(work, random_state=seed)
        coords[method] = work.obsm["X_umap"]
        print(f"{method}: umap done")
    fig = umap_grid_figure(
        coords,
        pre.obs[snakemake.params.batch_key].to_numpy(),
        pre.obs[snakemake.params.label_key].to_numpy(),
        f"{snakemake.wildcards.dataset} (seed {seed})",
    )
    write_atomic(snakemake.output.png, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    write_atomic(snakemake.output.svg, lambda tmp: fig.savefig(tmp, format="svg"))
