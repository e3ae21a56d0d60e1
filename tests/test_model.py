import itertools
import math
import os
import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

import schelix_core
from schelix_core import graph
from schelix_core.checks import SCHelixInputError
from schelix_core.model import ABLATIONS, SCHelix, integrate
from schelix_core.partition import partition_genes
from schelix_core.preprocess import log_normalize, pca
from schelix_core.training import batch_size_for, epochs_for
from tests.schelix_fixtures import FAST_EPOCHS, knn_batch_entropy_and_accuracy, small_sim


@pytest.fixture(scope="module")
def sim():
    return small_sim()


@pytest.fixture(scope="module")
def sim_partition(sim):
    return partition_genes(sim, "batch", seed=0)


@pytest.fixture(scope="module")
def trained(sim, sim_partition):
    m = SCHelix(sim, "batch", partition=sim_partition)
    m.train(seed=0, max_epochs=(8, 8, 8), progress_bar=False, accelerator="cpu")
    return m


def test_public_api_exports():
    for name in ("SCHelix", "integrate", "partition_genes", "SCHelixInputError", "ABLATIONS"):
        assert hasattr(schelix_core, name)


def test_import_is_light():
    code = "import sys, schelix_core; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_each_phase_loss_falls(trained):
    for phase in ("phase0", "phase1", "phase2"):
        h = trained.history[phase]
        assert len(h) == 8
        assert h[-1] < h[0], (phase, h)


def test_align_weight_drives_only_the_variant_alignment(sim, sim_partition):
    """Phase 1 is alignment (InfoNCE, about log(batch size) at the start) plus mixing and
    reconstruction; the neighbour-contrast weight of phases 0 and 2 must not switch it off."""
    first_phase1 = {}
    for align in (0.0, 1.0):
        m = SCHelix(sim, "batch", partition=sim_partition, align_weight=align, contrast_weight=0.0)
        m.train(seed=0, max_epochs=(1, 1, 1), progress_bar=False, accelerator="cpu")
        first_phase1[align] = m.history["phase1"][0]
    assert first_phase1[1.0] - first_phase1[0.0] > 1.0, first_phase1


def test_no_align_removes_the_alignment_from_every_phase(sim, sim_partition):
    """The ablation is the full protocol with no alignment term: phase 1 skipped, and no
    alignment term in phase 2."""
    ablated = SCHelix(sim, "batch", partition=sim_partition, ablation="no_align")
    ablated.train(seed=0, max_epochs=(2, 2, 2), progress_bar=False, accelerator="cpu")
    unaligned = SCHelix(sim, "batch", partition=sim_partition, align_weight=0.0)
    unaligned.train(seed=0, max_epochs=(2, 0, 2), progress_bar=False, accelerator="cpu")
    np.testing.assert_allclose(ablated.get_latent_representation(), unaligned.get_latent_representation(),
                               atol=1e-6)


def _variant_encoder_change_in_phase2(sim, sim_partition, **hyperparameters):
    """Relative change of the variant encoder's weights made by two epochs of phase 2."""
    weights = []
    for phase2_epochs in (0, 2):
        m = SCHelix(sim, "batch", partition=sim_partition, **hyperparameters)
        m.train(seed=0, max_epochs=(1, 1, phase2_epochs), progress_bar=False, accelerator="cpu")
        weights.append(torch.cat([p.detach().ravel() for p in m.module.enc_v.parameters()]))
    return float((weights[1] - weights[0]).norm() / weights[0].norm())


def test_phase2_batch_removal_acts_on_the_anchor_stream_only(sim, sim_partition):
    """Neighbour contrast and within-group mixing of phase 2 act on the anchor latent: with
    reconstruction and alignment off, the variant encoder only feels AdamW's weight decay
    (about 1e-7 per step); with reconstruction on, the same two epochs move it."""
    idle = _variant_encoder_change_in_phase2(sim, sim_partition, recon_weight=0.0, align_weight=0.0)
    trained = _variant_encoder_change_in_phase2(sim, sim_partition)
    assert idle < 1e-5, idle
    assert trained > 1e-3, trained


