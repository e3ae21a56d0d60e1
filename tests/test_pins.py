"""Version pins agree everywhere: pyproject.toml is the authority.

* every ``name==version`` pin in envs/*.yaml, containers/* recipes and constraints.txt agrees
  with pyproject.toml's pins (dependencies and every optional-dependencies group); a pin of a
  package pyproject does not name (pip itself, transitive packages) agrees across those files;
* conda's single ``=`` pins in envs/*.yaml (python, pip) agree too; python with requires-python;
* each conda env pins every one of pyproject's base dependencies (it installs the package with
  ``-e ../``, which would otherwise meet a conflicting or missing pin);
* every rule's ``conda:`` file exists, and every envs/*.yaml is used by some rule;
* every rule's ``container:`` is the image that containers/ builds, tagged with the version.

The checks are functions of the file contents, and tests below feed them edited copies to
show that they fail on a mismatch.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
ENVS = sorted((REPO / "envs").glob("*.yaml"))
CONTAINER_RECIPES = [REPO / "containers" / name for name in ("Dockerfile", "Dockerfile.cuda", "schelix.def")]
CONSTRAINTS = REPO / "constraints.txt"
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk")) + [REPO / "Snakefile"]

# name==version anywhere in a line (Dockerfile RUN lines, pip lists, requirement files)
PIP_PIN = re.compile(r"(?<![\w.-])([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)")
# a conda match spec with one '=' (python=3.11, pip=25.3)
CONDA_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*=\s*([0-9][A-Za-z0-9.*]*)$")


def pyproject_pins(text: str) -> tuple[dict[str, str], list[str], str]:
    """(name -> version for every == pin, base dependency names, requires-python)."""
    project = tomllib.loads(text)["project"]
    pins, base = {}, []
    groups = [project.get("dependencies", [])] + list(project.get("optional-dependencies", {}).values())
    for i, group in enumerate(groups):
        for line in group:
            req = Requirement(line)
            exact = [s.version for s in req.specifier if s.operator == "=="]
            assert len(exact) == 1, f"pyproject.toml: {line!r} is not pinned with =="
            name = canonicalize_name(req.name)
            assert pins.get(name, exact[0]) == exact[0], f"pyproject.toml pins {name} twice, differently"
            pins[name] = exact[0]
            if i == 0:
                base.append(name)
    return pins, base, project["requires-python"]


def text_pins(text: str) -> list[tuple[str, str, int]]:
    """(canonical name, version, line number) of every name==version in a text, comments excluded."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        for name, version in PIP_PIN.findall(code):
            found.append((canonicalize_name(name), version.rstrip("."), number))
    return found


