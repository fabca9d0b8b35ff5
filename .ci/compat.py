"""``make test-compat``: the unit tests at both ends of the range that pyproject.toml declares.

Two throwaway virtual environments:

- the oldest supported Python with every runtime dependency at its declared
  minimum (``numpy>=1.26`` installs ``numpy==1.26.0``, and so on);
- the newest supported Python with the newest release of everything.

The supported Pythons are the ``Programming Language :: Python :: 3.X``
classifiers; the oldest must match ``requires-python``. An interpreter that is
not on the machine (``python3.X`` on PATH, or a pyenv version under
``$PYENV_ROOT``, default ``~/.pyenv``) is skipped with a message.

Each environment gets the package (a wheel built from a copy of the sources,
so that the work tree gains no build folder), and only the test tools that
``tests/`` imports, at the bounds of the ``test`` extra. Torch is not
installed: no CPU wheel of it is at hand for these Pythons (PyPI's Linux
wheels are CUDA builds of several GB), so the tests that import torch
(``tests/test_neural.py`` and the others) skip themselves; they run in the
main environment of ``make test``.

The cache: a wheel folder (``COMPAT_WHEELS``, by default
``~/.cache/lpbook-compat-wheels``) from which both environments install. The
minimum end installs from it alone once an earlier run has filled it; the
newest end resolves against the index every time (so "newest" is the newest
of today) but downloads only the files the folder does not hold yet. Pip's own HTTP cache is not enough here:
the index this machine reaches marks its answers uncacheable.

Runs with Python >= 3.11 (it reads pyproject.toml with ``tomllib``). Exits
non-zero when the tests fail in any environment that could be built.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The test tools that tests/ imports; their bounds come from the ``test`` extra.
TEST_TOOLS = ("pytest", "hypothesis", "jupytext", "ipython")


def requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()


def minimum_pins(dependencies: list[str]) -> list[str]:
    """``name>=X`` (optionally with an upper bound) as ``name==X``; any other form is an error."""
    pins = []
    for requirement in dependencies:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)\s*(,\s*<\s*[0-9.]+)?", requirement)
        if match is None:
            sys.exit(f"test-compat: cannot read a minimum version off the dependency {requirement!r}")
        pins.append(f"{match[1]}=={match[2]}")
    return pins


def supported_pythons(project: dict) -> list[str]:
    """The ``3.X`` versions of the classifiers, oldest first; the oldest must be ``requires-python``'s."""
    versions = sorted(
        {c.rsplit("::", 1)[1].strip() for c in project["classifiers"] if re.fullmatch(r".*:: 3\.\d+", c)},
        key=lambda v: int(v.split(".")[1]),
    )
    if not versions or project["requires-python"] != f">={versions[0]}":
        sys.exit(f"test-compat: requires-python {project['requires-python']!r} does not match the oldest classifier")
    return versions


def find_python(version: str) -> str | None:
    """An interpreter of ``version`` (``3.X``) that runs: on PATH, else the newest pyenv build of it.

    A pyenv shim on PATH exists for every installed version but fails for those
    not selected, so each candidate is run once.
    """
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    builds = sorted(root.glob(f"{version}.*/bin/python{version}"), key=lambda p: _patch(p.parts[-3]), reverse=True)
    for candidate in [shutil.which(f"python{version}"), *map(str, builds)]:
        if candidate and _runs(candidate, version):
            return candidate
    return None


def _runs(python: str, version: str) -> bool:
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        result = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60)
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.strip() == version


def _patch(name: str) -> int:
    """The patch number of a pyenv version folder such as ``3.10.13`` (``-1`` for ``3.10-dev``)."""
    patch = name.split(".")[2] if name.count(".") >= 2 else ""
    return int(patch) if patch.isdigit() else -1


def run(argv: list, **kwargs) -> None:
    print("+", " ".join(str(a) for a in argv), flush=True)
    subprocess.run([str(a) for a in argv], check=True, **kwargs)


def build_wheel(work: Path) -> Path:
    """The package's wheel, built from a copy of its sources in ``work``."""
    source = work / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):  # pyproject.toml names README.md as the readme
        shutil.copy2(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", work, source])
    (wheel,) = work.glob("lpbook-*.whl")
    return wheel


def check(python: str, label: str, requirements: list, wheels: Path, work: Path, pinned: bool) -> bool:
    """Build a venv with ``python``, install ``requirements`` through the folder ``wheels``, run the unit tests.

    ``pinned``: the dependencies are pinned (the minimum end), so the wheels of an earlier run still serve.
    """
    venv = work / f"venv-{label}"
    start = time.monotonic()
    run([python, "-m", "venv", venv])
    pip = [venv / "bin" / "python", "-m", "pip"]
    offline = [*pip, "install", "--quiet", "--no-index", "--find-links", wheels, *requirements]
    # Pinned versions never change: try the wheel folder alone first, which skips a resolution
    # against the index. The newest versions must be asked of the index every time.
    if not (pinned and subprocess.run([str(a) for a in offline], capture_output=True).returncode == 0):
        run([*pip, "download", "--quiet", "--only-binary", ":all:", "-d", wheels, *requirements])
        for copy in wheels.glob("lpbook-*.whl"):  # pip download copies the package's own wheel there too
            copy.unlink()
        run(offline)
    installed = time.monotonic()
    run([venv / "bin" / "python", "-m", "pip", "list", "--format", "freeze"])
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)  # the installed package, not src/, is under test
    tests = subprocess.run(
        [venv / "bin" / "python", "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"], cwd=ROOT, env=env
    )
    end = time.monotonic()
    print(f"test-compat [{label}]: install {installed - start:.0f} s, tests {end - installed:.0f} s", flush=True)
    return tests.returncode == 0


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    tools = [r for r in project["optional-dependencies"]["test"] if requirement_name(r) in TEST_TOOLS]
    versions = supported_pythons(project)
    ends = [(versions[0], "minimum", minimum_pins(project["dependencies"])), (versions[-1], "newest", [])]
    wheels = Path(os.environ.get("COMPAT_WHEELS", Path.home() / ".cache" / "lpbook-compat-wheels"))
    wheels.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="lpbook-compat-") as tmp:
        work = Path(tmp)
        package = build_wheel(work)
        for version, label, pins in ends:
            python = find_python(version)
            if python is None:
                print(f"test-compat [{label}]: skipped, no Python {version} on this machine", flush=True)
                results[label] = "skipped"
                continue
            ok = check(python, f"{label}-py{version}", [package, *tools, *pins], wheels, work, pinned=bool(pins))
            results[label] = "passed" if ok else "FAILED"
    print("test-compat: " + ", ".join(f"{label} {outcome}" for label, outcome in results.items()))
    return 0 if all(outcome != "FAILED" for outcome in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
