"""scANVI, started from a trained scVI model. It uses the labels: never a label-free competitor."""

import scvi

from schelix_core.benchmark.contract import MethodResult, MethodSpec, main
from scvi_latent import train_scvi

SPEC = MethodSpec("scanvi", "embedding", uses_labels=True)


def run(adata, batch_key, label_key, seed, params, threads):
    scvi_params = {k: v for k, v in params.items() if k != "scanvi_max_epochs"}
    scvi_model, work = train_scvi(adata, batch_key, seed, scvi_params, threads)
    work.obs[label_key] = work.obs[label_key].astype(str)
    model = scvi.model.SCANVI.from_scvi_model(scvi_model, labels_key=label_key, unlabeled_category="__unlabeled__")
    model.train(
        max_epochs=int(params.get("scanvi_max_epochs", 10)),
        batch_size=int(params.get("batch_size", 128)),
        accelerator=params.get("accelerator", "cpu"),
        enable_progress_bar=False,
    )
    return MethodResult(embedding=model.get_latent_representation())


if __name__ == "__main__":
    raise SystemExit(main(SPEC, run))