def env_pins(text: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(pip ``==`` pins, conda ``=`` pins) of a conda environment file."""
    env = yaml.safe_load(text)
    pip_pins, conda_pins = [], []
    for dep in env.get("dependencies", []):
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                pip_pins += [(n, v) for n, v, _ in text_pins(line)]
        else:
            match = CONDA_PIN.match(dep.replace(" ", ""))
            if match:
                conda_pins.append((canonicalize_name(match.group(1)), match.group(2)))
            else:
                pip_pins += [(n, v) for n, v, _ in text_pins(dep)]
    return pip_pins, conda_pins


def pin_problems(pyproject_text: str, files: dict[str, str]) -> list[str]:
    """Every disagreement between pyproject's pins and the pins in `files` (label -> text).

    A label ending in .yaml is read as a conda environment, anything else as text.
    """
    pins, base, requires_python = pyproject_pins(pyproject_text)
    problems = []
    seen: dict[str, tuple[str, str]] = {}  # names pyproject does not pin: first (version, where)

    def check(name, version, where):
        if name in pins:
            if version != pins[name]:
                problems.append(f"{where}: {name}=={version}, but pyproject.toml pins {name}=={pins[name]}")
        elif name == "python":
            if not SpecifierSet(requires_python).contains(version + ".0" if version.count(".") == 1 else version):
                problems.append(f"{where}: python {version} outside requires-python {requires_python}")
        elif name in seen and seen[name][0] != version:
            problems.append(f"{where}: {name}=={version}, but {seen[name][1]} pins {name}=={seen[name][0]}")
        else:
            seen.setdefault(name, (version, where))

    for label, text in files.items():
        if label.endswith(".yaml"):
            pip_pins, conda_pins = env_pins(text)
            for name, version in pip_pins + conda_pins:
                check(name, version, label)
            missing = sorted(set(base) - {n for n, _ in pip_pins})
            if missing:
                problems.append(f"{label}: does not pin pyproject's dependencies {missing}")
        else:
            for name, version, line in text_pins(text):
                check(name, version, f"{label}:{line}")
    return problems


def _repo_files() -> dict[str, str]:
    paths = ENVS + CONTAINER_RECIPES + [CONSTRAINTS]
    return {str(p.relative_to(REPO)): p.read_text() for p in paths if p.exists()}


def rule_directives(text: str, directive: str) -> list[str]:
    """The string values of a rule directive (`conda:` or `container:`), one per rule."""
    return re.findall(rf"^\s+{directive}:\s*\n?\s*[\"']([^\"']+)[\"']", text, re.M)


# --- the repository -------------------------------------------------------------------------


def test_recipes_exist():
    assert ENVS, "no envs/*.yaml"
    for path in CONTAINER_RECIPES:
        assert path.is_file(), f"{path.relative_to(REPO)} missing"


def test_pins_agree_with_pyproject():
    problems = pin_problems(PYPROJECT.read_text(), _repo_files())
    assert not problems, "\n".join(problems)


def test_containers_install_the_pinned_torch_and_python():
    pins, _, _ = pyproject_pins(PYPROJECT.read_text())
    for path in CONTAINER_RECIPES[:2]:  # the two Dockerfiles
        text = path.read_text()
        assert f"torch=={pins['torch']}" in text, f"{path.name} does not install torch=={pins['torch']}"
        assert "-c constraints.txt" in text and ".[workflow]" in text, path.name
        assert "3.11" in text, f"{path.name}: Python 3.11 (requires-python) expected"


def conda_file_problems(rule_files, envs) -> list[str]:
    """Rules' conda: files that do not exist (relative to the rule file), and unused envs."""
    problems, used = [], set()
    for rule_file in rule_files:
        refs = rule_directives(rule_file.read_text(), "conda")
        for ref in refs:
            path = (rule_file.parent / ref).resolve()
            if not path.is_file():
                problems.append(f"{rule_file.name}: conda file {ref} does not exist")
            used.add(path)
    if not used:
        problems.append("no conda: directive found in the rules")
    problems += [f"{p.name} is used by no rule" for p in envs if p.resolve() not in used]
    return problems


def test_every_conda_file_exists_and_every_env_is_used():
    problems = conda_file_problems(RULE_FILES, ENVS)
    assert not problems, "\n".join(problems)


def test_rule_containers_match_the_built_image():
    version = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    image = f"ghcr.io/schelix/schelix:{version}"
    images = {img for f in RULE_FILES for img in rule_directives(f.read_text(), "container")}
    assert images == {f"docker://{image}"}, images
    definition = (REPO / "containers" / "schelix.def").read_text()
    assert re.search(rf"^From:\s*{re.escape(image)}\s*$", definition, re.M), "schelix.def must bootstrap from " + image
    for path in CONTAINER_RECIPES[:2]:
        assert f'org.opencontainers.image.version="{version}' in path.read_text(), path.name


# --- the checks can fail ----------------------------------------------------------------------


def _edited(label: str, old: str, new: str) -> dict[str, str]:
    files = _repo_files()
    assert old in files[label], f"{old!r} not in {label}"
    files[label] = files[label].replace(old, new, 1)
    return files


@pytest.mark.parametrize(
    ("label", "old", "new", "expected"),
    [
        ("envs/core.yaml", "numpy==2.4.6", "numpy==2.4.5", "numpy==2.4.5"),
        ("envs/methods.yaml", "scvi-tools==1.4.2", "scvi_tools==1.4.1", "scvi-tools==1.4.1"),
        ("envs/metrics.yaml", "python=3.11", "python=3.12", "python 3.12"),
        ("envs/metrics.yaml", "pip=25.3", "pip=25.2", "pip==25.2"),
        ("envs/core.yaml", "      - tqdm==4.70.1\n", "", "['tqdm']"),
        ("containers/Dockerfile", "torch==2.13.0", "torch==2.12.0", "torch==2.12.0"),
        ("containers/Dockerfile.cuda", "torch==2.13.0", "torch==2.13.1", "torch==2.13.1"),
        ("constraints.txt", "anndata==0.12.19", "anndata==0.12.18", "anndata==0.12.18"),
    ],
)
def test_a_mismatched_pin_is_found(label, old, new, expected):
    problems = pin_problems(PYPROJECT.read_text(), _edited(label, old, new))
    assert any(label in p and expected in p for p in problems), problems


def test_a_changed_pyproject_pin_is_found(tmp_path):
    copy = tmp_path / "pyproject.toml"
    copy.write_text(PYPROJECT.read_text().replace('"jax==0.10.2"', '"jax==0.10.3"'))
    problems = pin_problems(copy.read_text(), _repo_files())
    assert any("metrics.yaml" in p and "jax==0.10.2" in p for p in problems), problems
    assert any("constraints.txt" in p and "jax==0.10.2" in p for p in problems), problems


def test_a_missing_conda_file_is_found(tmp_path):
    rules = tmp_path / "workflow" / "rules"
    rules.mkdir(parents=True)
    copy = rules / "integrate.smk"
    copy.write_text((REPO / "workflow" / "rules" / "integrate.smk").read_text())
    (tmp_path / "envs").mkdir()
    envs = []
    for env in ENVS:
        envs.append(tmp_path / "envs" / env.name)
        envs[-1].write_text(env.read_text())
    assert [p for p in conda_file_problems([copy], envs) if "does not exist" in p] == []
    copy.write_text(copy.read_text().replace("envs/methods.yaml", "envs/method.yaml"))
    problems = conda_file_problems([copy], envs)
    assert "integrate.smk: conda file ../../envs/method.yaml does not exist" in problems, problems
    assert "methods.yaml is used by no rule" in problems, problems
