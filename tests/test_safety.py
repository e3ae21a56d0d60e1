"""Safety: config is data (safe YAML, never evaluated), weights load weights_only, names stay in results_dir."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from schelix_core.simulate import simulate
from tests.conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
WORKFLOW_CODE = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk")),
                 *sorted((REPO / "scripts").rglob("*.py"))]
LIBRARY_CODE = sorted((REPO / "schelix_core").rglob("*.py"))


def _config(tmp_path: Path, **changes) -> Path:
    data = tmp_path / "good.h5ad"
    simulate(n_cells=200, n_genes=100, seed=0).write_h5ad(data)
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config.update(results_dir=str(tmp_path / "res"), methods=["unintegrated"], datasets={"good": {"path": str(data)}})
    config.update(changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _dry(tmp_path, config: Path, *targets):
    return subprocess.run(SNAKEMAKE + ["--directory", str(tmp_path), "--configfile", str(config), "--cores", "1",
                                       "-n", *targets], capture_output=True, text=True)


def test_config_yaml_is_read_with_a_safe_loader(tmp_path):
    """A python-object YAML tag is refused, not executed."""
    marker = tmp_path / "PWNED"
    config = _config(tmp_path)
    text = config.read_text().replace("results_dir:", f"evil: !!python/object/apply:os.system ['touch {marker}']\nresults_dir:", 1)
    config.write_text(text)
    proc = _dry(tmp_path, config)
    assert proc.returncode != 0
    assert not marker.exists()


@pytest.mark.parametrize("path", WORKFLOW_CODE + LIBRARY_CODE, ids=lambda p: str(p.relative_to(REPO)))
def test_no_eval_exec_or_unsafe_deserialisation(path):
    text = path.read_text()
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert not re.search(r"(?<![.\w])(eval|exec|compile|__import__)\s*\(", code), "eval/exec on text"
    assert not re.search(r"\byaml\.(load|unsafe_load|full_load)\s*\(", code), "unsafe YAML loader"
    assert not re.search(r"\bpickle\.loads?\s*\(|\bshell\s*=\s*True", code), "pickle or shell=True"
    for call in re.finditer(r"torch\.load\s*\(([^)]*)\)", code):
        assert "weights_only=True" in call.group(1), call.group(0)


def test_model_weights_load_with_weights_only(tmp_path, monkeypatch):
    import torch

    from schelix_core import SCHelix
    from tests.schelix_fixtures import small_sim

    adata = small_sim(n_cells=200, n_genes=120)
    model = SCHelix(adata, "batch")
    model.train(seed=0, max_epochs=(1, 1, 1), progress_bar=False, accelerator="cpu")
    model.save(tmp_path / "model")
    calls = []
    real_load = torch.load

    def checked_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", checked_load)
    SCHelix.load(tmp_path / "model", adata, accelerator="cpu")
    assert calls and all(flag is True for flag in calls)


def test_method_name_cannot_escape_results_dir(tmp_path):
    """A target whose method part climbs out of results_dir matches no rule (wildcards are constrained)."""
    config = _config(tmp_path)
    res = tmp_path / "res"
    escape = f"{res}/good/integrated/unintegrated/../../../../escape/seed0.h5ad"
    proc = _dry(tmp_path, config, escape)
    assert proc.returncode != 0
    assert "MissingRuleException" in proc.stdout + proc.stderr or "No rule to produce" in proc.stdout + proc.stderr


@pytest.mark.parametrize("method", ["../escape", "harmony/../../x"])
def test_method_name_outside_the_registry_is_refused_at_start(tmp_path, method):
    proc = _dry(tmp_path, _config(tmp_path, methods=["unintegrated", method]))
    assert proc.returncode != 0 and method in proc.stdout + proc.stderr
