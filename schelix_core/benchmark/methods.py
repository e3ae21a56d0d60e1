"""Every method the workflow can run: its script under ``scripts/methods/`` and fixed parameters.

Named variants (the scHelix ablations) reuse one script with a fixed parameter, so an ablation
is one more method to the workflow, run and scored through the same contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MethodEntry:
    script: str
    fixed_params: dict = field(default_factory=dict)
    uses_labels: bool = False
    trains_on_gpu: bool = False
    needs_partition: bool = False


SCHELIX_ABLATIONS = ("no_partition", "no_align", "no_refine", "concat", "no_diffusion", "unbounded_gate")

METHODS: dict[str, MethodEntry] = {
    "unintegrated": MethodEntry("unintegrated.py"),
    "harmony": MethodEntry("harmony.py"),
    "scanorama": MethodEntry("scanorama_embed.py"),
    "scvi": MethodEntry("scvi_latent.py", trains_on_gpu=True),
    "scanvi": MethodEntry("scanvi_latent.py", uses_labels=True, trains_on_gpu=True),
    "combat": MethodEntry("combat.py"),
    "bbknn": MethodEntry("bbknn_graph.py"),
    "control_floor": MethodEntry("control_floor.py"),
    "control_ceiling": MethodEntry("control_ceiling.py", uses_labels=True),
    "schelix": MethodEntry("schelix_embed.py", trains_on_gpu=True, needs_partition=True),
}
for _ablation in SCHELIX_ABLATIONS:
    METHODS[f"schelix_{_ablation}"] = MethodEntry(
        "schelix_embed.py",
        fixed_params={"ablation": _ablation},
        trains_on_gpu=True,
        needs_partition=_ablation != "no_partition",
    )

CONTROLS = ("unintegrated", "control_floor", "control_ceiling")

