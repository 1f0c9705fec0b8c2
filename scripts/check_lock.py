"""Check that requirements.lock agrees with pyproject.toml (offline, stdlib + packaging).

Usage: python scripts/check_lock.py [--pyproject PATH] [--lock PATH] [--extras all,test]
                                    [--pin 'NAME==VERSION' ...]

`make` installs the project with the lock as constraints (`pip install -c requirements.lock
-e '.[all,test]'`), so every package is installed at the version CI tested. This check fails
(exit 1, one line per problem) when:

- a requirement of pyproject.toml (the base dependencies plus the extras, with the project's
  own extras such as `all = ["article-rag[llm,ui,...]"]` expanded) is missing from the lock, or
  its pinned version does not satisfy the pyproject specifier;
- the lock still marks a package as required by the project (`# via article-rag`) although
  pyproject.toml no longer asks for it;
- a lock line is not an exact `name==version` pin, or a name is pinned twice;
- the lock holds a CUDA package (nvidia-*, cuda-*, triton): torch must be the CPU build;
- a `--pin` requirement (the Makefile passes its torch and llama-cpp-python versions) is not
  what the lock pins.

The fix is `make lock`, which regenerates the lock from pyproject.toml.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version
except ImportError:  # a fresh venv before the project is installed: pip vendors packaging
    from pip._vendor.packaging.requirements import (  # type: ignore[no-redef]
        InvalidRequirement,
        Requirement,
    )
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]
    from pip._vendor.packaging.version import InvalidVersion, Version  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_EXTRAS = ("all", "test")
FIX = "Run `make lock` to regenerate requirements.lock from pyproject.toml, then commit both."
CUDA_PACKAGE = re.compile(r"^(nvidia-|cuda-|triton$)")
PIN_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#\\]+)$")


@dataclass
class Lock:
    """The pins of a lock file and the packages each is annotated as required by."""

    pins: dict[str, Version] = field(default_factory=dict)
    via: dict[str, set[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def project_requirements(pyproject: Path, extras: tuple[str, ...]) -> tuple[str, list[Requirement]]:
    """The project's name and the requirements `pip install '.[extras]'` asks for directly.

    Self-references (`article-rag[llm,ui]` inside an extra) are expanded, not returned.
    """
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data["project"]
    name = canonicalize_name(project["name"])
    optional: dict[str, list[str]] = {
        canonicalize_name(k): v for k, v in project.get("optional-dependencies", {}).items()
    }
    requirements: list[Requirement] = []
    seen: set[str] = set()

    def add(lines: list[str], where: str) -> None:
        for line in lines:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            if canonicalize_name(req.name) == name:
                for extra in sorted(req.extras):
                    add_extra(extra, where)
            else:
                requirements.append(req)

    def add_extra(extra: str, where: str) -> None:
        key = canonicalize_name(extra)
        if key in seen:
            return
        if key not in optional:
            raise SystemExit(f"{pyproject}: {where} asks for unknown extra [{extra}]")
        seen.add(key)
        add(optional[key], f"[{extra}]")

    add(project.get("dependencies", []), "dependencies")
    for extra in extras:
        add_extra(extra, "--extras")
    return name, requirements


def read_lock(path: Path) -> Lock:
    """Parse a pip-compile output: `name==version` lines, each with its `# via` comments."""
    lock = Lock()
    current: str | None = None  # the pin whose indented comments follow
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("-"):  # blank, or an option such as --find-links
            continue
        if line.startswith("#"):
            if not raw[0].isspace():  # the header, or pip-compile's notes between sections
                current = None
            elif current is not None:
                # "# via chromadb", or "# via" followed by one "#   name" line per parent.
                comment = line.lstrip("#").strip()
                if comment == "via" or comment.startswith("via "):
                    comment = comment[3:].strip()
                if comment:
                    lock.via[current].add(comment)
            continue
        line = line.split(" #", 1)[0].rstrip().rstrip("\\").rstrip()
        match = PIN_LINE.match(line)
        if not match:
            lock.errors.append(f"{path.name}:{number}: not an exact `name==version` pin: {line}")
            current = None
            continue
        name = canonicalize_name(match.group(1))
        try:
            version = Version(match.group(2))
        except InvalidVersion:
            lock.errors.append(f"{path.name}:{number}: invalid version in {line}")
            current = None
            continue
        if name in lock.pins:
            lock.errors.append(f"{path.name}:{number}: {name} is pinned twice")
        lock.pins[name] = version
        lock.via[name] = set()
        current = name
    return lock


def check(
    pyproject: Path,
    lock_path: Path,
    extras: tuple[str, ...] = DEFAULT_EXTRAS,
    pins: tuple[str, ...] = (),
) -> list[str]:
    """Every disagreement between pyproject.toml and the lock, as messages (empty: they agree)."""
    if not lock_path.is_file():
        return [f"{lock_path} does not exist"]
    name, requirements = project_requirements(pyproject, extras)
    lock = read_lock(lock_path)
    errors = list(lock.errors)
    lock_name, pyproject_name = lock_path.name, pyproject.name
    wanted: set[str] = set()
    for req in requirements:
        key = canonicalize_name(req.name)
        wanted.add(key)
        pinned = lock.pins.get(key)
        if pinned is None:
            errors.append(f"{pyproject_name} asks for {req} but {lock_name} has no pin for {key}")
        elif not req.specifier.contains(pinned, prereleases=True):
            errors.append(
                f"{pyproject_name} asks for {req} but {lock_name} pins {key}=={pinned}, "
                "which does not satisfy it"
            )
    if name in lock.pins:
        errors.append(f"{lock_name} pins the project itself ({name}); it must not")
    for key in sorted(lock.pins):
        via = lock.via.get(key, set())
        if key not in wanted and any(canonicalize_name(v.split()[0]) == name for v in via):
            errors.append(
                f"{lock_name} pins {key}=={lock.pins[key]} as a requirement of {name}, "
                f"but {pyproject_name} no longer asks for it"
            )
        if CUDA_PACKAGE.match(key):
            errors.append(
                f"{lock_name} pins the CUDA package {key}: torch must be the local CPU build "
                "(make lock constrains it to the Makefile's TORCH_VERSION)"
            )
    for pin in pins:
        try:
            req = Requirement(pin)
        except InvalidRequirement as exc:
            raise SystemExit(f"--pin {pin!r}: {exc}") from exc
        key = canonicalize_name(req.name)
        pinned = lock.pins.get(key)
        if pinned is None:
            errors.append(f"the Makefile installs {req} but {lock_name} has no pin for {key}")
        elif not req.specifier.contains(pinned, prereleases=True):
            errors.append(f"the Makefile installs {req} but {lock_name} pins {key}=={pinned}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=REPO / "pyproject.toml")
    parser.add_argument("--lock", type=Path, default=REPO / "requirements.lock")
    parser.add_argument(
        "--extras",
        default=",".join(DEFAULT_EXTRAS),
        help="comma-separated extras the lock covers (default: %(default)s)",
    )
    parser.add_argument(
        "--pin",
        action="append",
        default=[],
        help="a requirement the lock's pin must satisfy, e.g. torch==2.13.0 (repeatable)",
    )
    args = parser.parse_args(argv)
    extras = tuple(e.strip() for e in args.extras.split(",") if e.strip())
    errors = check(args.pyproject, args.lock, extras, tuple(args.pin))
    if errors:
        print(f"{args.lock.name} and {args.pyproject.name} disagree:", file=sys.stderr)
        for error in errors:
            print(f"  - {error}", file=sys.stderr)
        print(FIX, file=sys.stderr)
        return 1
    print(f"{args.lock.name} agrees with {args.pyproject.name} (extras: {', '.join(extras)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
