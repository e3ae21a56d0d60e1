"""Rule check_status: after every table and figure exists, fail if any run failed."""

from schelix_core.benchmark.workflow_io import logged, write_atomic

with logged(snakemake):
    import pandas as pd

    runs = pd.read_parquet(snakemake.input.runs)
    failed = runs[runs["status"] != "ok"]
    lines = [f"{len(runs) - len(failed)}/{len(runs)} runs ok"]
    lines += [f"FAILED {r.dataset} {r.method} seed {r.seed}: {r.error}" for r in failed.itertuples()]
    text = "\n".join(lines) + "\n"
    print(text)
    if len(failed) and snakemake.params.fail_on_error:
        raise SystemExit(f"{len(failed)} run(s) failed; the tables and figures record them:\n{text}")
    write_atomic(snakemake.output[0], lambda tmp: tmp.write_text(text))
