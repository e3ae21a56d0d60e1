"""Floor control: the PCA with cells shuffled within each batch.

Batch structure survives and cell identity is destroyed, so bio conservation drops to chance
while batch correction stays at the unintegrated level: the lowest bio score in any table.
"""

import numpy as np

from schelix_core.benchmark.contract import MethodResult, MethodSpec, main

SPEC = MethodSpec("control_floor", "embedding", is_control=True)


def run(adata, batch_key, label_key, seed, params, threads):
    rng = np.random.default_rng(seed)
    pca = np.asarray(adata.obsm["X_pca"])
    shuffled = pca.copy()
    batches = adata.obs[batch_key].astype(str).to_numpy()
    for b in np.unique(batches):
        idx = np.flatnonzero(batches == b)
        shuffled[idx] = pca[rng.permutation(idx)]
    return MethodResult(embedding=shuffled)


if __name__ == "__main__":
    raise SystemExit(main(SPEC, run))
