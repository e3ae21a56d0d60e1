"""Command line: ``schelix integrate`` and ``schelix partition``."""

from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile


def _parse_value(text: str):
    low = text.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_params(items) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"schelix: --param expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = _parse_value(v.strip())
    return out


def _atomic_path(out_path: str, suffix: str) -> str:
    d = os.path.dirname(os.path.abspath(out_path)) or "."
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".schelix-", suffix=suffix, dir=d)
    os.close(fd)
    return tmp


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="schelix", description="scHelix single-cell integration")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("input", help="input .h5ad with raw counts")
    common.add_argument("output")
    common.add_argument("--batch-key", default="batch")
    common.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    common.add_argument("--labels-key", default=None)
    common.add_argument("--seed", type=int, default=0)

    pi = sub.add_parser("integrate", parents=[common], help="write obsm['X_schelix'] to OUT.h5ad")
    pi.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="hyperparameter (repeatable), e.g. --param n_latent=16")
    pi.add_argument("--partition", default=None, help="TSV with gene index and a 'role' column")
    pi.add_argument("--accelerator", default="auto")
    pi.add_argument("--num-threads", type=int, default=1)
    pi.add_argument("--max-epochs", default=None, help="int or p0,p1,p2")
    pi.add_argument("--save-model", default=None, help="directory to save the trained model")
    pi.add_argument("--no-progress", action="store_true")

    pp = sub.add_parser("partition", parents=[common], help="write the gene partition as TSV")
    pp.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="partition_genes keyword (repeatable)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import anndata as ad

    from .checks import SCHelixInputError

    try:
        adata = ad.read_h5ad(args.input)
        if args.command == "partition":
            from .partition import partition_genes

            res = partition_genes(adata, args.batch_key, layer=args.layer, labels_key=args.labels_key,
                                  seed=args.seed, **parse_params(args.param))
            tmp = _atomic_path(args.output, ".tsv")
            res.to_frame().to_csv(tmp, sep="\t")
            os.replace(tmp, args.output)
            n_v = int((res.roles == "variant").sum())
            print(f"schelix: {n_v} variant / {len(res.roles) - n_v} anchor genes -> {args.output}",
                  file=sys.stderr)
            return 0

        import json

        import pandas as pd

        from .model import SCHelix, check_model_folder

        partition = None
        if args.partition:
            partition = pd.read_csv(args.partition, sep="\t", index_col=0)
        max_epochs = None
        if args.max_epochs:
            parts = [int(x) for x in str(args.max_epochs).split(",")]
            max_epochs = parts[0] if len(parts) == 1 else tuple(parts)
        if args.save_model:
            check_model_folder(args.save_model)  # before training, not after it
        model = SCHelix(adata, args.batch_key, layer=args.layer, labels_key=args.labels_key,
                        partition=partition, **parse_params(args.param))
        model.train(accelerator=args.accelerator, seed=args.seed, max_epochs=max_epochs,
                    num_threads=args.num_threads, progress_bar=not args.no_progress)
        adata.obsm["X_schelix"] = model.get_latent_representation()
        adata.uns["schelix"] = {
            "params": json.dumps(model.params, default=str),
            "history": json.dumps(model.history),
        }
        adata.var["schelix_role"] = model.partition_.roles.reindex(adata.var_names).values
        if args.save_model:
            model.save(args.save_model)
        tmp = _atomic_path(args.output, ".h5ad")
        try:
            adata.write_h5ad(tmp)
            os.replace(tmp, args.output)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return 0
    except (SCHelixInputError, FileExistsError) as e:
        print(f"schelix: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
