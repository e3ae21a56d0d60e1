"""Every method the workflow can run: its script under ``scripts/methods/`` and fixed parameters.

Named variants (the scHelix ablations) reuse one script with a fixed parameter, so an ablation
is one more method to the workflow, run and scored through the same contract.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MethodEntry:
    script: str
    fixed_params: dict = field(default_factory=dict)
    uses_labels: bool = False
    trains_on_gpu: bool = False
    needs_partition: bool = False
    params: tuple = ()  # what config's method_params may set; anything else is a typo
    code_modules: tuple = ()  # schelix_core modules the results depend on (a change re-runs them)


SCVI_PARAMS = ("max_epochs", "batch_size", "n_latent", "n_layers", "gene_likelihood")
SCHELIX_TRAIN_PARAMS = ("max_epochs", "batch_size")


def _schelix_params() -> tuple:
    from schelix_core.model import DEFAULTS

    return tuple(sorted(set(DEFAULTS) - {"ablation"} | set(SCHELIX_TRAIN_PARAMS)))


SCHELIX_ABLATIONS = ("no_partition", "no_align", "no_refine", "concat", "no_diffusion", "unbounded_gate",
                     "no_fusion")

METHODS: dict[str, MethodEntry] = {
    "unintegrated": MethodEntry("unintegrated.py"),
    "harmony": MethodEntry("harmony.py", params=("max_iter_harmony",)),
    "scanorama": MethodEntry("scanorama_embed.py", params=("dimred",)),
    "scvi": MethodEntry("scvi_latent.py", trains_on_gpu=True, params=SCVI_PARAMS),
    "scanvi": MethodEntry("scanvi_latent.py", uses_labels=True, trains_on_gpu=True,
                          params=SCVI_PARAMS + ("scanvi_max_epochs",)),
    "combat": MethodEntry("combat.py"),
    "bbknn": MethodEntry("bbknn_graph.py", params=("neighbors_within_batch", "computation")),
    "control_floor": MethodEntry("control_floor.py"),
    "control_ceiling": MethodEntry("control_ceiling.py", uses_labels=True, params=("noise_sd",)),
    "schelix": MethodEntry("schelix_embed.py", trains_on_gpu=True, needs_partition=True, params=_schelix_params(),
                           code_modules=("schelix_core.model",)),
}
for _ablation in SCHELIX_ABLATIONS:
    METHODS[f"schelix_{_ablation}"] = MethodEntry(
        "schelix_embed.py",
        fixed_params={"ablation": _ablation},
        trains_on_gpu=True,
        needs_partition=_ablation != "no_partition",
        params=_schelix_params(),
        code_modules=("schelix_core.model",),
    )


def check_method_params(method_params: dict) -> None:
    """Refuse a parameter a method does not read, naming it (a typo would be silently ignored)."""
    for method, params in method_params.items():
        allowed = METHODS[method].params
        for key in params:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; it accepts {list(allowed) or 'none'}"
                raise ValueError(f"method_params.{method}: unknown parameter {key!r}{hint}")

CONTROLS = ("unintegrated", "control_floor", "control_ceiling")

