"""benchmarks/rounding_sensitivity.py: the settings it trains under, and the parameters it passes."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import load_benchmark

rounding_sensitivity = load_benchmark("rounding_sensitivity")


def _capability(env_extra: dict) -> str:
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env_extra}, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


def test_the_avx2_settings_change_the_kernels_torch_dispatches_to():
    default = _capability(rounding_sensitivity.SETTINGS["default"])
    if default not in ("AVX2", "AVX512"):
        pytest.skip(f"this CPU's kernels are {default}; the AVX2 setting only narrows AVX2 or AVX512 CPUs")
    for name in ("aten_avx2", "all_avx2"):
        assert _capability(rounding_sensitivity.SETTINGS[name]) == "AVX2", name


def test_method_params_are_the_configs_and_schelix_gets_its_seeds_partition(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"method_params": {"scvi": {"max_epochs": 5, "batch_size": 64}}}))
    assert rounding_sensitivity._method_params("scvi", tmp_path, "d", 3, config) == {"max_epochs": 5, "batch_size": 64}
    assert rounding_sensitivity._method_params("schelix", tmp_path, "d", 3, config) == {
        "partition": str(tmp_path / "d" / "partition" / "seed3.parquet")}
