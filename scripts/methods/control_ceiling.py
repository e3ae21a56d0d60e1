"""Ceiling control: an embedding built from the labels alone (one-hot plus small noise).

It carries no batch information and perfect cell identity: the highest bio conservation any
method can reach. It uses the labels, so it is never a fair competitor.
"""

import numpy as np
import pandas as pd

from schelix_core.benchmark.contract import MethodResult, MethodSpec, main

SPEC = MethodSpec("control_ceiling", "embedding", uses_labels=True, is_control=True)


def run(adata, batch_key, label_key, seed, params, threads):
    rng = np.random.default_rng(seed)
    onehot = pd.get_dummies(adata.obs[label_key].astype(str)).to_numpy(dtype=np.float32)
    noise = rng.normal(0.0, float(params.get("noise_sd", 0.01)), size=onehot.shape)
    return MethodResult(embedding=onehot + noise)


if __name__ == "__main__":
    raise SystemExit(main(SPEC, run))
