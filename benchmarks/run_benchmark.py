"""Run the issue-#4 benchmark and regenerate docs/benchmark.md from its tables.

    python benchmarks/run_benchmark.py [--cores 2] [--configfile config/benchmark.yaml] [--report-only]

Snakemake runs with --keep-going, so one failed run does not stop the others; failures stay
in the tables and the document. The exit code is snakemake's.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def machine_description() -> str:
    from schelix_core.benchmark.contract import cpu_model

    cpu = cpu_model()
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPU cores ({cpu}), {mem_gb:.0f} GiB RAM, {platform.system()} {platform.release()}, no GPU used"


def schelix_versions(results: Path, config: dict) -> dict:
    import anndata as ad

    for dataset in config["datasets"]:
        for seed in config["seeds"]:
            path = results / dataset / "integrated" / "schelix" / f"seed{seed}.h5ad"
            if path.exists():
                return dict(ad.read_h5ad(path, backed="r").uns["versions"])
    return {}


def write_report(config_path: Path, out: Path, command: str) -> None:
    import pandas as pd

    from schelix_core.benchmark.report import benchmark_markdown

    config = yaml.safe_load(config_path.read_text())
    results = REPO / config["results_dir"]
    summary = pd.read_parquet(results / "tables" / "summary.parquet")
    figure_dir = out.with_suffix("")
    figure_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    sources = [results / "figures" / "results_table.png", results / "figures" / "completeness.png"]
    sources += [results / "figures" / f"umap_{d}.png" for d in config["datasets"]]
    for src in sources:
        if src.exists():
            shutil.copyfile(src, figure_dir / src.name)
            figures.append(f"{figure_dir.name}/{src.name}")
    text = benchmark_markdown(summary, command, schelix_versions(results, config), machine_description(),
                              figures, config["datasets"])
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(out)
    print(f"wrote {out}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/benchmark.yaml")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--out", default="docs/benchmark.md")
    parser.add_argument("--report-only", action="store_true", help="only regenerate the document")
    args, extra = parser.parse_known_args(argv)
    config_path = REPO / args.configfile
    rc = 0
    if not args.report_only:
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO),
               "--configfile", str(config_path), "--cores", str(args.cores), "--keep-going", *extra]
        rc = subprocess.run(cmd).returncode
    command = f"python benchmarks/run_benchmark.py --configfile {args.configfile} --cores {args.cores}"
    if args.out != parser.get_default("out"):
        command += f" --out {args.out}"
    write_report(config_path, REPO / args.out, command)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
