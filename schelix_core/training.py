"""Align-Refine-Fuse training protocol.

Phase 0 (anchor warm-up): anchor encoder + decoder; batch-conditioned reconstruction of the
anchor features plus InfoNCE with graph neighbours as positives (neighbours from other
batches preferred). Phase 1 (align): anchor frozen; the variant stream learns the anchor
stream's topology: InfoNCE between a cell's variant latent and that of its anchor-graph
neighbour (from another batch where it has one), with composition-aware batch mixing and
batch-conditioned reconstruction of the variant features. Phase 2 (refine + fuse): anchor
unfrozen at low LR with an L2 drift penalty to its phase-0 weights; the fused latent
reconstructs both streams' features (so the variant stream has to earn its place), while
neighbour structure and within-group mixing are kept on the anchor latent and the variant
stream stays aligned. Batch removal therefore never acts on the variant message itself: what
the gate lets through is only as clean as the alignment made it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .module import SCHelixModule, drift_penalty, group_mixing_loss, info_nce


@dataclass
class TrainData:
    feats_a: list  # list of (n, dim_a) tensors, one per scale
    feats_v: list | None
    batch: torch.Tensor  # (n,) long
    nbr_indptr: torch.Tensor  # CSR of preferred positive neighbours
    nbr_indices: torch.Tensor
    n_batches: int

    @property
    def n(self) -> int:
        return self.batch.shape[0]


def preferred_neighbours(A, batch_codes):
    """CSR of positive candidates: other-batch graph neighbours when a cell has any, else all."""
    import scipy.sparse as sp

    A = sp.csr_matrix(A)
    indptr, indices = A.indptr, A.indices
    rows = np.repeat(np.arange(A.shape[0]), np.diff(indptr))
    other = batch_codes[indices] != batch_codes[rows]
    n_other = np.bincount(rows[other], minlength=A.shape[0])
    keep = other | (n_other[rows] == 0)
    P = sp.csr_matrix((np.ones(keep.sum(), dtype=np.float32), (rows[keep], indices[keep])), shape=A.shape)
    # cells without any neighbour fall back to themselves
    deg = np.diff(P.indptr)
    if (deg == 0).any():
        lone = np.flatnonzero(deg == 0)
        P = P + sp.csr_matrix((np.ones(len(lone), dtype=np.float32), (lone, lone)), shape=A.shape)
        P = P.tocsr()
    P.sort_indices()
    return torch.from_numpy(P.indptr.astype(np.int64)), torch.from_numpy(P.indices.astype(np.int64))


def sample_neighbours(idx, indptr, indices, gen):
    start = indptr[idx]
    deg = indptr[idx + 1] - start
    u = torch.rand(idx.shape[0], generator=gen, device="cpu").to(idx.device)
    off = torch.clamp((u * deg.float()).long(), max=(deg - 1).clamp(min=0))
    return indices[start + off]


CPU_BATCH_SIZE = 256
GPU_MAX_BATCH_SIZE = 1024
# fraction of a GPU's memory the B x B InfoNCE logits of one step may take (with their
# softmax and gradients, about six B x B float32 arrays)
_GPU_LOGITS_MEMORY_FRACTION = 0.02


def batch_size_for(n_cells: int, gpu_memory_bytes: int | None = None) -> int:
    """Mini-batch size for the device (``gpu_memory_bytes`` None: a CPU).

    A CPU step costs in proportion to its cells, so 256. scHelix's network is small, so a GPU
    step should cost about the same up to thousands of cells (not yet timed on a GPU); there a
    step takes up to 1,024 cells for the same step budget, so more of a large data set is seen.
    Not more: trained on a CPU (``benchmarks/batch_size_quality.py``), 1,024 cells a step score
    as 256 do at 10k and 100k simulated cells, while 4,096 mixed batches harder and lost cell
    types at 100k (total 0.797 against 0.823). The size is also capped at an eighth of the
    cells, so data sets of up to 2,048 cells train alike on either device, and by GPU memory.
    """
    if gpu_memory_bytes is None:
        return CPU_BATCH_SIZE
    size = GPU_MAX_BATCH_SIZE
    while size > CPU_BATCH_SIZE and 6 * 4 * size * size > _GPU_LOGITS_MEMORY_FRACTION * gpu_memory_bytes:
        size //= 2
    return max(CPU_BATCH_SIZE, min(size, n_cells // 8))


def epochs_for(n: int, batch_size: int, target_steps: int, max_epochs: int = 500) -> float:
    """Epochs that give a phase about ``target_steps`` optimiser steps at any number of cells.

    Whole epochs while one epoch fits in the budget, a fraction of one beyond that. A floor of
    two epochs had doubled the steps at 100k cells, where the extra steps of batch mixing merged
    cell types (100k simulated cells, seed 0: total 0.800, and 0.823 within the budget).
    """
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    ratio = target_steps / steps_per_epoch
    if ratio < 1:
        return ratio
    return int(min(round(ratio), max_epochs))


def _take(feats, idx):
    return [f[idx] for f in feats]


def _recon(dec, z, batch, target):
    return torch.mean((dec(z, batch) - target) ** 2)


def encode_all(module: SCHelixModule, data: TrainData, what: str = "fused", chunk: int = 8192,
               ablation=None) -> torch.Tensor:
    module.eval()
    outs = []
    with torch.no_grad():
        for s in range(0, data.n, chunk):
            idx = torch.arange(s, min(s + chunk, data.n), device=data.batch.device)
            z_a = module.enc_a(_take(data.feats_a, idx))
            if what == "anchor" or not module.has_v:
                outs.append(z_a)
                continue
            z_v = module.enc_v(_take(data.feats_v, idx))
            if what == "variant":
                outs.append(z_v)
            else:
                outs.append(module.fuse(z_a, z_v))
    return torch.cat(outs, dim=0)


def latent_groups(z: np.ndarray, batch_codes: np.ndarray, n_groups: int | None, seed: int) -> np.ndarray:
    """Clusters of the Harmony-corrected anchor latent, used to make batch mixing composition-aware.

    Clustering the warm latent itself split cell types by batch wherever the batch effect
    outlived phase 0 (at 25,000 simulated cells 50 k-means groups were further from the
    batches' composition than the cell types were), and within-group mixing cannot join
    what the groups keep apart. Harmony only decides the groups; the latent is not changed.
    """
    from .partition import harmony_corrected, kmeans_groups

    return kmeans_groups(harmony_corrected(z, batch_codes, seed), n_groups, seed, cells_per_group=150,
                         max_groups=50)


def _synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train_protocol(module: SCHelixModule, data: TrainData, params: dict, epochs: tuple[int, int, int],
                   seed: int = 0, progress_bar: bool = True, device: torch.device | str = "cpu",
                   timings: dict | None = None):
    """Run phases 0-2 (as the ablation allows). Returns a history dict of per-epoch losses.

    Wall seconds of each phase go into ``timings`` when given (for the scaling benchmark).
    """
    import time

    from tqdm.auto import tqdm

    timings = {} if timings is None else timings

    ablation = params.get("ablation")
    bs = int(params["batch_size"])
    tau = float(params["temperature"])
    lr = float(params["lr"])
    wd = float(params["weight_decay"])
    w_rec = float(params["recon_weight"])
    w_con = float(params["contrast_weight"])
    # "no_align" removes the Variant alignment everywhere: phase 1 and its phase-2 term
    w_align = 0.0 if ablation == "no_align" else float(params["align_weight"])
    w_mix = float(params["mix_weight"])
    w_drift = float(params["drift_weight"])
    gen = torch.Generator().manual_seed(seed)
    n = data.n
    n_b = data.n_batches
    history: dict[str, list[float]] = {"phase0": [], "phase1": [], "phase2": []}
    run_p1 = module.has_v and ablation not in ("no_align", "no_refine")
    run_p2 = ablation != "no_refine"
    total_epochs = sum(math.ceil(e) for e, run in zip(epochs, (True, run_p1, run_p2)) if run)
    bar = tqdm(total=total_epochs, disable=not progress_bar, desc="scHelix", leave=False)
    x0_a = data.feats_a[0]
    x0_v = data.feats_v[0] if module.has_v else None
    dev = data.batch.device

    steps_per_epoch = max(1, n // bs)  # the last mini-batch takes the remainder

    def batches():
        perm = torch.randperm(n, generator=gen).to(dev)
        for i in range(steps_per_epoch):
            idx = perm[i * bs:(i + 1) * bs] if i < steps_per_epoch - 1 else perm[i * bs:]
            if idx.shape[0] >= 2:
                yield idx

    def run_phase(name, n_epochs, step_fn, params_groups):
        """``n_epochs`` may be fractional: the phase then ends part-way through its last pass."""
        start = time.perf_counter()
        opt = torch.optim.AdamW(params_groups, weight_decay=wd)
        total_steps = round(n_epochs * steps_per_epoch)
        # cosine decay to zero within each phase: a phase is a few hundred steps, and at a
        # constant rate its end point was wherever the last mini-batches left it
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, total_steps) / max(1, total_steps))))
        done = 0
        for _ in range(math.ceil(n_epochs)):
            module.train()
            tot, cnt = 0.0, 0
            for idx in batches():
                loss = step_fn(idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for g in params_groups for p in g["params"]], 5.0)
                opt.step()
                sched.step()
                tot += float(loss.detach()) * idx.shape[0]
                cnt += idx.shape[0]
                done += 1
                if done == total_steps:
                    break
            history[name].append(tot / max(cnt, 1))
            bar.set_postfix_str(f"{name} loss={history[name][-1]:.4f}")
            bar.set_description(f"scHelix {name}")
            bar.update(1)
        _synchronize(device)
        timings[f"train_{name}"] = time.perf_counter() - start

    # ---------------------------------------------------------------- phase 0
    def step0(idx):
        j = sample_neighbours(idx, data.nbr_indptr, data.nbr_indices, gen)
        z_i = module.enc_a(_take(data.feats_a, idx))
        z_j = module.enc_a(_take(data.feats_a, j))
        b = data.batch[idx]
        return w_rec * _recon(module.dec_a, z_i, b, x0_a[idx]) + w_con * info_nce(z_i, z_j, tau)

    p0_params = list(module.enc_a.parameters()) + list(module.dec_a.parameters())
    run_phase("phase0", epochs[0], step0, [{"params": p0_params, "lr": lr}])

    # groups for composition-aware mixing (clusters of the warm anchor latent, batch-corrected)
    z_anchor = encode_all(module, data, "anchor").cpu().numpy()
    groups_np = latent_groups(z_anchor, data.batch.cpu().numpy(), params.get("n_mix_groups"), seed)
    groups = torch.from_numpy(groups_np).to(dev)
    n_groups = int(groups_np.max()) + 1
    anchor_ref = {k: v.detach().clone() for k, v in module.enc_a.named_parameters()}

    if ablation == "no_refine":
        bar.close()
        return history, groups_np

    # ---------------------------------------------------------------- phase 1
    if run_p1:
        for p in module.enc_a.parameters():
            p.requires_grad_(False)

        def step1(idx):
            j = sample_neighbours(idx, data.nbr_indptr, data.nbr_indices, gen)
            z_v = module.enc_v(_take(data.feats_v, idx))
            b = data.batch[idx]
            loss = w_align * info_nce(z_v, module.enc_v(_take(data.feats_v, j)), tau)
            loss = loss + w_mix * group_mixing_loss(z_v, b, groups[idx], n_b, n_groups)
            loss = loss + w_rec * _recon(module.dec_v, z_v, b, x0_v[idx])
            return loss

        module.enc_a.eval()
        p1_params = list(module.enc_v.parameters()) + list(module.dec_v.parameters())
        run_phase("phase1", epochs[1], step1, [{"params": p1_params, "lr": lr}])
        for p in module.enc_a.parameters():
            p.requires_grad_(True)

    if not run_p2:
        bar.close()
        return history, groups_np

    # ---------------------------------------------------------------- phase 2
    concat = module.has_v and module.fusion == "concat"

    def step2(idx):
        j = sample_neighbours(idx, data.nbr_indptr, data.nbr_indices, gen)
        b = data.batch[idx]
        z_a = module.enc_a(_take(data.feats_a, idx))
        z_aj = module.enc_a(_take(data.feats_a, j))
        if module.has_v:
            z_v = module.enc_v(_take(data.feats_v, idx))
            z_vj = module.enc_v(_take(data.feats_v, j))
            z = module.fuse(z_a, z_v)
            dec_a = module.dec_a_cat if concat else module.dec_a
            dec_v = module.dec_v_cat if concat else module.dec_v
            loss = w_rec * (_recon(dec_a, z, b, x0_a[idx]) + _recon(dec_v, z, b, x0_v[idx]))
            loss = loss + 0.5 * w_align * info_nce(z_v, z_vj, tau)
        else:
            loss = w_rec * _recon(module.dec_a, z_a, b, x0_a[idx])
        loss = loss + w_con * info_nce(z_a, z_aj, tau)
        loss = loss + w_mix * group_mixing_loss(z_a, b, groups[idx], n_b, n_groups)
        loss = loss + w_drift * drift_penalty(module.enc_a, anchor_ref)
        return loss

    rest = [p for name, p in module.named_parameters() if not name.startswith("enc_a.")]
    groups_p2 = [
        {"params": list(module.enc_a.parameters()), "lr": lr * float(params["anchor_lr_factor"])},
        {"params": rest, "lr": lr},
    ]
    run_phase("phase2", epochs[2], step2, groups_p2)
    bar.close()
    return history, groups_np
