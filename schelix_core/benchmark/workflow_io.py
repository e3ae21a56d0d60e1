"""Small helpers for the workflow's rule scripts."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import os
import traceback
from pathlib import Path


@contextlib.contextmanager
def logged(snakemake):
    """Send a rule script's stdout and stderr to its ``log:`` file."""
    log = Path(snakemake.log[0])
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        try:
            yield
        except BaseException:
            traceback.print_exc()  # the reason belongs in the job's own log, not only the scheduler's
            raise


def atomic_path(path: str | os.PathLike) -> Path:
    """A temporary sibling of ``path``; write there, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def write_atomic(path, writer) -> None:
    """Call ``writer(tmp_path)`` and rename the result onto ``path``."""
    tmp = atomic_path(path)
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def threads_from(snakemake) -> int:
    return int(getattr(snakemake, "threads", 1) or 1)


def _module_file(root: Path, module: str) -> Path | None:
    path = root.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(module: str, file: Path):
    """Every module an import statement in ``file`` names, lazy imports inside functions included."""
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # ``from pkg import module``


def source_files(root, modules=(), files=()) -> list[Path]:
    """The given files, and the given modules plus every module under ``root`` they import.

    Imports are followed transitively from ``modules`` only: a rule script's own helpers (logging,
    atomic writes) do not change its results. A module's parent packages count as imported (their
    ``__init__`` runs first); modules that do not live under ``root`` (third-party ones) are ignored.
    """
    root = Path(root)
    found = {(root / f).resolve() for f in files}
    queue = []
    seen = set()

    def enqueue(name: str, required: bool) -> None:
        parts = name.split(".")
        for prefix in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
            if prefix in seen:
                continue
            target = _module_file(root, prefix)
            if target is None:
                if required and prefix == name:
                    raise FileNotFoundError(f"module {name!r} has no source under {root}")
                continue
            seen.add(prefix)
            queue.append((prefix, target))

    for module in modules:
        enqueue(module, required=True)
    while queue:
        module, file = queue.pop()
        found.add(file.resolve())
        for name in _imported_modules(module, file):
            enqueue(name, required=False)
    return sorted(found)


def _code_without_prose(path: Path) -> bytes:
    """A Python file's syntax tree without comments or docstrings, so editing prose re-runs nothing.

    The dump does not include line numbers, so moving code or changing its layout does not count
    either. It can differ between Python versions, which then re-run everything once.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:]
    return ast.dump(tree).encode()


def source_digest(root, modules=(), files=()) -> str:
    """A digest of the code in :func:`source_files`: it changes exactly when code they run changes.

    Snakemake re-runs a job when its rule's own code changes, not when the package its script
    calls does; a rule that takes this digest as a parameter is re-run then too.
    """
    root = Path(root).resolve()
    digest = hashlib.sha256()
    for path in source_files(root, modules, files):
        name = path.relative_to(root) if path.is_relative_to(root) else path
        digest.update(f"{name}\0".encode())
        digest.update(_code_without_prose(path) if path.suffix == ".py" else path.read_bytes())
    return digest.hexdigest()[:16]

