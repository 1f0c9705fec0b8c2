"""Settings precedence: keyword arguments > RAG_* environment > rag.toml > defaults; bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import Settings, get_settings
from rag.errors import ConfigError


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no RAG_CONFIG: rag.toml is looked up in the cwd."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("RAG_CONFIG", raising=False)
    return cwd


def _toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_env_or_toml(workdir: Path) -> None:
    s = Settings()
    assert (s.k, s.fetch_k, s.chunk_size, s.llm) == (5, 40, 1000, "bundled")
    assert s.data_dir == Path(".rag") and s.chroma_url is None


def test_rag_toml_in_the_working_directory_beats_defaults(workdir: Path) -> None:
    _toml(workdir / "rag.toml", 'k = 7\nllm = "extractive"\ndata_dir = "elsewhere"\n')
    s = Settings()
    assert (s.k, s.llm, s.data_dir) == (7, "extractive", Path("elsewhere"))
    assert s.fetch_k == 40  # keys the file does not set keep their defaults


def test_rag_config_names_the_file_instead_of_the_cwd_one(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _toml(workdir / "rag.toml", "k = 7\nfetch_k = 30\n")
    named = _toml(tmp_path / "custom.toml", "k = 8\n")
    monkeypatch.setenv("RAG_CONFIG", str(named))
    s = Settings()
    assert s.k == 8
    assert s.fetch_k == 40  # the cwd rag.toml is not read at all


def test_missing_rag_config_file_means_defaults(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _toml(workdir / "rag.toml", "k = 7\n")
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "absent.toml"))
    assert Settings().k == 5


def test_environment_beats_rag_toml(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _toml(workdir / "rag.toml", 'k = 7\nfetch_k = 30\nllm = "extractive"\n')
    monkeypatch.setenv("RAG_K", "9")
    monkeypatch.setenv("RAG_LLM", "ollama:llama3")
    s = Settings()
    assert (s.k, s.llm) == (9, "ollama:llama3")
    assert s.fetch_k == 30  # the file still supplies what the environment leaves out


def test_environment_names_are_case_insensitive(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("rag_k", "12")
    assert Settings().k == 12


def test_keyword_arguments_beat_everything(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _toml(workdir / "rag.toml", "k = 7\nfetch_k = 30\nrrf_k = 20\n")
    monkeypatch.setenv("RAG_K", "9")
    monkeypatch.setenv("RAG_FETCH_K", "35")
    s = Settings(k=11)
    assert (s.k, s.fetch_k, s.rrf_k, s.chunk_size) == (11, 35, 20, 1000)
    #        kwarg  env       toml     default


def test_get_settings_skips_none_overrides(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the CLI passes every option, unset ones as None: those must not hide env or rag.toml
    _toml(workdir / "rag.toml", "fetch_k = 30\n")
    monkeypatch.setenv("RAG_K", "9")
    s = get_settings(k=None, fetch_k=None, llm="extractive")
    assert (s.k, s.fetch_k, s.llm) == (9, 30, "extractive")


def test_empty_environment_value_means_unset_for_optional_urls(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_CHROMA_URL", "  ")
    assert Settings().chroma_url is None


@pytest.mark.parametrize(
    ("overrides", "env", "expected"),
    [
        ({"k": 0}, {}, "k: Input should be greater than or equal to 1"),
        ({}, {"RAG_K": "abc"}, "k: Input should be a valid integer"),
        ({}, {"RAG_TODAY": "yesterday"}, "today: Input should be a valid date"),
        ({"llm_temperature": 3}, {}, "llm_temperature: Input should be less than or equal to 2"),
        ({"embedding_backend": "cuda"}, {}, "embedding_backend: Input should be 'auto'"),
        ({"chunk_size": 500, "chunk_overlap": 500}, {}, "Lower RAG_CHUNK_OVERLAP"),
        ({"chroma_url": "localhost:8000"}, {}, "chroma_url must look like http://host:port"),
    ],
)
def test_bad_values_give_a_readable_config_error(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, object],
    env: dict[str, str],
    expected: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        get_settings(**overrides)
    message = str(info.value)
    assert message.startswith("Invalid settings: ")
    assert expected in message
    assert message.endswith("Check your RAG_* environment variables and rag.toml.")
    assert "\n" not in message and "pydantic" not in message  # one line, no traceback dump


def test_bad_value_in_rag_toml_is_a_config_error(workdir: Path) -> None:
    _toml(workdir / "rag.toml", 'k = "many"\n')
    with pytest.raises(ConfigError, match="k: Input should be a valid integer"):
        get_settings()


def test_malformed_rag_toml_is_a_config_error_naming_the_file(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = _toml(tmp_path / "broken.toml", "k = 7\nfoo = [\n")
    monkeypatch.setenv("RAG_CONFIG", str(broken))
    with pytest.raises(ConfigError) as info:
        get_settings()
    assert str(broken) in str(info.value) and "not valid TOML" in str(info.value)
    assert "RAG_CONFIG" in info.value.hint
