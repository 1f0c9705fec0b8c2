"""The chat page: Gradio Blocks wiring the answering chain, sources, corpus uploads, feedback.

No retrieval or prompt logic lives here: questions go to the chain (:func:`rag.chain.build_chain`),
uploads go to :mod:`rag.ui.uploads`, HTML comes from :mod:`rag.ui.render`, the per-session turns
are kept with :mod:`rag.ui.turns`, and the page's CSS and script are in :mod:`rag.ui.assets`.

This module lays the page out and wires its events (:func:`build_app`) and serves it
(:func:`launch_app`, :func:`mount_app`, logins with :func:`parse_auth`); what each event does is
:class:`rag.ui.handlers.ChatHandlers`, re-exported here.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from rag.errors import ConfigError
from rag.ui import render
from rag.ui.assets import APP_CSS, APP_HEAD
from rag.ui.handlers import ChatHandlers
from rag.ui.uploads import (
    UPLOAD_SUFFIXES,
    safe_filename,
    save_uploads,
)

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

EXAMPLES = [
    "How many KFOR troops are there?",
    "What did Stoltenberg urge Serbia and Kosovo to do?",
    "Which countries do not recognise Kosovo's independence?",
]


# --- helpers ----------------------------------------------------------------------------
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


# --- the app -----------------------------------------------------------------------------
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
                        label="Article files ("
                        + ", ".join(s.lstrip(".") for s in UPLOAD_SUFFIXES)
                        + f"; up to {settings.max_upload_mb:g} MB each)",
                        file_count="multiple",
                        file_types=list(UPLOAD_SUFFIXES),
                        type="filepath",
                        elem_id="upload",
                    )
                    upload_status = gr.HTML("", elem_id="upload-status", js_on_load=None)

        outputs = [chatbot, turns_state, sources, question]
        # gradio types ``cancels`` as a list of dicts; its Dependency is a dict subclass.
        asking: list[dict[str, Any]] = [
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


def _page_options(settings: Settings) -> dict[str, Any]:
    """How the page is served (login, upload size, look), shared by launch and mount."""
    return {
        "auth": parse_auth(settings.auth),
        "auth_message": "Log in to ask questions about the articles." if settings.auth else None,
        "max_file_size": int(settings.max_upload_mb * 1024 * 1024),
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


# Browser sessions whose chat state the page keeps (Gradio's default is 10,000). Gradio drops a
# session's state when its tab closes; clients that never close (scripts, load tests) would
# otherwise grow memory by about 50 KB per session up to that default. The oldest go first.
SESSION_CAPACITY = 1000


def launch_app(demo: gr.Blocks, settings: Settings, **overrides: Any) -> Any:
    """Queue and serve ``demo`` as the settings say.

    The settings give the host, port, login, concurrency and upload size.
    """
    demo.queue(default_concurrency_limit=settings.concurrency)
    params: dict[str, Any] = {
        "server_name": settings.host,
        "server_port": settings.port,
        "share": False,
        "state_session_capacity": SESSION_CAPACITY,
        **_page_options(settings),
    }
    params.update(overrides)
    return demo.launch(**params)


def mount_app(app: Any, demo: gr.Blocks, settings: Settings, path: str = "/ui") -> Any:
    """Serve ``demo`` at ``path`` of another FastAPI ``app`` (one port for the page and the API).

    The page keeps its own login (``RAG_AUTH``), concurrency and upload size.
    """
    demo.queue(default_concurrency_limit=settings.concurrency)
    demo.state_session_capacity = SESSION_CAPACITY
    return gr.mount_gradio_app(app, demo, path=path, **_page_options(settings))
