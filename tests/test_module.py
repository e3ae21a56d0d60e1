import torch

from schelix_core.module import FusionGate, SCHelixModule, group_mixing_loss, info_nce, drift_penalty


def test_gate_effective_weight_is_bounded():
    torch.manual_seed(0)
    gate = FusionGate(16, alpha_max=0.2, bounded=True)
    with torch.no_grad():
        for p in gate.parameters():
            p.mul_(50.0)  # extreme weights saturate tanh and sigmoid
        gate.a.fill_(100.0)
    for _ in range(20):
        za, zv = torch.randn(256, 16) * 10, torch.randn(256, 16) * 10
        w = gate.gate(za, zv).abs().detach()
        assert float(w.max()) <= 0.2 + 1e-6
        # and no cell departs from z_A by more than alpha_max * |z_A|, however large W z_V is
        dev = (gate(za, zv) - za).norm(dim=1)
        assert torch.all(dev <= 0.2 * za.norm(dim=1) + 1e-4)
    assert float(gate.alpha.detach()) <= 0.2 + 1e-6


def test_unbounded_gate_can_exceed_bound():
    torch.manual_seed(0)
    gate = FusionGate(16, alpha_max=0.2, bounded=False)
    za, zv = torch.randn(256, 16) * 10, torch.randn(256, 16) * 10
    w = gate.gate(za, zv).abs().detach()
    assert float(w.max()) > 0.2
    dev = (gate(za, zv) - za).norm(dim=1).detach()
    assert bool((dev > 0.2 * za.norm(dim=1)).any())


def test_gate_input_stops_gradient_of_variant():
    gate = FusionGate(4)
    za = torch.randn(8, 4)
    zv = torch.randn(8, 4, requires_grad=True)
    gate.gate(za, zv).sum().backward()
    assert zv.grad is None or torch.all(zv.grad == 0)


def test_info_nce_prefers_matched_pairs():
    torch.manual_seed(0)
    z = torch.randn(64, 8)
    assert info_nce(z, z + 0.01 * torch.randn_like(z)) < info_nce(z, torch.randn(64, 8))


def test_group_mixing_ignores_composition_differences():
    """Batches that differ only in cell-type composition (groups) incur no loss; a batch
    shift within a group does."""
    torch.manual_seed(0)
    n = 400
    group = torch.randint(0, 2, (n,))
    batch = torch.randint(0, 2, (n,))
    # batch 0 mostly group 0, batch 1 mostly group 1: composition differs strongly
    group = torch.where(torch.rand(n) < 0.9, batch, 1 - batch)
    centers = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    z = centers[group] + 0.01 * torch.randn(n, 2)
    loss_ok = group_mixing_loss(z, batch, group, n_batches=2, n_groups=2)
    shifted = z + 3.0 * batch[:, None].float()
    loss_bad = group_mixing_loss(shifted, batch, group, n_batches=2, n_groups=2)
    assert float(loss_ok) < 1e-3
    assert float(loss_bad) > 1.0


def test_module_shapes_and_drift():
    m = SCHelixModule(dim_a=10, dim_v=6, n_scales=3, n_batches=2, n_latent=8)
    fa = [torch.randn(5, 10) for _ in range(3)]
    fv = [torch.randn(5, 6) for _ in range(3)]
    za, zv = m.enc_a(fa), m.enc_v(fv)
    assert m.fuse(za, zv).shape == (5, 8)
    assert m.dec_a(za, torch.tensor([0, 1, 0, 1, 1])).shape == (5, 10)
    ref = {k: v.detach().clone() for k, v in m.enc_a.named_parameters()}
    assert float(drift_penalty(m.enc_a, ref).detach()) == 0.0
    mc = SCHelixModule(dim_a=10, dim_v=6, n_scales=3, n_batches=2, n_latent=8, fusion="concat")
    assert mc.fuse(mc.enc_a(fa), mc.enc_v(fv)).shape == (5, 16)


def test_mixing_groups_span_batches_where_the_latent_is_split_by_batch():
    """Groups for the mixing loss must match cells across batches: k-means on a latent with a
    batch shift returns batch-pure groups, the Harmony-corrected grouping does not."""
    import numpy as np

    from schelix_core.partition import kmeans_groups
    from schelix_core.training import latent_groups

    rng = np.random.default_rng(0)
    n_types, per = 3, 200
    centres = rng.normal(scale=10.0, size=(n_types, 8))
    cell_type = np.repeat(np.arange(n_types), 2 * per)
    batch = np.tile(np.repeat([0, 1], per), n_types)
    z = centres[cell_type] + rng.normal(size=(len(batch), 8))
    z[:, 0] += 4.0 * batch

    def min_minor_share(groups):
        shares = [np.mean(batch[groups == g]) for g in np.unique(groups)]
        return min(min(s, 1 - s) for s in shares)

    assert min_minor_share(kmeans_groups(z, 6, 0, cells_per_group=150, max_groups=50)) < 0.05
    groups = latent_groups(z, batch, 6, seed=0)
    assert len(np.unique(groups)) == 6
    assert min_minor_share(groups) > 0.3