def test_learning_rate_decays_to_zero_within_each_phase(sim, sim_partition, monkeypatch):
    """Each phase starts at its base rate and anneals to ~0, so a phase ends at a settled point
    rather than wherever its last mini-batches left it."""
    steps = []
    adamw_step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        steps.append((self, [g["lr"] for g in self.param_groups]))
        return adamw_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    m = SCHelix(sim, "batch", partition=sim_partition)
    m.train(seed=0, max_epochs=(3, 3, 3), progress_bar=False, accelerator="cpu")
    phases = []  # one optimizer per phase, in order
    for opt, lrs in steps:
        if not phases or phases[-1][0] is not opt:
            phases.append((opt, []))
        phases[-1][1].append(lrs)
    assert len(phases) == 3
    base = m.params["lr"]
    for _, rates in phases:
        first, last = np.array(rates[0]), np.array(rates[-1])
        assert first.max() == pytest.approx(base)
        assert (last < 0.1 * first).all(), (first, last)  # six steps: cos schedule ends at 0.067
        assert (np.diff(np.array(rates), axis=0) <= 1e-12).all()


def test_phases_take_their_step_budget_at_any_size(sim, sim_partition, monkeypatch):
    """Past the size where one epoch exceeds a phase's step budget, a phase ends part-way
    through its epoch: the budget holds at every size instead of a floor of whole epochs."""
    for n in (1_000, 10_000, 100_000, 1_000_000, 10_000_000):
        per_epoch = math.ceil(n / 256)
        for target in (250, 400):
            epochs = epochs_for(n, 256, target)
            assert 2 / 3 * target <= epochs * per_epoch <= 4 / 3 * target, (n, target, epochs)
            if per_epoch > target:
                assert epochs * per_epoch == pytest.approx(target)
    steps = []
    adamw_step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        steps.append(self)
        return adamw_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    m = SCHelix(sim, "batch", partition=sim_partition, target_steps=(5, 3, 3))
    m.train(seed=0, batch_size=60, progress_bar=False, accelerator="cpu")  # 600 cells: 10 steps an epoch
    per_phase = [sum(1 for _ in group) for _, group in itertools.groupby(steps, key=id)]
    assert per_phase == [5, 3, 3]
    assert [len(h) for h in m.history.values()] == [1, 1, 1]


def test_params_recorded(trained):
    p = trained.params
    assert p["seed"] == 0 and p["n_latent"] == 32 and p["alpha_max"] == 0.5 and p["epochs"] == [8, 8, 8]
    assert p["batch_size"] == 256 and p["device"] == "cpu"


def test_mini_batches_are_sized_for_the_device():
    """A CPU takes 256 cells a step; a GPU up to 1,024, never more than an eighth of the cells
    (small data sets train with the CPU's mini-batches) nor more than its memory holds."""
    gib = 2**30
    assert batch_size_for(1_000_000) == 256
    assert batch_size_for(1_000_000, 80 * gib) == 1024
    assert batch_size_for(6_000, 80 * gib) == 750
    assert batch_size_for(2_000, 80 * gib) == 256
    assert batch_size_for(100, 80 * gib) == 256
    for memory_gib in (0.02, 0.1, 2, 16, 80, 141):
        size = batch_size_for(10_000_000, memory_gib * gib)
        assert 256 <= size <= 1024
        assert size == 256 or 6 * 4 * size**2 <= 0.02 * memory_gib * gib
    assert batch_size_for(10_000_000, 0.1 * gib) < batch_size_for(10_000_000, 2 * gib)


def test_explicit_batch_size_overrides_the_device_default(sim, sim_partition):
    m = SCHelix(sim, "batch", partition=sim_partition, batch_size=100)
    m.train(seed=0, max_epochs=(1, 1, 1), progress_bar=False, accelerator="cpu")
    assert m.params["batch_size"] == 100


def test_embedding_shape_and_gate_bound(trained, sim):
    z = trained.get_latent_representation()
    assert z.shape == (sim.n_obs, 32) and np.isfinite(z).all()
    assert trained.gate_weights().max() <= 0.5 + 1e-6
    # the bound holds for the residual itself: no cell moves by more than alpha_max times
    # the norm of its anchor embedding, however large W z_V grows
    z_a = trained.get_latent_representation("anchor")
    moved = np.linalg.norm(z - z_a, axis=1)
    assert moved.max() > 0 and (moved <= 0.5 * np.linalg.norm(z_a, axis=1) + 1e-5).all()


def test_same_seed_same_embedding(sim, sim_partition, trained):
    m = SCHelix(sim, "batch", partition=sim_partition)
    m.train(seed=0, max_epochs=(8, 8, 8), progress_bar=False, accelerator="cpu")
    np.testing.assert_array_equal(m.get_latent_representation(), trained.get_latent_representation())


def test_different_seed_differs(sim, sim_partition, trained):
    m = SCHelix(sim, "batch", partition=sim_partition)
    m.train(seed=1, max_epochs=(8, 8, 8), progress_bar=False, accelerator="cpu")
    assert not np.allclose(m.get_latent_representation(), trained.get_latent_representation())


