"""ComBat (scanpy) on the log-normalised HVGs: a corrected-feature method."""

import numpy as np
import scanpy as sc

from schelix_core.benchmark.contract import MethodResult, MethodSpec, main

SPEC = MethodSpec("combat", "corrected_features")


def run(adata, batch_key, label_key, seed, params, threads):
    corrected = sc.pp.combat(adata, key=batch_key, inplace=False)
    return MethodResult(corrected=np.asarray(corrected, dtype=np.float32))


if __name__ == "__main__":
    raise SystemExit(main(SPEC, run))
