"""Scanorama on the log-normalised HVGs, batch by batch, reassembled in the input's cell order."""

import numpy as np
import scanorama

from schelix_core.benchmark.contract import MethodResult, MethodSpec, main

SPEC = MethodSpec("scanorama", "embedding")


def run(adata, batch_key, label_key, seed, params, threads):
    batches = adata.obs[batch_key].astype(str).to_numpy()
    order = [np.flatnonzero(batches == b) for b in np.unique(batches)]
    genes = list(adata.var_names)
    integrated, _ = scanorama.integrate(
        [adata.X[idx] for idx in order],
        [genes] * len(order),
        dimred=int(params.get("dimred", 50)),
        seed=seed,
        verbose=False,
    )
    embedding = np.zeros((adata.n_obs, integrated[0].shape[1]), dtype=np.float32)
    for idx, emb in zip(order, integrated):
        embedding[idx] = emb
    return MethodResult(embedding=embedding)


if __name__ == "__main__":
    raise SystemExit(main(SPEC, run))
