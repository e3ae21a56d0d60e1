"""BBKNN: a batch-balanced kNN graph on the PCA (a graph method: metrics use this graph only)."""

import bbknn

from schelix_core.benchmark.contract import MethodResult, MethodSpec, main

SPEC = MethodSpec("bbknn", "graph")


def run(adata, batch_key, label_key, seed, params, threads):
    work = adata.copy()
    bbknn.bbknn(
        work,
        batch_key=batch_key,
        use_rep="X_pca",
        neighbors_within_batch=int(params.get("neighbors_within_batch", 3)),
        computation=params.get("computation", "annoy"),
    )
    return MethodResult(connectivities=work.obsp["connectivities"], distances=work.obsp["distances"])


if __name__ == "__main__":
    raise SystemExit(main(SPEC, run))
