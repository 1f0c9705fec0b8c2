"""The chat page: Gradio Blocks wiring the answering chain, sources, corpus uploads, feedback.

No retrieval or prompt logic lives here: questions go to the chain (:func:`rag.chain.build_chain`),
uploads go to :func:`rag.ingest.ingest`, HTML comes from :mod:`rag.ui.render`.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from rag.errors import ConfigError, RagError
from rag.ui import render
from rag.ui.feedback import FeedbackLog, feedback_record, rating_of

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = [
    "APP_CSS",
    "APP_HEAD",
    "EXAMPLES",
    "UPLOAD_SUFFIXES",
    "ChatHandlers",
    "build_app",
    "launch_app",
    "parse_auth",
    "safe_filename",
    "save_uploads",
]

logger = logging.getLogger(__name__)

EXAMPLES = [
    "How many KFOR troops are there?",
    "What did Stoltenberg urge Serbia and Kosovo to do?",
    "Which countries do not recognise Kosovo's independence?",
]

# What the upload box takes (a subset of what rag.documents can read).
UPLOAD_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".json", ".jsonl")
MAX_FILES_PER_UPLOAD = 50
_STREAM_INTERVAL = 0.06  # seconds between chat repaints while tokens stream in

# --- look -------------------------------------------------------------------------------
APP_CSS = """
.gradio-container { max-width: 1400px !important; }
#rag-header h1 { font-size: 1.5rem; margin: 0 0 .15rem 0; }
#rag-header p { margin: 0; color: var(--body-text-color-subdued); }
#rag-header .rag-corpus { margin-top: .35rem; }
.rag-answer { line-height: 1.55; }
a.rag-cite { display: inline-block; min-width: 1.4em; padding: 0 .3em; margin: 0 .1em;
  border-radius: .6em; background: #dbeafe; color: #1e40af !important; font-size: .8em;
  font-weight: 600; text-decoration: none !important; text-align: center; line-height: 1.45;
  vertical-align: .15em; }
