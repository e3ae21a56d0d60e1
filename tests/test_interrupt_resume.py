"""Faults: the workflow killed mid-training (SIGTERM) and mid-metrics (SIGKILL), then resumed.

Nothing half-written may remain, the input is never modified, a resume redoes only the
unfinished jobs, and the final results equal those of an uninterrupted run.

What a user needs to resume (found here, asserted below):
- after SIGTERM / Ctrl-C: snakemake cleans up and releases its lock; re-run the same command.
- after SIGKILL (or a crashed node): the lock stays, and the same command fails with
  "Directory cannot be locked"; run ``snakemake --unlock`` (same --configfile/--directory),
  then the same command. ``--rerun-incomplete`` is not needed for a job killed mid-run: every
  output is written to a temporary file and renamed, so it leaves no output to distrust. (A job
  killed in the instant after its rename, before snakemake recorded it, is listed as incomplete;
  ``--rerun-incomplete`` redoes it. The runs here use one core so that cannot happen.)
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml

from schelix_core.simulate import simulate
from tests.conftest import REPO

pytestmark = pytest.mark.slow
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
METHODS = ["unintegrated", "harmony", "scvi"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _setup(root: Path, data: Path) -> list[str]:
    root.mkdir()
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config.update(
        results_dir=str(root / "res"),
        methods=METHODS,
        seeds=[0],
        datasets={"tiny": {"path": str(data), "batch_key": "batch", "label_key": "cell_type"}},
        method_params={"scvi": {"max_epochs": 100}},
    )
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    # One core: the killed job is then the only one alive at the kill. With two, another job may be
    # killed after its output was renamed into place but before snakemake recorded it as finished,
    # which a resume reports as incomplete (README, "Resume after a failure"). Every run uses the
    # same core count, because scVI's result depends on its thread count.
    return SNAKEMAKE + ["--directory", str(root), "--configfile", str(root / "config.yaml"), "--cores", "1"]


def _run(cmd, root: Path, name: str, *extra) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd + list(extra), capture_output=True, text=True)
    (root / f"{name}.out").write_text(proc.stdout + proc.stderr)
    return proc


def _run_until(cmd, root: Path, name: str, ready, sig) -> None:
    """Start snakemake in its own process group; when ``ready()`` holds, signal the whole group."""
    with open(root / f"{name}.out", "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 400
        while not ready():
            assert proc.poll() is None, f"{name}: snakemake ended before the fault:\n{(root / f'{name}.out').read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{name}: the job to kill never started"
            time.sleep(0.2)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=120)
    if sig == signal.SIGKILL:  # nothing could clean up; stop any job process still alive
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(1)


def _started(log: Path, text: str, delay: float):
    """True ``delay`` seconds after the job's log first shows ``text`` (the job is under way)."""
    seen = []

    def ready():
        if not seen and log.exists() and text in log.read_text(errors="replace"):
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] >= delay

    return ready


def _files(res: Path) -> dict[str, int]:
    """Every result file (logs and benchmarks aside) with its modification time."""
    return {str(p.relative_to(res)): p.stat().st_mtime_ns for p in res.rglob("*")
            if p.is_file() and p.relative_to(res).parts[0] not in ("logs", "benchmarks")}


