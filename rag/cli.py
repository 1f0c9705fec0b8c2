"""The ``rag`` command line: a thin edge over the library.

Library errors (:class:`~rag.errors.RagError`) become a one-line message on stderr and exit
code 1; nothing here holds retrieval or prompt logic.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from rag.errors import RagError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["main"]


def _settings(**overrides: Any) -> Any:
    from rag.config import get_settings

    return get_settings(**overrides)


def common_options(func: F) -> F:
    """Options every command takes; each binds to its RAG_* environment variable."""

    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="RAG_DATA_DIR",
        help="Where the index, models and logs live [env: RAG_DATA_DIR; default: .rag].",
    )
    @click.option(
        "--chroma-url", envvar="RAG_CHROMA_URL", help="Use a Chroma server [env: RAG_CHROMA_URL]."
    )
    @click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
    @functools.wraps(func)
    def wrapper(
        *args: Any, data_dir: Path | None, chroma_url: str | None, verbose: int, **kwargs: Any
    ) -> Any:
        level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
        handler = logging.StreamHandler()
        handler.setFormatter(_SafeFormatter("%(levelname)s %(name)s: %(message)s"))
        logging.basicConfig(level=level, handlers=[handler])
        try:
            return func(*args, base={"data_dir": data_dir, "chroma_url": chroma_url}, **kwargs)
        except RagError as exc:
            click.secho(f"Error: {_safe(exc)}", fg="red", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.secho(
                "Interrupted. The index is consistent; run the command again to finish.", err=True
            )
            sys.exit(130)

    # The wrapper takes the common options in place of ``base``: not the signature of F.
    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="article-rag")
def main() -> None:
    """article-rag: ask questions about news articles, with every claim cited."""


@main.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--prune/--no-prune",
    default=True,
    show_default=True,
    help="Remove indexed articles whose files are gone from the given paths.",
)
@click.option(
    "--chunk-size",
    type=int,
    envvar="RAG_CHUNK_SIZE",
    help="Characters per chunk [env: RAG_CHUNK_SIZE].",
)
@click.option(
    "--chunk-overlap",
    type=int,
    envvar="RAG_CHUNK_OVERLAP",
    help="Overlap [env: RAG_CHUNK_OVERLAP].",
)
@click.option(
    "--embedding-model", envvar="RAG_EMBEDDING_MODEL", help="Embedder [env: RAG_EMBEDDING_MODEL]."
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Drop this data dir's index (both collections and the BM25 cache) and ingest PATHS "
    "from scratch; also recovers a Chroma database that cannot be opened.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@common_options
def ingest_cmd(
    paths: tuple[Path, ...],
    prune: bool,
    rebuild: bool,
    chunk_size: int | None,
    chunk_overlap: int | None,
    embedding_model: str | None,
    as_json: bool,
    quiet: bool,
    base: dict[str, Any],
) -> None:
    """Index article files (txt, md, html, json/jsonl, pdf) or directories of them.

    Re-running is incremental: unchanged articles cost nothing, changed ones are replaced,
    and (with --prune, the default) articles whose files vanished are removed. --rebuild starts
    over (another embedding model or chunk size, or a damaged index).
    """
    from rag.ingestion.pipeline import IngestProgress, ingest

    settings = _settings(
        **base, chunk_size=chunk_size, chunk_overlap=chunk_overlap, embedding_model=embedding_model
    )
    if rebuild:
        _rebuild(settings, paths)
    bar: Any = None

    def on_progress(p: IngestProgress) -> None:
        nonlocal bar
        if quiet or as_json:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(
                total=p.chunks_total,
                unit="chunk",
                desc="Embedding",
                file=sys.stderr,
                dynamic_ncols=True,
            )
        bar.set_postfix_str(f"files {p.files_done}/{p.files_total}", refresh=False)
        bar.update(p.chunks_done - bar.n)

    try:
        report = ingest(paths, settings, prune=prune, progress=on_progress)
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for failure in report.failed:
            click.secho(_safe(f"skipped {failure.path}: {failure.reason}"), fg="yellow", err=True)
        click.echo(report.summary())
    if report.failed and not (report.added or report.updated or report.unchanged):
        sys.exit(1)


def _rebuild(settings: Any, paths: tuple[Path, ...]) -> None:
    """Drop the index of ``settings`` before `rag ingest --rebuild` writes it again."""
    from rag.errors import InputError
    from rag.index.health import reset_index

    absent = [str(p) for p in paths if not p.expanduser().exists()]
    if absent:
        msg = f"--rebuild: {', '.join(absent)} does not exist; nothing was dropped."
        raise InputError(msg, hint="Check the paths: the index is rebuilt from them alone.")
    reset_index(settings, say=lambda line: click.secho(_safe(f"rebuild: {line}"), err=True))


@main.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@common_options
def info_cmd(as_json: bool, base: dict[str, Any]) -> None:
    """Settings in effect, index statistics and what is missing (exit 1 if anything is)."""
    from rag.status import collect_info

    settings = _settings(**base)
    info = collect_info(settings)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        idx = info["index"]
        click.echo(f"Store:      {idx['location']}")
        click.echo(f"Articles:   {idx.get('articles', '-')}")
        click.echo(f"Chunks:     {idx.get('chunks', '-')}")
        click.echo(f"Embedder:   {info['embedder']}")
        click.echo(f"LLM:        {info['llm']}")
        for check in info["checks"]:
            warn = check["ok"] and check.get("warning")
            colour = "yellow" if warn else "green" if check["ok"] else "red"
            label = "warn" if warn else "ok" if check["ok"] else "missing"
            click.secho(_safe(f"  [{label}] {check['name']}: {check['detail']}"), fg=colour)
        click.echo("Settings:")
        for key, value in info["settings"].items():
            click.echo(f"  {key} = {value}")
    if not all(check["ok"] for check in info["checks"]):
        sys.exit(1)


# C0/C1 control characters (ESC starts terminal escape sequences; U+009B is an 8-bit CSI) and
# the bidi overrides that reorder what a terminal shows; tab and newline are kept.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _safe(text: Any) -> str:
    """Text from articles or files made safe to print: no escape sequences reach the terminal."""
    return _UNSAFE.sub("\ufffd", str(text))


class _SafeFormatter(logging.Formatter):
    """Log lines name files and quote articles: escape sequences in them are neutralised."""

    def format(self, record: logging.LogRecord) -> str:
        return _safe(super().format(record))


def _print_answer(out: dict[str, Any]) -> None:
    """The answer, then its numbered sources with the cited sentence marked."""
    if not out.get("answer_shown"):
        click.secho(_safe(out["answer"]), fg="yellow" if out.get("refused") else None)
    cited = {c["n"]: c for c in out.get("citations", [])}
    docs = out.get("context", [])
    if not docs:
        return
    click.echo()
    click.secho("Closest passages:" if out.get("refused") else "Sources:", bold=True)
    for doc in docs:
        meta = doc.metadata
        n = meta.get("n")
        if not out.get("refused") and n not in cited:
            continue
        head = f"[{n}] {meta.get('title') or meta.get('article_id')}"
        extra = ", ".join(x for x in (meta.get("published"), meta.get("source")) if x)
        click.secho(_safe(head + (f" ({extra})" if extra else "")), fg="cyan")
        if meta.get("url"):
            click.echo(f"    {_safe(meta['url'])}")
        text = doc.page_content
        cite = cited.get(n)
        if cite:
            qs, qe = cite["quote_start"], cite["quote_end"]
            text = text[:qs] + ">>" + text[qs:qe] + "<<" + text[qe:]
        click.echo("    " + _safe(" ".join(text.split())))


def _json_ready(out: dict[str, Any]) -> dict[str, Any]:
    ready = dict(out)
    ready["context"] = [
        {"page_content": d.page_content, "metadata": d.metadata} for d in out.get("context", [])
    ]
    ready.pop("chat_history", None)
    return ready


def _llm_options(func: F) -> F:
    func = click.option(
        "--llm",
        envvar="RAG_LLM",
        help="bundled | extractive | llamacpp:PATH | openai:MODEL | ollama:MODEL [env: RAG_LLM].",
    )(func)
    func = click.option(
        "--k", type=int, envvar="RAG_K", help="Passages given to the model [env: RAG_K]."
    )(func)
    return func


@main.command("ask")
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the whole output dict as JSON.")
@click.option(
    "--today", envvar="RAG_TODAY", help="Today's date for time-aware questions (YYYY-MM-DD)."
)
@_llm_options
@common_options
def ask_cmd(
    question: str,
    as_json: bool,
    today: str | None,
    llm: str | None,
    k: int | None,
    base: dict[str, Any],
) -> None:
    """Answer one question from the indexed articles, with numbered sources."""
    from rag.answer.chain import build_chain
    from rag.answer.result import AnswerFolder

    settings = _settings(**base, llm=llm, k=k)
    chain = build_chain(settings)
    payload: dict[str, Any] = {"input": question, "chat_history": []}
    if today:
        payload["today"] = today
    if as_json:
        click.echo(json.dumps(_json_ready(chain.invoke(payload)), indent=2, default=str))
        return
    live = sys.stdout.isatty()  # stream tokens to a terminal; pipes get the verified answer only
    folder = AnswerFolder()
    for event in chain.stream(payload):
        token = folder.add(event)
        if token and live:
            click.echo(_safe(token), nl=False)
    out: dict[str, Any] = dict(folder.result())
    streamed = folder.streamed
    if live and streamed:
        click.echo()
        if out["answer"].strip() == streamed.strip():
            out = {**out, "answer_shown": True}
        else:
            click.secho("Checked against the passages:", dim=True)
    _print_answer(out)


@main.command("chat")
@click.option(
    "--today", envvar="RAG_TODAY", help="Today's date for time-aware questions (YYYY-MM-DD)."
)
@_llm_options
@common_options
def chat_cmd(today: str | None, llm: str | None, k: int | None, base: dict[str, Any]) -> None:
    """A conversation in the terminal; follow-up questions use the history. Ctrl-D ends it."""
    from rag.answer.chain import build_chain

    settings = _settings(**base, llm=llm, k=k)
    chain = build_chain(settings)
    history: list[dict[str, str]] = []
    click.echo("Ask about the articles (empty line or Ctrl-D to quit).")
    while True:
        try:
            question = click.prompt("you", prompt_suffix="> ", default="", show_default=False)
        except (EOFError, click.Abort):
            break
        if not question.strip():
            break
        try:
            out = chain.invoke(
                {"input": question, "chat_history": history, **({"today": today} if today else {})}
            )
        except RagError as exc:
            click.secho(f"Error: {_safe(exc)}", fg="red", err=True)
            continue
        _print_answer(out)
        history += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": out["answer"]},
        ]


def _register_optional_commands() -> None:
    """Commands whose modules live outside the core (UI, evals) are added when importable."""
    import importlib

    for module, attr, name in (
        ("rag.ui.serve", "serve_cmd", "serve"),
        ("rag.evals.cli", "eval_cmd", "eval"),
        ("rag.models.server", "llm_server_cmd", "llm-server"),
        ("rag.api.cli", "api_cmd", "api"),
    ):
        try:
            command = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        main.add_command(command, name)


_register_optional_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
