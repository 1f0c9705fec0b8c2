"""scripts/check_lock.py: requirements.lock must agree with pyproject.toml (CI fails otherwise)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import REPO

SCRIPT = REPO / "scripts" / "check_lock.py"
PYPROJECT = REPO / "pyproject.toml"
LOCK = REPO / "requirements.lock"
MAKEFILE = REPO / "Makefile"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_lock", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


check_lock = _load()


def makefile_pins() -> tuple[str, ...]:
    """The torch and llama-cpp-python versions the Makefile installs, as --pin requirements."""
    text = MAKEFILE.read_text(encoding="utf-8")
    pins = []
    for var, name in (("TORCH_VERSION", "torch"), ("LLAMA_CPP_VERSION", "llama-cpp-python")):
        match = re.search(rf"^{var}\s*:=\s*(\S+)", text, re.MULTILINE)
        assert match, f"Makefile defines no {var}"
        pins.append(f"{name}=={match.group(1)}")
    return tuple(pins)


def tampered(tmp_path: Path, old: str, new: str) -> Path:
    text = PYPROJECT.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "pyproject.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_real_lock_agrees_with_pyproject_and_makefile() -> None:
    assert check_lock.check(PYPROJECT, LOCK, pins=makefile_pins()) == []


def test_real_lock_pins_every_package_exactly_and_no_cuda() -> None:
    lock = check_lock.read_lock(LOCK)
    assert lock.errors == []
    assert str(lock.pins["torch"]).startswith("2.13.0")  # the local CPU build
    assert not [name for name in lock.pins if name.startswith("nvidia-")]
    assert "article-rag" not in lock.pins  # the project is installed editable, never pinned


def test_extras_of_the_project_itself_are_expanded() -> None:
    _, requirements = check_lock.project_requirements(PYPROJECT, ("all", "test"))
    names = {r.name for r in requirements}
    # [all] -> [llm] -> llama-cpp-python; [all] -> [ui] -> gradio; [test] -> pytest.
    assert {"llama-cpp-python", "gradio", "pytest", "torch", "chromadb"} <= names
    assert "article-rag" not in names


def test_specifier_the_pin_does_not_satisfy_fails(tmp_path: Path) -> None:
    pyproject = tampered(tmp_path, '"chromadb>=1.5,<2"', '"chromadb>=2.0,<3"')
    errors = check_lock.check(pyproject, LOCK)
    assert len(errors) == 1
    assert "chromadb<3,>=2.0" in errors[0]
    assert "does not satisfy it" in errors[0]


def test_requirement_missing_from_lock_fails(tmp_path: Path) -> None:
    pyproject = tampered(tmp_path, '"pytest>=8,<10",', '"pytest>=8,<10", "left-pad>=1.3",')
    errors = check_lock.check(pyproject, LOCK)
    assert errors == [
        "pyproject.toml asks for left-pad>=1.3 but requirements.lock has no pin for left-pad"
    ]


def test_requirement_dropped_from_pyproject_but_still_locked_fails(tmp_path: Path) -> None:
    pyproject = tampered(tmp_path, '"pypdf>=5,<8",', "")
    errors = check_lock.check(pyproject, LOCK)
    assert len(errors) == 1
    assert "pins pypdf==" in errors[0]
    assert "no longer asks for it" in errors[0]


def test_makefile_pin_the_lock_does_not_match_fails() -> None:
    errors = check_lock.check(PYPROJECT, LOCK, pins=("torch==2.99.0",))
    assert len(errors) == 1
    assert "the Makefile installs torch==2.99.0" in errors[0]


def test_unpinned_and_cuda_lines_in_the_lock_fail(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    text = LOCK.read_text(encoding="utf-8")
    lock.write_text(
        text + "nvidia-cublas-cu12==12.8.4.1\n    # via torch\nrequests>=2\n", encoding="utf-8"
    )
    errors = check_lock.check(PYPROJECT, lock)
    assert any("not an exact `name==version` pin: requests>=2" in e for e in errors)
    assert any("CUDA package nvidia-cublas-cu12" in e for e in errors)


def test_cli_exit_code_and_message(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, str(SCRIPT), *(f"--pin={p}" for p in makefile_pins())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "agrees with pyproject.toml" in ok.stdout

    pyproject = tampered(tmp_path, '"numpy>=1.26,<3"', '"numpy>=3,<4"')
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--pyproject", str(pyproject), "--lock", str(LOCK)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert "requirements.lock and pyproject.toml disagree" in bad.stderr
    assert "numpy<4,>=3" in bad.stderr
    assert "make lock" in bad.stderr


def test_unknown_extra_is_an_error(tmp_path: Path) -> None:
    pyproject = tampered(tmp_path, 'all = ["article-rag[llm,', 'all = ["article-rag[nope,llm,')
    with pytest.raises(SystemExit, match=r"unknown extra \[nope\]"):
        check_lock.project_requirements(pyproject, ("all", "test"))