def _jobs(output: str) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a snakemake run started."""
    jobs = set()
    for block in re.split(r"\n(?=\[.*\d{4}\]\n)", output):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if rule:
            wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
            jobs.add((rule.group(1), wc.group(1).strip() if wc else ""))
    return jobs


def _half_written(res: Path) -> list[str]:
    return [str(p) for p in res.rglob("*") if ".tmp-" in p.name]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("interrupt")
    data = base / "input.h5ad"
    simulate(n_cells=600, n_genes=400, n_batches=2, n_cell_types=4, seed=1, missing_types_per_batch=0,
             library_size_mean=1500).write_h5ad(data)
    checksum = _sha(data)

    ref_root = base / "reference"
    ref = _run(_setup(ref_root, data), ref_root, "reference")
    assert ref.returncode == 0, ref.stderr[-4000:]

    root = base / "interrupted"
    cmd = _setup(root, data)
    res = root / "res"
    record = {}

    # Fault 1: SIGTERM to the whole process group while scVI trains.
    scvi_log = res / "logs" / "integrate" / "tiny" / "scvi" / "seed0.log"
    scvi_out = res / "tiny" / "integrated" / "scvi" / "seed0.h5ad"
    _run_until(cmd, root, "run1_sigterm", _started(scvi_log, "GPU available", delay=3), signal.SIGTERM)
    record["after_sigterm"] = _files(res)
    record["scvi_done_at_sigterm"] = scvi_out.exists()
    record["half_written_1"] = _half_written(res)

    # Fault 2: SIGKILL to the whole group while a metrics job (a real, ok run) computes.
    metrics_log = res / "logs" / "metrics" / "tiny" / "scvi" / "seed0.log"
    metrics_out = res / "tiny" / "metrics" / "scvi" / "seed0.parquet"
    _run_until(cmd, root, "run2_sigkill", _started(metrics_log, "", delay=2), signal.SIGKILL)
    record["after_sigkill"] = _files(res)
    record["metrics_done_at_sigkill"] = metrics_out.exists()
    record["half_written_2"] = _half_written(res)

    # Resume: the same command first (refused: stale lock), then --unlock, then the same command.
    record["locked"] = _run(cmd, root, "run3_locked")
    record["unlock"] = _run(cmd, root, "run4_unlock", "--unlock")
    record["final"] = _run(cmd, root, "run5_resume")
    record["final_files"] = _files(res)
    record["checksum"] = (checksum, _sha(data))
    return ref_root / "res", res, record


def test_killed_jobs_leave_no_output_or_temporary_file(runs):
    _, _, record = runs
    assert not record["scvi_done_at_sigterm"], "scVI finished before SIGTERM: the fault hit nothing"
    assert not record["metrics_done_at_sigkill"], "metrics finished before SIGKILL: the fault hit nothing"
    assert "tiny/integrated/scvi/seed0.h5ad" not in record["after_sigterm"]
    assert "tiny/metrics/scvi/seed0.parquet" not in record["after_sigkill"]
    assert record["half_written_1"] == [] and record["half_written_2"] == []


def test_after_sigkill_the_lock_must_be_released_with_unlock(runs):
    _, _, record = runs
    locked = record["locked"]
    assert locked.returncode != 0 and "cannot be locked" in locked.stdout + locked.stderr
    assert record["unlock"].returncode == 0


def test_resume_completes_and_redoes_only_unfinished_jobs(runs):
    _, res, record = runs
    final = record["final"]
    assert final.returncode == 0, final.stderr[-4000:]
    assert "--rerun-incomplete" not in final.stdout + final.stderr
    before, after = record["after_sigkill"], record["final_files"]
    kept = {f: t for f, t in before.items() if not f.startswith(".")}
    assert {f: after[f] for f in kept} == kept, "a finished output was redone or touched"
    ran = _jobs(final.stdout + final.stderr)
    assert ("metrics", "dataset=tiny, method=scvi, seed=0") in ran
    for rule in ("load_dataset", "qc_preprocess"):
        assert not any(r == rule for r, _ in ran), f"{rule} re-ran after the kill"
    # Only integrations whose output was missing at the kill may run again (the scheduler may
    # have started the scVI metrics before another method's integration on two cores).
    for rule, wildcards in ran:
        if rule == "integrate":
            method = re.search(r"method=(\w+)", wildcards).group(1)
            assert f"tiny/integrated/{method}/seed0.h5ad" not in before, f"{method}: a finished integration re-ran"


def test_results_equal_an_uninterrupted_run(runs):
    ref, res, _ = runs
    keys = ["dataset", "method", "seed", "metric"]
    a = pd.read_parquet(ref / "tables" / "metrics.parquet").sort_values(keys).reset_index(drop=True)
    b = pd.read_parquet(res / "tables" / "metrics.parquet").sort_values(keys).reset_index(drop=True)
    assert (a["status"] == "ok").all() and set(a["method"]) == set(METHODS)
    pd.testing.assert_frame_equal(a[keys + ["status"]], b[keys + ["status"]])
    np.testing.assert_allclose(a["value"].to_numpy(float), b["value"].to_numpy(float), rtol=1e-5, atol=1e-6)
    for method in METHODS:
        ea = ad.read_h5ad(ref / "tiny" / "integrated" / method / "seed0.h5ad").obsm["X_emb"]
        eb = ad.read_h5ad(res / "tiny" / "integrated" / method / "seed0.h5ad").obsm["X_emb"]
        np.testing.assert_allclose(ea, eb, rtol=1e-5, atol=1e-5, err_msg=method)


def test_input_is_never_modified(runs):
    _, _, record = runs
    before, after = record["checksum"]
    assert before == after
