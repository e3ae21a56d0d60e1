"""scVI (scvi-tools) on the raw counts of the HVGs."""

from schelix_core.benchmark.contract import MethodResult, MethodSpec, main

SPEC = MethodSpec("scvi", "embedding")


def train_scvi(adata, batch_key, seed, params, threads):
    import scvi

    scvi.settings.seed = seed
    scvi.settings.num_threads = threads
    scvi.settings.dl_num_workers = 0
    work = adata.copy()
    scvi.model.SCVI.setup_anndata(work, layer="counts", batch_key=batch_key)
    model = scvi.model.SCVI(
        work,
        n_latent=int(params.get("n_latent", 30)),
        n_layers=int(params.get("n_layers", 2)),
        gene_likelihood=params.get("gene_likelihood", "nb"),
    )
    model.train(
        max_epochs=params.get("max_epochs"),
        batch_size=int(params.get("batch_size", 128)),
        accelerator=params.get("accelerator", "cpu"),
        enable_progress_bar=False,
    )
    return model, work


def run(adata, batch_key, label_key, seed, params, threads):
    model, _ = train_scvi(adata, batch_key, seed, params, threads)
    return MethodResult(
        embedding=model.get_latent_representation(),
        extra_uns={"epochs_trained": int(model.history["elbo_train"].shape[0])},
    )


if __name__ == "__main__":
    raise SystemExit(main(SPEC, run))
