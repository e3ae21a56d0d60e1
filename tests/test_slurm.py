"""The workflow through a real single-node SLURM cluster (snakemake-executor-plugin-slurm).

Starts the cluster with ../shared/slurm/start-slurm.sh (root; installs Debian's SLURM if
missing), then runs three workflows at once, each in its own temporary working directory
(its own .snakemake, so no lock is shared with a run in the repository):

* ``slurm``: the tiny config with harmony and a scanorama that crashes on purpose, through ``--profile profiles/slurm --profile profiles/slurm-ci``;
* ``local``: the same config with ``--cores 2`` (the reference for the results);
* ``broken``: a dataset that is not an .h5ad, so a SLURM job itself exits non-zero.

Then checks that every non-local job ran as a SLURM job, that the results equal the local
run's, that the crashed method is recorded as failed and makes snakemake exit non-zero after
the tables and figures are made, and that a failing SLURM job is noticed (no hang: the
cluster has no accounting database, so the CI profile polls squeue).

Skips (with the reason) where SLURM cannot be started: not root, no apt-get and no SLURM, or
start-slurm.sh failing; under CI=true each of those fails instead. Stops the daemons at the end
only if this test started them. Takes about 3 minutes on 2 cores (most of it the scIB
metrics); the first run on a machine also compiles the numba/JAX caches (~/.cache/schelix).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SHARED_SLURM = Path(
    os.environ.get("SCHELIX_SHARED_SLURM", Path(__file__).resolve().parents[2] / "shared" / "slurm")
)
RUNDIR = Path(os.environ.get("SLURM_CI_RUNDIR", "/run/slurm-ci"))
PROFILES = [REPO / "profiles" / "slurm", REPO / "profiles" / "slurm-ci"]
IN_CI = os.environ.get("CI") == "true"

METHODS = ["harmony", "scanorama"]  # few methods: each scIB metrics job takes ~50 s
CRASHING = "scanorama"  # int("not-a-number") raises inside scripts/methods/scanorama_embed.py
# Rules the workflow runs on the submitting machine (report.smk's localrules, and 'all').
LOCAL_RULES = {"aggregate_metrics", "plot_summary", "check_status", "all"}
EXPECTED_SLURM_JOBS = {"load_dataset": 1, "qc_preprocess": 1, "integrate": 2, "metrics": 2, "plot_umaps": 1}
RUN_TIMEOUT_S = 900


def _unavailable(message: str):
    if IN_CI:
        pytest.fail(f"{message}; CI=true must run the SLURM test")
    pytest.skip(message)


def _daemon_alive(name: str) -> bool:
    """Whether the pid file of start-slurm.sh names a running `name`."""
    try:
        pid = int((RUNDIR / f"{name}.pid").read_text().strip())
        return Path(f"/proc/{pid}/comm").read_text().strip() == name
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def slurm_cluster():
    start, stop = SHARED_SLURM / "start-slurm.sh", SHARED_SLURM / "stop-slurm.sh"
    if os.geteuid() != 0:
        _unavailable("starting a SLURM cluster needs root")
    if not start.is_file() or not stop.is_file():
        _unavailable(f"start-slurm.sh/stop-slurm.sh not found in {SHARED_SLURM} (set SCHELIX_SHARED_SLURM)")
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        _unavailable("SLURM is not installed and there is no apt-get to install it")
    ours_before = {name: _daemon_alive(name) for name in ("munged", "slurmctld", "slurmd")}
    env = {**os.environ, "SLURM_CI_CPUS": os.environ.get("SLURM_CI_CPUS", "4")}  # 4 > 2 cores: jobs overlap
    try:
        proc = subprocess.run(["bash", str(start)], env=env, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        _unavailable("start-slurm.sh did not finish in 15 min")
    if proc.returncode != 0:
        _unavailable(f"start-slurm.sh failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    started_by_us = not (ours_before["slurmctld"] or ours_before["slurmd"])
    yield
    if started_by_us:
        stop_env = {**os.environ, "SLURM_CI_KEEP_MUNGE": "1"} if ours_before["munged"] else dict(os.environ)
        subprocess.run(["bash", str(stop)], env=stop_env, capture_output=True, text=True, timeout=120)


def _write_config(path: Path, results: Path, **changes) -> Path:
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config.update(results_dir=str(results), **changes)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _snakemake(workdir: Path, config: Path, extra: list[str]) -> tuple[list[str], Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", str(config), *extra]
    return cmd, workdir / "snakemake.out"


class Run:
    def __init__(self, name, cmd, log, results):
        self.name, self.cmd, self.log_path, self.results = name, cmd, log, results
        env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
        self._fh = open(log, "w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self._fh, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        self.returncode = None

    def wait(self, deadline: float):
        try:
            self.returncode = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGTERM)  # snakemake cancels its SLURM jobs on SIGTERM
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.returncode = "timeout"
        finally:
            self._fh.close()
        self.log = Path(self.log_path).read_text(errors="replace")
        return self


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    base = tmp_path_factory.mktemp("slurm_runs")
    params = {"method_params": {**yaml.safe_load((REPO / "config" / "test.yaml").read_text())["method_params"],
                                CRASHING: {"dimred": "not-a-number"}}}
    profile_args = [a for p in PROFILES for a in ("--profile", str(p))]

    started = time.monotonic()
    procs = {}
    res = base / "slurm" / "results"
    cfg = _write_config(base / "slurm.yaml", res, methods=METHODS, **params)
    cmd, log = _snakemake(base / "slurm", cfg, profile_args)
    procs["slurm"] = Run("slurm", cmd, log, res)

    res = base / "local" / "results"
    cfg = _write_config(base / "local.yaml", res, methods=METHODS, **params)
    # the tables only: the figures are not compared
    cmd, log = _snakemake(base / "local", cfg, ["--cores", "2", str(res / "tables" / "metrics.parquet")])
    procs["local"] = Run("local", cmd, log, res)

    broken = base / "broken"
    broken.mkdir()
    (broken / "corrupt.h5ad").write_bytes(b"this is not an HDF5 file\n")
    res = broken / "results"
    cfg = _write_config(base / "broken.yaml", res, methods=["unintegrated"],
                        datasets={"broken": {"path": str(broken / "corrupt.h5ad")}})
    cmd, log = _snakemake(broken, cfg, profile_args)
    procs["broken"] = Run("broken", cmd, log, res)

    deadline = started + RUN_TIMEOUT_S
    for run in procs.values():
        run.wait(deadline)
        assert run.returncode != "timeout", f"{run.name} run did not finish in {RUN_TIMEOUT_S} s:\n{run.log[-5000:]}"
    print(f"three workflow runs took {time.monotonic() - started:.0f} s")
    return procs


def _jobs(log: str) -> dict[int, tuple[str, bool]]:
    """snakemake jobid -> (rule, is local) from the job blocks of a snakemake log."""
    jobs = {}
    for match in re.finditer(r"^(localrule|rule) (\w+):\n(?:    .*\n)*?    jobid: (\d+)$", log, re.M):
        jobs[int(match.group(3))] = (match.group(2), match.group(1) == "localrule")
    return jobs


def _submissions(log: str) -> dict[int, tuple[str, Path]]:
    """snakemake jobid -> (SLURM jobid, SLURM log) from the plugin's submission lines."""
    pattern = r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\."
    return {int(j): (s, Path(p)) for j, s, p in re.findall(pattern, log)}


