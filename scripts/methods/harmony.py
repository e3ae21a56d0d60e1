"""Harmony (harmonypy) on the PCA."""

import harmonypy

from schelix_core.benchmark.contract import MethodResult, MethodSpec, main

SPEC = MethodSpec("harmony", "embedding")


def run(adata, batch_key, label_key, seed, params, threads):
    ho = harmonypy.run_harmony(
        adata.obsm["X_pca"],
        adata.obs,
        [batch_key],
        max_iter_harmony=int(params.get("max_iter_harmony", 10)),
        random_state=seed,
        verbose=False,
    )
    return MethodResult(embedding=ho.Z_corr)


if __name__ == "__main__":
    raise SystemExit(main(SPEC, run))