def test_save_load_roundtrip(trained, sim, tmp_path):
    trained.save(tmp_path / "model")
    loaded = SCHelix.load(tmp_path / "model", sim, accelerator="cpu")
    np.testing.assert_allclose(loaded.get_latent_representation(), trained.get_latent_representation(),
                               atol=1e-5)
    assert loaded.params["seed"] == 0
    assert (loaded.partition_.roles == trained.partition_.roles).all()


def test_interrupted_save_keeps_the_previous_model(trained, sim, tmp_path, monkeypatch):
    target = tmp_path / "model"
    trained.save(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def failing_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        trained.save(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    with pytest.raises(OSError, match="disk full"):
        trained.save(tmp_path / "new_model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no half-written or temporary folder
    monkeypatch.undo()
    trained.save(target)  # a model folder is replaced by the new model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    SCHelix.load(target, sim, accelerator="cpu")


def test_saved_folder_has_the_mode_of_a_plain_mkdir(trained, tmp_path):
    previous = os.umask(0o022)
    try:
        trained.save(tmp_path / "model")
    finally:
        os.umask(previous)
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o755


def test_save_refuses_a_folder_with_other_files(trained, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        trained.save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(FileExistsError, match="not empty"):
        trained.save(tmp_path, overwrite=False)


def test_features_cached_once_per_fit(sim, sim_partition, monkeypatch):
    calls = {"n": 0}
    orig = graph.diffuse

    def counting(*args, **kwargs):
        calls["n"] += 1
        return orig(*args, **kwargs)

    monkeypatch.setattr(graph, "diffuse", counting)
    m = SCHelix(sim, "batch", partition=sim_partition)
    m.train(seed=0, max_epochs=FAST_EPOCHS, progress_bar=False, accelerator="cpu")
    assert calls["n"] == 2  # one per stream, once per fit
    m.get_latent_representation()
    m.get_latent_representation("anchor")
    assert calls["n"] == 2
    for f in m._data.feats_a + m._data.feats_v:
        assert not f.requires_grad


def _same_type_share_of_cross_batch_edges(A, batch, labels):
    rows, cols = A.nonzero()
    cross = batch[rows] != batch[cols]
    return float(np.mean(labels[rows[cross]] == labels[cols[cross]]))


def test_graph_links_batches_through_matching_cells():
    """Cross-batch neighbours come from Harmony-corrected Anchor PCs. Here a condition moves
    every cell of one batch half-way from type 0's profile toward type 1's (as IFN-beta moves
    Kang's stimulated cells): on the raw PCs the graph then links types to each other across
    batches, and diffusion would blur them."""
    rng = np.random.default_rng(0)
    n_cells, n_genes, n_types = 900, 200, 4
    types = rng.integers(0, n_types, n_cells)
    batch = rng.integers(0, 2, n_cells)
    profiles = rng.normal(0, 0.8, (n_types, n_genes))
    condition = 0.5 * (profiles[1] - profiles[0])
    counts = rng.poisson(np.exp(1.0 + profiles[types] + batch[:, None] * condition)).astype(np.float32)
    obs = pd.DataFrame({"batch": batch.astype(str)}, index=[f"c{i}" for i in range(n_cells)])
    adata = ad.AnnData(counts, obs=obs)
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    m = SCHelix(adata, "batch", ablation="no_partition", partition=pd.Series("anchor", index=adata.var_names))
    m._prepare(0, torch.device("cpu"))
    codes = m._batch_codes
    raw = graph.batch_balanced_knn(m._data.feats_a[0].numpy(), codes, k=int(m.params["n_neighbors"]))
    raw_share = _same_type_share_of_cross_batch_edges(raw, codes, types)
    share = _same_type_share_of_cross_batch_edges(m._graph, codes, types)
    assert raw_share < 0.95  # the condition does mislead a graph on the raw PCs
    assert share > 0.98


def _all_anchor_graph(counts, batch, **params):
    """The prepared graph and scale-0 Anchor features of a model whose genes are all Anchors."""
    obs = pd.DataFrame({"batch": np.asarray(batch).astype(str)}, index=[f"c{i}" for i in range(len(counts))])
    adata = ad.AnnData(np.asarray(counts, dtype=np.float32), obs=obs)
    adata.var_names = [f"g{i}" for i in range(counts.shape[1])]
    m = SCHelix(adata, "batch", ablation="no_partition", partition=pd.Series("anchor", index=adata.var_names),
                **params)
    m._prepare(0, torch.device("cpu"))
    return m._graph, m._data.feats_a[0].numpy()


def test_unscaled_graph_pcs_keep_faint_genes_from_blurring_the_neighbours():
    """As on the real data sets (most Anchor genes average under 0.1 counts a cell), 1,500 faint
    genes carry only counting noise and 40 expressed genes tell four types apart. Scaled to unit
    variance every faint gene weighs as much as a marker; on the unscaled log expression each
    gene weighs by its variance, and the graph (scale_graph_pcs=False) links more cells to their
    own type. The stream features stay scaled either way."""
    rng = np.random.default_rng(0)
    n_cells, n_markers, n_faint, n_types = 800, 40, 1500, 4
    types = rng.integers(0, n_types, n_cells)
    batch = rng.integers(0, 2, n_cells)
    markers = rng.normal(0, 0.6, (n_types, n_markers))
    counts = np.hstack([rng.poisson(np.exp(0.5 + markers[types])), rng.poisson(0.03, (n_cells, n_faint))])
    shares, features, graphs = {}, {}, {}
    for scaled in (True, False):
        graphs[scaled], features[scaled] = _all_anchor_graph(counts, batch, scale_graph_pcs=scaled)
        rows, cols = graphs[scaled].nonzero()
        shares[scaled] = float(np.mean(types[rows] == types[cols]))
    assert shares[True] < 0.45  # chance is 0.25: the faint genes drown the markers
    assert shares[False] > 0.55
    np.testing.assert_array_equal(features[True], features[False])
    default_graph, _ = _all_anchor_graph(counts, batch)
    assert (default_graph != graphs[False]).nnz == 0  # the unscaled graph is the default


def test_cosine_graph_picks_neighbours_by_type_rather_than_depth():
    """Four types whose cells differ 30-fold in depth: a shallow cell detects fewer genes, so its
    log profile is shorter, and on the plain log expression cells neighbour cells of their own
    depth. Cosine normalisation keeps only the profile's direction; the stream features are
    untouched."""
    rng = np.random.default_rng(0)
    n_cells, n_genes, n_types = 800, 300, 4
    types = rng.integers(0, n_types, n_cells)
    profile = rng.normal(-1.0, 1.0, n_genes) + rng.normal(0, 0.5, (n_types, n_genes))
    depth = np.exp(rng.uniform(np.log(0.1), np.log(3.0), n_cells))
    counts = rng.poisson(depth[:, None] * np.exp(profile[types]))
    batch = rng.integers(0, 2, n_cells)
    type_share, depth_corr, features, graphs = {}, {}, {}, {}
    for cosine in (False, True):
        graphs[cosine], features[cosine] = _all_anchor_graph(counts, batch, cosine_graph=cosine)
        rows, cols = graphs[cosine].nonzero()
        type_share[cosine] = float(np.mean(types[rows] == types[cols]))
        depth_corr[cosine] = float(np.corrcoef(np.log(depth[rows]), np.log(depth[cols]))[0, 1])
    assert depth_corr[False] > 0.8 and depth_corr[True] < 0.6
    assert type_share[True] > type_share[False] + 0.05
    np.testing.assert_array_equal(features[True], features[False])
    default_graph, _ = _all_anchor_graph(counts, batch)
    assert (default_graph != graphs[True]).nnz == 0  # the cosine graph is the default


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_ablations_run(sim, sim_partition, ablation):
    m = SCHelix(sim, "batch", partition=sim_partition, ablation=ablation)
    m.train(seed=0, max_epochs=FAST_EPOCHS, progress_bar=False, accelerator="cpu")
    z = m.get_latent_representation()
    d = 64 if ablation == "concat" else 32
    assert z.shape == (sim.n_obs, d) and np.isfinite(z).all()
    if ablation == "no_diffusion":
        assert len(m._data.feats_a) == 1
    if ablation == "no_partition":
        assert m._data.feats_v is None and m._data.feats_a[0].shape[1] == 50
    if ablation == "no_refine":
        assert m.history["phase1"] == [] and m.history["phase2"] == []
    if ablation == "no_align":
        assert m.history["phase1"] == [] and len(m.history["phase2"]) == FAST_EPOCHS[2]


def test_no_fusion_outputs_the_full_models_anchor_latent(sim, sim_partition):
    """The ablation trains exactly what the full model trains and leaves out only the gated
    Variant message, so comparing the two measures the fusion and nothing else."""
    kwargs = dict(seed=0, max_epochs=FAST_EPOCHS, progress_bar=False, accelerator="cpu")
    full = SCHelix(sim, "batch", partition=sim_partition).train(**kwargs)
    ablated = SCHelix(sim, "batch", partition=sim_partition, ablation="no_fusion").train(**kwargs)
    anchor = full.get_latent_representation("anchor")
    np.testing.assert_allclose(ablated.get_latent_representation(), anchor, atol=1e-5)
    fused = full.get_latent_representation()
    assert np.abs(fused - anchor).max() > 1e-2  # the full model's output does carry the message


def test_gpu_request_without_cuda_raises(sim, sim_partition, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    m = SCHelix(sim, "batch", partition=sim_partition)
    for acc in ("gpu", "cuda"):
        with pytest.raises(SCHelixInputError, match="CUDA is not available"):
            m.train(accelerator=acc, max_epochs=FAST_EPOCHS, progress_bar=False)


def test_bad_inputs_raise(sim):
    with pytest.raises(SCHelixInputError, match="not found"):
        SCHelix(sim, "btch")
    with pytest.raises(SCHelixInputError, match="ablation"):
        SCHelix(sim, "batch", ablation="nope")
    with pytest.raises(SCHelixInputError, match="unknown hyperparameters"):
        SCHelix(sim, "batch", n_latnt=3)
    bad = pd.Series("anchor", index=sim.var_names[:-1])
    with pytest.raises(SCHelixInputError, match="missing"):
        SCHelix(sim, "batch", partition=bad)
    all_anchor = pd.Series("anchor", index=sim.var_names)
    m = SCHelix(sim, "batch", partition=all_anchor)
    with pytest.raises(SCHelixInputError, match="variant genes"):
        m.train(max_epochs=1, progress_bar=False)
    logged = sim.copy()
    logged.X = log_normalize(logged.X)
    with pytest.raises(SCHelixInputError, match="raw counts"):
        SCHelix(logged, "batch")


def test_integration_quality():
    """Mixes batches far better than uncorrected PCA while keeping cell types separable."""
    adata = small_sim(n_cells=1500, n_genes=500, seed=0)
    b = adata.obs["batch"].cat.codes.values
    y = adata.obs["cell_type"].cat.codes.values
    pcs, _ = pca(log_normalize(adata.X), 30)
    ent_pca, acc_pca = knn_batch_entropy_and_accuracy(pcs, b, y)
    z = integrate(adata, "batch", seed=0, accelerator="cpu")
    ent, acc = knn_batch_entropy_and_accuracy(z, b, y)
    assert ent > ent_pca + 0.3, (ent, ent_pca)
    assert acc > 0.9, acc


def test_cli_integrate_and_partition(tmp_path):
    adata = small_sim(n_cells=400, n_genes=200, seed=1)
    src = tmp_path / "in.h5ad"
    adata.write_h5ad(src)
    from schelix_core.cli import main

    assert main(["partition", str(src), str(tmp_path / "p.tsv"), "--batch-key", "batch"]) == 0
    part = pd.read_csv(tmp_path / "p.tsv", sep="\t", index_col=0)
    assert set(part["role"]) == {"anchor", "variant"} and len(part) == 200
    out = tmp_path / "out.h5ad"
    rc = main(["integrate", str(src), str(out), "--batch-key", "batch", "--seed", "0", "--partition",
               str(tmp_path / "p.tsv"), "--param", "n_latent=8", "--max-epochs", "2,2,2", "--no-progress"])
    assert rc == 0
    res = ad.read_h5ad(out)
    assert res.obsm["X_schelix"].shape == (400, 8)
    assert not list(tmp_path.glob(".schelix-*"))
    assert main(["integrate", str(src), str(out), "--batch-key", "bach", "--no-progress"]) == 2


def test_cli_refuses_a_model_folder_with_other_files_before_training(tmp_path, capsys, monkeypatch):
    adata = small_sim(n_cells=200, n_genes=120, seed=1)
    src = tmp_path / "in.h5ad"
    adata.write_h5ad(src)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.csv").write_text("keep")
    from schelix_core.cli import main

    def no_training(*args, **kwargs):
        raise AssertionError("trained although the model could not be saved")

    monkeypatch.setattr(SCHelix, "train", no_training)
    rc = main(["integrate", str(src), str(tmp_path / "out.h5ad"), "--batch-key", "batch", "--no-progress",
               "--save-model", str(tmp_path / "results")])
    assert rc == 2
    assert "table.csv" in capsys.readouterr().err
    assert not (tmp_path / "out.h5ad").exists()
    assert (tmp_path / "results" / "table.csv").read_text() == "keep"


def test_stage_timings_are_recorded(trained):
    trained.get_latent_representation()
    stages = {"partition", "pca", "graph", "diffusion_cache", "train_phase0", "train_phase1", "train_phase2", "embedding"}
    assert stages <= set(trained.timings_)
    assert all(trained.timings_[s] >= 0 for s in stages)
    assert trained.timings_["train_phase0"] > 0