a.rag-cite:hover { background: #1e40af; color: #fff !important; }
.rag-cursor { animation: rag-blink 1s steps(2) infinite; color: #64748b; }
@keyframes rag-blink { 50% { opacity: 0; } }
.rag-refusal { background: #fffbeb; border: 1px solid #fcd34d; border-left: 4px solid #f59e0b;
  color: #78350f; border-radius: 8px; padding: .6rem .8rem; }
.rag-refusal-head { font-weight: 700; margin-bottom: .25rem; }
.rag-refusal-note { font-size: .85em; margin-top: .35rem; color: #92400e; }
.rag-error { background: #fef2f2; border: 1px solid #fecaca; border-left: 4px solid #dc2626;
  color: #7f1d1d; border-radius: 8px; padding: .6rem .8rem; }
.rag-error-head { font-weight: 700; margin-bottom: .25rem; }
.rag-error-hint { font-size: .85em; margin-top: .3rem; }
.rag-tools { margin-top: .4rem; }
button.rag-copy { font-size: .78em; padding: .1rem .55rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-primary);
  color: var(--body-text-color-subdued); }
button.rag-copy:hover { color: var(--body-text-color); }
.rag-copy-text { display: none !important; }
details.rag-trace { margin-top: .5rem; font-size: .85em; border-top: 1px dashed var(--border-color-primary);
  padding-top: .35rem; }
details.rag-trace summary { cursor: pointer; color: var(--body-text-color-subdued); }
.rag-trace-row { margin: .3rem 0; }
table.rag-trace-table { border-collapse: collapse; margin: .35rem 0; font-size: .95em; width: 100%; }
table.rag-trace-table th, table.rag-trace-table td { border: 1px solid var(--border-color-primary);
  padding: .15rem .4rem; text-align: left; }
table.rag-trace-table th, table.rag-trace-table td:not(:nth-child(2)) { white-space: nowrap; }
#rag-sources { max-height: 680px !important; overflow-y: auto !important; padding-right: .3rem; }
#corpus-stats { text-align: right; align-self: center; }
.rag-sources-title { font-weight: 700; font-size: 1.05rem; }
.rag-sources-q { color: var(--body-text-color-subdued); font-size: .9em; margin-bottom: .2rem; }
.rag-sources-note { font-size: .8em; color: var(--body-text-color-subdued); margin-bottom: .5rem; }
.rag-sources-refused .rag-sources-title { color: #b45309; }
.rag-sources-refused .rag-card { border-color: #fcd34d; background: #fffdf5; }
.rag-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .55rem .7rem;
  margin-bottom: .6rem; background: var(--background-fill-primary); transition: box-shadow .3s; }
.rag-card.rag-cited { border-left: 4px solid #3b82f6; }
.rag-card-head { display: flex; gap: .5rem; align-items: baseline; font-weight: 600; }
.rag-num { flex: none; display: inline-block; min-width: 1.5em; text-align: center; border-radius: .7em;
  background: #dbeafe; color: #1e40af; font-size: .8em; padding: 0 .3em; }
.rag-card-title { color: inherit; }
a.rag-card-title { color: #1d4ed8; text-decoration: underline; text-underline-offset: 2px; }
.rag-card-meta { font-size: .8em; color: var(--body-text-color-subdued); margin: .1rem 0 .35rem 2rem; }
.rag-passage { font-size: .86em; line-height: 1.5; white-space: pre-wrap; max-height: 16rem;
  overflow-y: auto; color: var(--body-text-color); }
mark.rag-quote { background: #fef08a; color: inherit; padding: 0 .1em; border-radius: 3px; }
.rag-flash { box-shadow: 0 0 0 3px #60a5fa; }
details.rag-uncited summary { cursor: pointer; font-size: .85em; color: var(--body-text-color-subdued);
  margin-bottom: .5rem; }
.rag-corpus { font-size: .9em; }
.rag-corpus-error { color: #b91c1c; }
.rag-upload { font-size: .85em; }
.rag-upload-errors { color: #b91c1c; margin: .3rem 0 0 1rem; }
.rag-upload progress { width: 100%; }
"""

# Our own script (no untrusted data in it): [n] markers scroll to their source card (after the
# panel switched to that answer), "Copy answer" buttons copy the hidden text beside them.
APP_HEAD = """
<script>
(function () {
  function flash(el) { el.classList.add('rag-flash'); setTimeout(function () { el.classList.remove('rag-flash'); }, 1600); }
  function copyText(text, button) {
    var done = function () { var old = button.textContent; button.textContent = 'Copied ✓';
      setTimeout(function () { button.textContent = old; }, 1500); };
    var fallback = function () { var ta = document.createElement('textarea'); ta.value = text;
      ta.style.position = 'fixed'; ta.style.opacity = '0'; document.body.appendChild(ta); ta.select();
      try { document.execCommand('copy'); } catch (e) {} ta.remove(); done(); };
    if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done, fallback); }
    else { fallback(); }
  }
  document.addEventListener('click', function (ev) {
    var target = ev.target; if (!target || !target.closest) { return; }
    var cite = target.closest('a.rag-cite');
    if (cite) {
      ev.preventDefault();
      var id = (cite.getAttribute('href') || '').slice(1); var tries = 0;
      (function go() {
        var el = document.getElementById(id);
        if (el) { var d = el.closest('details'); if (d) { d.open = true; }
          el.scrollIntoView({behavior: 'smooth', block: 'nearest'}); flash(el); }
        else if (tries++ < 30) { setTimeout(go, 100); }
      })();
      return;
    }
    var button = target.closest('button.rag-copy');
    if (button) {
      ev.preventDefault();
      var holder = button.parentElement && button.parentElement.querySelector('.rag-copy-text');
      copyText(holder ? holder.textContent : '', button);
    }
  }, true);
})();
</script>
"""


# --- helpers (pure, tested directly) ------------------------------------------------------
def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """``settings.auth`` as (user, password) pairs: "user:password" or a file of such lines."""
    if not value:
        return None
    candidate = Path(value).expanduser()
    if candidate.is_file():
        lines = candidate.read_text(encoding="utf-8").splitlines()
        where = f"the auth file {candidate}"
    else:
        lines = [value]
        where = "RAG_AUTH"
    pairs: list[tuple[str, str]] = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user.strip() or not password:
            msg = f"Each login in {where} must look like user:password."
            raise ConfigError(msg, hint="Set RAG_AUTH to user:password or to a file of such lines.")
        pairs.append((user.strip(), password))
    if not pairs:
        raise ConfigError(f"No logins found in {where}.", hint="Add lines like user:password.")
    return pairs


def safe_filename(name: str) -> str | None:
    """A plain file name for an upload (no directories, no odd characters), or ``None``.

    ``None`` when the suffix is not an allowed article type.
    """
    base = unicodedata.normalize("NFKC", str(name)).replace("\\", "/").split("/")[-1]
    base = re.sub(r"[^\w.\- ]+", "_", base, flags=re.UNICODE).strip()
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        return None
    suffix = "." + suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        return None
    stem = re.sub(r"\s+", " ", stem).strip(" .-_")[:100] or "upload"
    return f"{stem}{suffix}"


def _display_name(path: Any) -> str:
    orig = getattr(path, "orig_name", None) or getattr(path, "name", None) or str(path)
    return Path(str(orig)).name[:200]


def save_uploads(
    files: Sequence[Any], settings: Settings
) -> tuple[list[Path], list[str], list[tuple[str, str]]]:
    """Copy accepted uploads into ``<data_dir>/uploads/``.

    Returns (saved paths, their names, [(name, reason)] of refused files). Refuses files of
    other types, over ``settings.max_upload_mb``, or too many at once.
    """
    target_dir = (settings.data_dir / "uploads").resolve()
    target_dir.mkdir(parents=True, exist_ok=True)
    limit = int(settings.max_upload_mb * 1024 * 1024)
    saved: list[Path] = []
    names: list[str] = []
    rejected: list[tuple[str, str]] = []
    for position, item in enumerate(files or []):
        raw = getattr(item, "path", None) or getattr(item, "name", None) or item
        source = Path(str(raw))
        shown = _display_name(item)
        if position >= MAX_FILES_PER_UPLOAD:
            rejected.append(
                (
                    shown,
                    f"more than {MAX_FILES_PER_UPLOAD} files at once; upload the rest separately",
                )
            )
            continue
        name = safe_filename(shown)
        if name is None:
            allowed = ", ".join(s.lstrip(".") for s in UPLOAD_SUFFIXES)
            rejected.append((shown, f"not an article file type (allowed: {allowed})"))
            continue
        try:
            info = source.stat()
        except OSError:
            rejected.append((shown, "the upload could not be read"))
            continue
        if not source.is_file():
            rejected.append((shown, "not a regular file"))
            continue
        if info.st_size > limit:
            rejected.append(
                (
                    shown,
                    f"too large ({info.st_size / 1048576:.1f} MB; the limit is {settings.max_upload_mb:g} MB)",
                )
            )
            continue
        if info.st_size == 0:
            rejected.append((shown, "the file is empty"))
            continue
        dest = (target_dir / name).resolve()
        if dest.parent != target_dir:
            rejected.append((shown, "unsafe file name"))
            continue
        fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=".upload-", suffix=".part")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            rejected.append((shown, f"could not be saved: {exc.strerror or exc}"))
            continue
        saved.append(dest)
        names.append(name)
    return saved, names, rejected


class _LazyChain:
    """Builds the chain on first use (so the page comes up even when the index is missing)."""

    def __init__(self, settings: Settings, chain: Any = None) -> None:
        self.settings = settings
        self._chain = chain
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._chain is None:
            with self._lock:
                if self._chain is None:
                    from rag.chain import build_chain

                    self._chain = build_chain(self.settings)
        return self._chain


# --- turns: one question and its answer, kept per session in gr.State --------------------
def _new_turn(question: str) -> dict[str, Any]:
    return {
        "question": question,
        "standalone": None,
        "context": [],
        "answer": "",
        "citations": [],
        "refused": False,
        "timings": {},
        "model": None,
        "extra": {},
        "error": None,
        "hint": "",
        "pending": True,
    }


def _history(turns: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Earlier completed turns in the chain's chat_history format."""
    out: list[dict[str, str]] = []
    for turn in turns:
        if turn.get("pending") or turn.get("error"):
            continue
        out.append({"role": "user", "content": turn["question"]})
        out.append({"role": "assistant", "content": turn["answer"]})
    return out


def _assistant_html(index: int, turn: dict[str, Any], *, live: bool) -> str:
    if turn.get("error"):
        return render.render_error(turn["error"], hint=turn.get("hint", ""))
    if turn.get("pending"):
        if turn["answer"]:
            if live:
                return render.render_answer(
                    index, turn["answer"], context=turn["context"], streaming=True
                )
            return render.render_error("The answer was stopped before it finished.")
        if not live:
            return render.render_error("The answer was stopped before it finished.")
        step = "Reading the passages…" if turn["context"] else "Searching the articles…"
        return f'<div class="rag-answer rag-waiting">{step}</div>'
    trace = render.render_trace(
        question=turn["question"],
        standalone=turn["standalone"],
        context=turn["context"],
        citations=turn["citations"],
        timings=turn["timings"],
        model=turn["model"],
        refused=turn["refused"],
        extra=turn["extra"],
    )
    return render.render_answer(
        index,
        turn["answer"],
        context=turn["context"],
        citations=turn["citations"],
        refused=turn["refused"],
        trace_html=trace,
    )


def _messages(turns: Sequence[dict[str, Any]], live: int | None = None) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for i, turn in enumerate(turns):
        out.append({"role": "user", "content": render.render_user(turn["question"])})
        out.append({"role": "assistant", "content": _assistant_html(i, turn, live=i == live)})
    return out


def _sources_html(index: int, turn: dict[str, Any], *, live: bool = False) -> str:
    return render.render_sources(
        index,
        turn["question"],
        turn["context"],
        citations=turn["citations"],
        refused=turn["refused"],
        pending=bool(turn.get("pending") and live and not turn.get("error")),
        error=bool(turn.get("error")),
    )


def _turn_of_message(index: Any) -> int | None:
    if isinstance(index, (list, tuple)):
        index = index[0] if index else None
    try:
        return int(index) // 2
    except (TypeError, ValueError):
        return None


# --- the app -----------------------------------------------------------------------------
class ChatHandlers:
    """The page's event handlers (plain methods, so tests can drive them without a browser)."""

    def __init__(self, settings: Settings, chain: Any = None) -> None:
        self.settings = settings
        self.chain = _LazyChain(settings, chain)
        self.feedback = FeedbackLog(settings.data_dir / "feedback.jsonl")
        self._ingest_lock = threading.Lock()

    def warm_up(self) -> None:
        """Build the chain now (loads the models) so the first question is quick."""
        try:
            self.chain.get()
        except Exception as exc:  # noqa: BLE001 - shown again on the first question
            logger.warning("could not prepare the answering chain yet: %s", exc)

    def corpus_html(self) -> str:
        """Articles and chunks in the index."""
        try:
            from rag.status import collect_info

            return render.render_corpus(collect_info(self.settings))
        except RagError as exc:
            return render.render_corpus(None, error=str(exc))
        except Exception as exc:  # the page must come up regardless
            logger.exception("corpus statistics failed")
            return render.render_corpus(None, error=f"{type(exc).__name__}: {exc}")

    def respond(self, message: str, turns: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
        """Ask the chain; yields (chat messages, turns, sources html, question box) as it streams."""
        question = (message or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        turns = list(turns or [])
        history = _history(turns)
        turn = _new_turn(question)
        turns.append(turn)
        i = len(turns) - 1
        yield _messages(turns, i), turns, render.render_sources(i, question, [], pending=True), ""
        last = time.monotonic()
        try:
            got_final = False
            for event in self.chain.get().stream({"input": question, "chat_history": history}):
                if "standalone_question" in event:
                    turn["standalone"] = event["standalone_question"]
                if "context" in event:
                    turn["context"] = [render.passage_from_doc(d) for d in event["context"] or []]
                    yield _messages(turns, i), turns, _sources_html(i, turn, live=True), gr.skip()
                    last = time.monotonic()
                if "answer" in event:
                    turn["answer"] += str(event["answer"] or "")
                    if time.monotonic() - last >= _STREAM_INTERVAL:
                        yield _messages(turns, i), turns, gr.skip(), gr.skip()
                        last = time.monotonic()
                if "final" in event:
                    _apply_final(turn, event["final"] or {})
                    got_final = True
            if not got_final:
                raise RagError("The answer ended before it was complete.")
            turn["pending"] = False
        except RagError as exc:
            logger.warning("answer failed: %s", exc)
            turn.update(error=exc.message, hint=exc.hint, pending=False)
        except Exception as exc:
            logger.exception("answer failed")
            turn.update(
                error=f"Something went wrong while answering ({type(exc).__name__}).", pending=False
            )
        yield _messages(turns, i), turns, _sources_html(i, turn), gr.skip()

    def stop(self, turns: list[dict[str, Any]]) -> tuple[Any, ...]:
        """The Stop button: the answer in progress is marked as stopped."""
        turns = list(turns or [])
        for turn in turns:
            if turn.get("pending"):
                turn.update(
                    pending=False, error="You stopped this answer before it finished.", hint=""
                )
        if not turns:
            return gr.skip(), gr.skip(), gr.skip()
        return _messages(turns), turns, _sources_html(len(turns) - 1, turns[-1])

    def new_chat(self) -> tuple[Any, ...]:
        """Forget this session's conversation."""
        return [], [], render.render_sources_empty(), ""

    def show_sources(self, turns: list[dict[str, Any]], evt: gr.SelectData) -> Any:
        """Clicking an answer (or its [n] marker) shows that answer's sources."""
        i = _turn_of_message(evt.index)
        if i is None or not turns or i >= len(turns):
            return gr.skip()
        return _sources_html(i, turns[i])

    def vote(self, turns: list[dict[str, Any]], evt: gr.LikeData) -> None:
        """Thumbs up/down: one line in feedback.jsonl."""
        i = _turn_of_message(evt.index)
        if i is None or not turns or i >= len(turns) or turns[i].get("pending"):
            return
        self.feedback.append(feedback_record(turns[i], rating_of(evt.liked)))

    def pick_example(self, evt: gr.SelectData) -> str:
        """The text of the example question clicked."""
        value = evt.value
        return str(value.get("text", "") if isinstance(value, dict) else value or "")

    def add_files(self, files: list[Any] | None) -> Iterator[tuple[Any, ...]]:
        """Save uploads, ingest them with visible progress; yields (status, corpus, file box)."""
        saved, names, rejected = save_uploads(files or [], self.settings)
        if not saved:
            yield (
                render.render_upload_report([], rejected, summary="Nothing was added."),
                gr.skip(),
                None,
            )
            return
        running = "Indexing… (loading the embedding model)"
        yield render.render_upload_report(names, rejected, running=running), gr.skip(), gr.skip()
        updates: queue.Queue[Any] = queue.Queue()
        outcome: dict[str, Any] = {}

        def work() -> None:
            from rag.ingest import ingest

            try:
                with self._ingest_lock:
                    outcome["report"] = ingest(
                        saved, self.settings, prune=False, progress=updates.put
                    )
            except RagError as exc:
                outcome["error"] = str(exc)
            except Exception as exc:
                logger.exception("ingest of uploads failed")
                outcome["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                updates.put(None)

        threading.Thread(target=work, name="rag-ui-ingest", daemon=True).start()
        while (item := updates.get()) is not None:
            line = (
                f"Indexing: {item.chunks_done}/{item.chunks_total} chunks, "
                f"{item.files_done}/{item.files_total} files"
            )
            bar = f'<progress max="{max(int(item.chunks_total), 1)}" value="{int(item.chunks_done)}"></progress>'
            yield (
                render.render_upload_report(names, rejected, running=line) + bar,
                gr.skip(),
                gr.skip(),
            )
        if "error" in outcome:
            failed = [(n, outcome["error"]) for n in names]
            report_html = render.render_upload_report(
                [], rejected, failed=failed, summary="Indexing failed."
            )
            yield report_html, self.corpus_html(), None
            return
        report = outcome["report"]
        failed = [(Path(f.path).name, f.reason) for f in report.failed]
        summary = report.summary() + (
            " Ask about them now." if report.added or report.updated else ""
        )
        yield (
            render.render_upload_report(names, rejected, summary=summary, failed=failed),
            self.corpus_html(),
            None,
        )


def _apply_final(turn: dict[str, Any], final: dict[str, Any]) -> None:
    final = dict(final)
    turn["answer"] = str(final.pop("answer", turn["answer"]) or "")
    turn["citations"] = list(final.pop("citations", None) or [])
    turn["refused"] = bool(final.pop("refused", False))
    turn["timings"] = dict(final.pop("timings", None) or {})
    turn["model"] = final.pop("model", None)
    turn["extra"] = {k: v for k, v in final.items() if k in ("refusal_reason", "verification")}


def build_app(
    settings: Settings | None = None, *, chain: Any = None, warm: bool = False
) -> gr.Blocks:
    """The chat page.

    ``chain`` overrides the answering chain (default: :func:`rag.chain.build_chain`, built on the
    first question, or right away in the background with ``warm=True``).
    """
    from rag.config import Settings

    settings = settings or Settings()
    h = ChatHandlers(settings, chain)
    if warm:
        threading.Thread(target=h.warm_up, name="rag-ui-warm", daemon=True).start()
    with gr.Blocks(
        title="Ask the news · article-rag",
        analytics_enabled=False,
        delete_cache=(3600, 3600),  # Gradio's temporary copies of uploads
    ) as demo:
        turns_state = gr.State([])
        with gr.Row(elem_id="rag-header", equal_height=True):
            gr.HTML(
                "<h1>Ask the news</h1><p>Answers come only from the indexed articles; every claim "
                "is cited [n] to the passage it came from.</p>",
                js_on_load=None,
                scale=3,
            )
            corpus_stats = gr.HTML(
                render.render_corpus(None), elem_id="corpus-stats", js_on_load=None, scale=2
            )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                chatbot = gr.Chatbot(
                    elem_id="chat",
                    label="Chat",
                    show_label=False,
                    height=600,
                    buttons=[],
                    sanitize_html=True,
                    render_markdown=True,
                    line_breaks=False,
                    latex_delimiters=[],
                    allow_tags=False,
                    feedback_options=("Like", "Dislike"),
                    group_consecutive_messages=False,
                    examples=[{"text": q} for q in EXAMPLES],
                    placeholder="Ask a question about the articles, or pick an example below.",
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        elem_id="question",
                        show_label=False,
                        placeholder="Ask about the articles…",
                        lines=1,
                        max_lines=4,
                        scale=6,
                        autofocus=True,
                    )
                    ask = gr.Button("Ask", variant="primary", elem_id="ask", scale=1, min_width=90)
                with gr.Row():
                    stop = gr.Button("Stop", elem_id="stop", size="sm", scale=0, min_width=90)
                    clear = gr.Button(
                        "New chat", elem_id="new-chat", size="sm", scale=0, min_width=110
                    )
            with gr.Column(scale=2, min_width=340):
                sources = gr.HTML(
                    render.render_sources_empty(),
                    elem_id="rag-sources",
                    js_on_load=None,
                    max_height=680,
                )
                with gr.Accordion("Corpus: add articles", open=False, elem_id="corpus-panel"):
                    upload = gr.File(
                        label=f"Article files ({', '.join(s.lstrip('.') for s in UPLOAD_SUFFIXES)}; "
                        f"up to {settings.max_upload_mb:g} MB each)",
                        file_count="multiple",
                        file_types=list(UPLOAD_SUFFIXES),
                        type="filepath",
                        elem_id="upload",
                    )
                    upload_status = gr.HTML("", elem_id="upload-status", js_on_load=None)

        outputs = [chatbot, turns_state, sources, question]
        asking = [
            ask.click(h.respond, [question, turns_state], outputs, trigger_mode="once"),
            question.submit(h.respond, [question, turns_state], outputs, trigger_mode="once"),
        ]
        asking.append(
            chatbot.example_select(h.pick_example, None, question).then(
                h.respond, [question, turns_state], outputs, trigger_mode="once"
            )
        )
        stop.click(h.stop, [turns_state], [chatbot, turns_state, sources], cancels=asking)
        clear.click(h.new_chat, None, outputs, cancels=asking)
        chatbot.clear(h.new_chat, None, outputs, cancels=asking)
        chatbot.select(h.show_sources, [turns_state], [sources])
        chatbot.like(h.vote, [turns_state], None)
        upload.upload(
            h.add_files,
            [upload],
            [upload_status, corpus_stats, upload],
            concurrency_limit=1,
            show_progress="hidden",
        )
        demo.load(h.corpus_html, None, corpus_stats)
    return demo


def launch_app(demo: gr.Blocks, settings: Settings, **overrides: Any) -> Any:
    """Queue and serve ``demo`` as the settings say (host, port, login, concurrency, upload size)."""
    demo.queue(default_concurrency_limit=settings.concurrency)
    params: dict[str, Any] = {
        "server_name": settings.host,
        "server_port": settings.port,
        "auth": parse_auth(settings.auth),
        "auth_message": "Log in to ask questions about the articles." if settings.auth else None,
        "max_file_size": int(settings.max_upload_mb * 1024 * 1024),
        "share": False,
        "show_error": False,
        "ssr_mode": False,
        "pwa": False,
        "mcp_server": False,
        "enable_monitoring": False,
        "css": APP_CSS,
        "head": APP_HEAD,
        "theme": gr.themes.Default(
            primary_hue="blue",
            font=[
                "system-ui",
                "-apple-system",
                "Segoe UI",
                "Roboto",
                "Helvetica Neue",
                "Arial",
                "sans-serif",
            ],
            font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
        ),
        "footer_links": [],
        "run_history": False,
    }
    params.update(overrides)
    return demo.launch(**params)
