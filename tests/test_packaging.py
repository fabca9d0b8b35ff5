"""Tests of how lpbook is built and installed: the package metadata, the Makefile's install and dist."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_license_is_an_spdx_expression_that_the_build_backend_reads():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "MIT"  # not the table form, deprecated by setuptools
    assert not any(c.startswith("License ::") for c in pyproject["project"].get("classifiers", []))
    (requirement,) = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = tuple(int(x) for x in re.fullmatch(r"setuptools>=(\d+)", requirement)[1].split("."))
    assert minimum >= (77,), "the SPDX string form of project.license needs setuptools >= 77"
    try:
        installed = version("setuptools")
    except PackageNotFoundError:  # a venv without setuptools (Python >= 3.12); make dist builds in .venv, which has it
        pytest.skip("setuptools is not installed here")
    assert tuple(int(x) for x in installed.split(".")[:1]) >= minimum, "make dist builds with this one"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_install_takes_torch_from_the_index_that_torch_index_url_names(tmp_path):
    def install_commands(*variables):
        dry = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), f"VENV={tmp_path / 'venv'}", *variables,
                              str(tmp_path / "venv" / ".installed-stamp")], capture_output=True, text=True, check=True)
        return [line.rstrip() for line in dry.stdout.splitlines() if "pip install" in line]

    torch, package = install_commands()
    assert torch.endswith('pip install "torch==2.13.0"') and "--index-url" not in package
    cpu = "https://download.pytorch.org/whl/cpu"
    torch, package = install_commands(f"TORCH_INDEX_URL={cpu}")
    assert torch.endswith(f'pip install "torch==2.13.0" --index-url {cpu}') and "--index-url" not in package


def test_the_readme_installs_lpbook_from_the_repository_or_a_wheel_and_says_what_torch_a_plain_index_gives():
    readme = (ROOT / "README.md").read_text()
    installs = re.findall(r"pip install [^\n`]*", readme)
    assert installs
    for command in installs:  # lpbook is on no package index: never `pip install "lpbook[...]"` by name
        assert not re.search(r"""pip install (-\S+ )*["']?lpbook(\[[\w,]*\])?(?!\s*@)["']?(?=\s|$)""", command), command
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in readme
    assert "CUDA build" in readme and "nvidia-" in readme
