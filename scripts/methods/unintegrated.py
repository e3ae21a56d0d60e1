"""Unintegrated control: the PCA of the log-normalised HVGs, as every method starts from."""

from schelix_core.benchmark.contract import MethodResult, MethodSpec, main

SPEC = MethodSpec("unintegrated", "embedding", is_control=True)


def run(adata, batch_key, label_key, seed, params, threads):
    return MethodResult(embedding=adata.obsm["X_pca"])


if __name__ == "__main__":
    raise SystemExit(main(SPEC, run))