def _slurm_states(slurm_ids) -> dict[str, tuple[str, str]]:
    """SLURM jobid -> (state, comment); MinJobAge=300 keeps finished jobs visible to squeue."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(slurm_ids), "-o", "%i|%T|%k"],
                         capture_output=True, text=True, check=True).stdout
    return {i: (state, comment) for i, state, comment in (line.split("|", 2) for line in out.splitlines())}


def test_every_nonlocal_job_ran_on_slurm(runs):
    log = runs["slurm"].log
    jobs, submitted = _jobs(log), _submissions(log)
    assert jobs, f"no job blocks found in the snakemake log:\n{log[-5000:]}"
    remote = {j: rule for j, (rule, local) in jobs.items() if not local}
    local = {rule for rule, is_local in jobs.values() if is_local}
    assert local <= LOCAL_RULES, f"rules run locally that should go to SLURM: {local - LOCAL_RULES}"
    counts = {rule: list(remote.values()).count(rule) for rule in set(remote.values())}
    assert counts == EXPECTED_SLURM_JOBS
    assert set(submitted) == set(remote), "every non-local job, and only those, is submitted with sbatch"
    states = _slurm_states([s for s, _ in submitted.values()])
    for jobid, (slurm_id, slurm_log) in submitted.items():
        rule = remote[jobid]
        assert slurm_id in states, f"SLURM job {slurm_id} ({rule}) unknown to squeue"
        state, comment = states[slurm_id]
        assert state == "COMPLETED", f"SLURM job {slurm_id} ({rule}) is {state}"
        assert comment.startswith(f"rule_{rule}"), comment
        assert slurm_log.is_file(), f"no SLURM log {slurm_log} (did SLURM run job {slurm_id}?)"
        assert f"rule {rule}:" in slurm_log.read_text(errors="replace")


def test_results_equal_local_run(runs):
    import anndata as ad
    import pandas as pd

    assert runs["local"].returncode == 0, runs["local"].log[-5000:]
    slurm, local = runs["slurm"].results, runs["local"].results
    keys = ["dataset", "method", "seed", "metric"]
    a = pd.read_parquet(slurm / "tables" / "metrics.parquet").sort_values(keys, ignore_index=True)
    b = pd.read_parquet(local / "tables" / "metrics.parquet").sort_values(keys, ignore_index=True)
    assert len(a) > 0 and set(a["method"]) == set(METHODS) - {CRASHING}
    pd.testing.assert_frame_equal(a.drop(columns="value"), b.drop(columns="value"))
    np.testing.assert_allclose(a["value"], b["value"], rtol=1e-6, atol=1e-9, equal_nan=True)

    run_cols = ["dataset", "method", "seed", "status", "error", "output_type", "engine"]
    ra = pd.read_parquet(slurm / "tables" / "runs.parquet")[run_cols].sort_values(run_cols[:3], ignore_index=True)
    rb = pd.read_parquet(local / "tables" / "runs.parquet")[run_cols].sort_values(run_cols[:3], ignore_index=True)
    pd.testing.assert_frame_equal(ra, rb)

    for method in METHODS:
        x = ad.read_h5ad(slurm / "tiny" / "integrated" / method / "seed0.h5ad")
        y = ad.read_h5ad(local / "tiny" / "integrated" / method / "seed0.h5ad")
        assert x.uns["status"] == y.uns["status"]
        assert list(x.obs_names) == list(y.obs_names)
        if x.uns["status"] == "ok":
            np.testing.assert_allclose(x.obsm["X_emb"], y.obsm["X_emb"], rtol=1e-6, atol=1e-6)


def test_crashing_method_recorded_and_fails_the_run(runs):
    import pandas as pd

    run = runs["slurm"]
    assert run.returncode not in (0, "timeout"), "a failed method must make snakemake exit non-zero"
    assert "Error in rule check_status" in run.log
    for rule in EXPECTED_SLURM_JOBS:  # no SLURM job failed: the crash is recorded, not raised
        assert f"Error in rule {rule}:" not in run.log
    table = pd.read_parquet(run.results / "tables" / "runs.parquet").set_index("method")
    assert table.loc[CRASHING, "status"] == "failed"
    assert "not-a-number" in table.loc[CRASHING, "error"], table.loc[CRASHING, "error"]
    others = table.drop(index=CRASHING)
    assert (others["status"] == "ok").all(), others[["status", "error"]]
    # every table and figure is made before check_status fails; its own output is not
    for name in ("tables/metrics.parquet", "tables/summary.csv", "figures/completeness.png",
                 "figures/results_table.png", "figures/umap_tiny.png"):
        assert (run.results / name).is_file(), name
    assert not (run.results / "tables" / "status.txt").exists()
    assert f"FAILED tiny {CRASHING} seed 0" in (run.results / "logs" / "check_status.log").read_text()


def test_failing_slurm_job_is_reported(runs):
    run = runs["broken"]
    assert run.returncode not in (0, "timeout"), run.log[-5000:]
    assert "Error in rule load_dataset:" in run.log
    match = re.search(r"SLURM-job '(\d+)' failed, SLURM status is: '(\w+)'", run.log)
    assert match, run.log[-5000:]
    assert match.group(2) == "FAILED"
    state, comment = _slurm_states([match.group(1)])[match.group(1)]
    assert state == "FAILED" and comment.startswith("rule_load_dataset")
    assert not (run.results / "tables").exists()
