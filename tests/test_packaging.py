"""One dependency truth: pyproject's requirements, constraints/tested.txt, the images and the docs agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNTESTED_IN_IMAGE = {"bitsandbytes", "s3fs"}  # a GPU and an object store: not on the test machines


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints" / "tested.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[_name(name)] = version.strip()
    return pins


def _image_packages() -> tuple[str, set[str]]:
    text = (ROOT / "docker" / "training.Dockerfile").read_text().replace("\\\n", " ")
    torch = re.search(r"ARG TORCH_SPEC=(\S+)", text).group(1)
    (install,) = [line for line in text.splitlines() if "-c /tmp/tested.txt" in line]
    words = install.split("-c /tmp/tested.txt", 1)[1].split()
    return torch, {_name(w) for w in words}


def test_the_training_image_installs_the_trainers_dependencies_at_the_tested_versions():
    """The image installs, by name, exactly the core's and [train]'s requirements less Airflow (which the
    trainer never imports), each at its version in constraints/tested.txt; torch as scripts/bootstrap does."""
    project = _project()
    wanted = {
        _name(r) for r in [*project["dependencies"], *project["optional-dependencies"]["train"]]
        if not _name(r).startswith("apache-airflow")
    }  # fmt: skip
    torch, installed = _image_packages()
    assert installed - UNTESTED_IN_IMAGE == wanted - {"torch"}
    pins = _pins()
    assert {n for n in installed - UNTESTED_IN_IMAGE if n not in pins} == set()
    bootstrap = re.search(r"TORCH_SPEC=\$\{TORCH_SPEC:-(\S+)\}", (ROOT / "scripts" / "bootstrap").read_text()).group(1)
    assert torch == bootstrap
    assert not (ROOT / "docker" / "trainer-requirements.txt").exists()  # no third hand-kept list


def test_the_python_floor_is_the_one_the_tested_versions_need():
    """requires-python, ruff's target and the README say the same floor (the tested pins need Python 3.11)."""
    floor = re.fullmatch(r">=(3\.\d+)", _project()["requires-python"]).group(1)
    assert floor == "3.11"
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["target-version"]
    assert ruff == "py" + floor.replace(".", "")
    assert f"Python {floor}+" in (ROOT / "README.md").read_text()


def test_the_scheduler_side_does_without_the_kubernetes_provider_and_promotion_has_its_driver():
    """cncf-kubernetes is an extra (the pods' pipelines need it), and psycopg2 (the promotion lock on a
    PostgreSQL lock_uri) is a core requirement: a worker installed with [train] alone can promote."""
    project = _project()
    core = {_name(r) for r in project["dependencies"]}
    assert "apache-airflow-providers-cncf-kubernetes" not in core
    extras = project["optional-dependencies"]
    assert {_name(r) for r in extras["kubernetes"]} == {"apache-airflow-providers-cncf-kubernetes"}
    assert "psycopg2-binary" in core


def test_every_template_ships_in_the_wheel():
    """Each page and report template (airflow_mlops/templates) matches a package-data pattern: a template left
    out of the wheel renders in the repository and raises TemplateNotFound on an installed scheduler."""
    import fnmatch

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["airflow_mlops"]
    folder = ROOT / "airflow_mlops" / "templates"
    shipped = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert shipped, "no templates found"
    left_out = [n for n in shipped if not any(fnmatch.fnmatch(f"templates/{n}", pat) for pat in patterns)]
    assert left_out == []


def test_every_package_folder_ships_in_the_wheel():
    """Each folder with an ``__init__.py`` under the mapped folders is listed in ``packages``: a subpackage left
    out (the typed spec became one) imports in the repository and is missing from an installed wheel."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = set()
    for package, folder in setuptools["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            if "__pycache__" not in rel:
                found.add(".".join([package, *rel]))
    assert "airflow_mlops.pipeline.spec" in found
    assert sorted(found - listed) == []
