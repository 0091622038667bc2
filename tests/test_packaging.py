"""The package as a user installs it: a wheel built from the tracked files, its dependency bounds, and its console
scripts running from an install outside this checkout."""

import email
import importlib.metadata
import os
import subprocess
import sys
import tomllib
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "pyproject.toml"), "rb") as _f:
    PYPROJECT = tomllib.load(_f)
UNBOUNDED = {"importlib-resources"}  # a dependency TFDS forgets to declare; any version it runs with will do


def _tracked_files():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built (no build isolation, no network) from a copy of the tracked source files only."""
    source = tmp_path_factory.mktemp("source")
    for name in _tracked_files():
        if name.split("/")[0] in ("tfadv", "tools") or name in ("pyproject.toml", "README.md"):
            os.makedirs(source / os.path.dirname(name), exist_ok=True)
            with open(os.path.join(ROOT, name), "rb") as src, open(source / name, "wb") as dst:
                dst.write(src.read())
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(out), str(source)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    (path,) = out.glob("tfadv-*.whl")
    return path


def test_wheel_holds_every_package_and_tool(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = sorted(os.path.relpath(folder, ROOT).replace(os.sep, ".")
                      for folder, _, files in os.walk(os.path.join(ROOT, "tfadv")) if "__init__.py" in files)
    missing = [p for p in packages if p.replace(".", "/") + "/__init__.py" not in names]
    assert not missing, f"packages missing from the wheel (list them in pyproject.toml): {missing}"
    tools = sorted(n for n in os.listdir(os.path.join(ROOT, "tools")) if n.endswith(".py"))
    assert [n for n in tools if f"tfadv_tools/{n}" not in names] == []
    assert not [n for n in names if n.startswith(("zoo/", "tests/", "runs/"))], "the wheel carries no zoo or tests"


def test_wheel_metadata_bounds_every_dependency_and_the_tested_versions_lie_inside(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(meta))
    requirements = [Requirement(r) for r in metadata.get_all("Requires-Dist")]
    runtime = [r for r in requirements if r.marker is None]
    assert ({canonicalize_name(r.name) for r in runtime}
            == {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]})
    for requirement in runtime + [r for r in requirements if r.marker is not None]:
        if canonicalize_name(requirement.name) in UNBOUNDED:
            continue
        assert any(s.operator in ("<", "==", "<=") for s in requirement.specifier), f"{requirement} has no upper bound"
        installed = importlib.metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (
            f"{requirement.name} {installed}, the version the suite runs with, is outside {requirement.specifier}")


def test_installed_wheel_runs_its_console_scripts_outside_the_checkout(wheel, tmp_path):
    """The wheel installed into an empty folder (dependencies from this environment) answers --help from
    every console script, and imports tfadv from the install, not from this checkout."""
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                              "--target", str(target), str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import tfadv, tfadv_tools.train; print(tfadv.__file__); "
                            "print(tfadv_tools.train.__file__)"], cwd=tmp_path, env=env, capture_output=True,
                           text=True)
    assert where.returncode == 0, where.stderr[-2000:]
    assert all(line.startswith(str(target)) for line in where.stdout.split()), where.stdout
    scripts = PYPROJECT["project"]["scripts"]
    assert sorted(os.listdir(target / "bin")) == sorted(scripts)
    for script in scripts:
        run = subprocess.run([str(target / "bin" / script), "--help"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0 and "flags:" in run.stdout, f"{script} --help: {run.stderr[-500:]}"
