"""Torch network of scHelix: dual-stream SIGN-style encoders, batch-conditioned decoders,
bounded fusion gate, and the losses used by the Align-Refine-Fuse protocol."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class StreamEncoder(nn.Module):
    """One stream: a linear map per diffusion scale, concatenated, then an MLP to the latent."""

    def __init__(self, in_dim: int, n_scales: int, n_latent: int = 32, scale_dim: int = 64,
                 n_hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.scale_maps = nn.ModuleList([nn.Linear(in_dim, scale_dim) for _ in range(n_scales)])
        self.mlp = nn.Sequential(
            nn.LayerNorm(scale_dim * n_scales),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(scale_dim * n_scales, n_hidden),
            nn.GELU(),
            nn.Linear(n_hidden, n_latent),
        )

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        h = torch.cat([m(x) for m, x in zip(self.scale_maps, feats)], dim=1)
        return self.mlp(h)


class BatchDecoder(nn.Module):
    """Reconstructs a stream's scale-0 input from a latent conditioned on batch (one-hot)."""

    def __init__(self, n_latent: int, n_batches: int, out_dim: int, n_hidden: int = 128):
        super().__init__()
        self.n_batches = n_batches
        self.net = nn.Sequential(
            nn.Linear(n_latent + n_batches, n_hidden),
            nn.GELU(),
            nn.Linear(n_hidden, out_dim),
        )

    def forward(self, z: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(batch, self.n_batches).to(z.dtype)
        return self.net(torch.cat([z, onehot], dim=1))


class FusionGate(nn.Module):
    """z = z_A + alpha * tanh(g([z_A, sg(z_V)])) * (|z_A| / |W z_V|) * W z_V,
    alpha = alpha_max * sigmoid(a).

    The Variant message W z_V is rescaled to the anchor's norm per cell, so the residual's size
    is set by the gate alone: ||z - z_A|| <= alpha_max * ||z_A|| for every cell, whatever the
    scale of W or z_V. Without the rescaling W could grow and the bound would be nominal.
    ``bounded=False`` (the "unbounded_gate" ablation) uses z_A + g * W z_V: no tanh, no
    alpha, no rescaling.
    """

    def __init__(self, n_latent: int, alpha_max: float = 0.2, bounded: bool = True):
        super().__init__()
        self.g = nn.Linear(2 * n_latent, n_latent)
        self.W = nn.Linear(n_latent, n_latent, bias=False)
        self.a = nn.Parameter(torch.zeros(()))
        self.alpha_max = float(alpha_max)
        self.bounded = bounded

    @property
    def alpha(self) -> torch.Tensor:
        return self.alpha_max * torch.sigmoid(self.a)

    def gate(self, z_a: torch.Tensor, z_v: torch.Tensor) -> torch.Tensor:
        """Per-dimension weight of the Variant message (at most alpha_max in size when bounded)."""
        g = self.g(torch.cat([z_a, z_v.detach()], dim=1))
        if self.bounded:
            return self.alpha * torch.tanh(g)
        return g

    def residual(self, z_a: torch.Tensor, z_v: torch.Tensor) -> torch.Tensor:
        message = self.W(z_v)
        if self.bounded:
            message = message * (z_a.norm(dim=1, keepdim=True) / (message.norm(dim=1, keepdim=True) + 1e-6))
        return self.gate(z_a, z_v) * message

    def forward(self, z_a: torch.Tensor, z_v: torch.Tensor) -> torch.Tensor:
        return z_a + self.residual(z_a, z_v)


class SCHelixModule(nn.Module):
    """All trainable parts. ``dim_v == 0`` means a single (anchor) stream."""

    def __init__(self, dim_a: int, dim_v: int, n_scales: int, n_batches: int, n_latent: int = 32,
                 scale_dim: int = 64, n_hidden: int = 128, dropout: float = 0.1,
                 alpha_max: float = 0.2, bounded_gate: bool = True, fusion: str = "gate"):
        super().__init__()
        self.fusion = fusion
        self.enc_a = StreamEncoder(dim_a, n_scales, n_latent, scale_dim, n_hidden, dropout)
        self.dec_a = BatchDecoder(n_latent, n_batches, dim_a, n_hidden)
        self.has_v = dim_v > 0
        if self.has_v:
            self.enc_v = StreamEncoder(dim_v, n_scales, n_latent, scale_dim, n_hidden, dropout)
            self.dec_v = BatchDecoder(n_latent, n_batches, dim_v, n_hidden)
            if fusion == "concat":
                # decoders read the concatenated latent in phase 2
                self.dec_a_cat = BatchDecoder(2 * n_latent, n_batches, dim_a, n_hidden)
                self.dec_v_cat = BatchDecoder(2 * n_latent, n_batches, dim_v, n_hidden)
            else:
                self.gate = FusionGate(n_latent, alpha_max=alpha_max, bounded=bounded_gate)

    def fuse(self, z_a: torch.Tensor, z_v: torch.Tensor) -> torch.Tensor:
        if self.fusion == "concat":
            return torch.cat([z_a, z_v], dim=1)
        return self.gate(z_a, z_v)


# ----------------------------------------------------------------------------- losses
def info_nce(q: torch.Tensor, k: torch.Tensor, tau: float = 0.2) -> torch.Tensor:
    """Symmetric InfoNCE: row i of q and row i of k are positives, other rows negatives."""
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1)
    logits = q @ k.t() / tau
    target = torch.arange(q.shape[0], device=q.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def group_mixing_loss(z: torch.Tensor, batch: torch.Tensor, group: torch.Tensor, n_batches: int,
                      n_groups: int, min_cells: int = 2) -> torch.Tensor:
    """Composition-aware batch mixing: first- and second-moment matching *within* groups.

    For each group (e.g. a cluster of the anchor embedding) present in the mini-batch, the
    mean and per-dimension variance of z in each batch are pulled toward the group's
    pooled values. Batches are never compared across groups, so batches with different
    cell-type composition are not forced together.
    """
    d = z.shape[1]
    combo = group * n_batches + batch
    n_combo = n_groups * n_batches
    ones = torch.ones(z.shape[0], device=z.device, dtype=z.dtype)
    cnt = torch.zeros(n_combo, device=z.device, dtype=z.dtype).index_add_(0, combo, ones)
    s1 = torch.zeros(n_combo, d, device=z.device, dtype=z.dtype).index_add_(0, combo, z)
    s2 = torch.zeros(n_combo, d, device=z.device, dtype=z.dtype).index_add_(0, combo, z * z)
    cnt = cnt.view(n_groups, n_batches)
    s1 = s1.view(n_groups, n_batches, d)
    s2 = s2.view(n_groups, n_batches, d)
    ok = cnt >= min_cells
    okf = ok.to(z.dtype)
    n_ok = ok.sum(dim=1)
    valid_group = n_ok >= 2
    if not bool(valid_group.any()):
        return z.sum() * 0.0
    c = cnt.clamp(min=1).unsqueeze(-1)
    mu = s1 / c
    var = (s2 / c - mu * mu).clamp(min=0)
    w = (cnt * okf).unsqueeze(-1)
    gw = w.sum(dim=1).clamp(min=1)
    mu_g = (mu * w).sum(dim=1) / gw
    var_g = (var * w).sum(dim=1) / gw
    dev = ((mu - mu_g.unsqueeze(1)) ** 2 + ((var + 1e-6).sqrt() - (var_g + 1e-6).sqrt().unsqueeze(1)) ** 2).sum(-1)
    dev = dev * okf * valid_group.to(z.dtype).unsqueeze(1)
    weights = cnt * okf * valid_group.to(z.dtype).unsqueeze(1)
    return (dev * weights).sum() / weights.sum().clamp(min=1)


def drift_penalty(module: nn.Module, reference: dict[str, torch.Tensor]) -> torch.Tensor:
    """Squared L2 distance of a module's parameters from reference values."""
    total = None
    for name, p in module.named_parameters():
        term = ((p - reference[name]) ** 2).sum()
        total = term if total is None else total + term
    return total
