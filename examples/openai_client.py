"""Ask `rag api` with the official `openai` package: a plain answer, then a streamed one.

The answer text is ``choices[0].message.content``; the verified citations are in the extra
``citations`` field (``reply.model_extra`` in the openai package), and a streamed answer sends
the retrieved passages first (``sources``) and the citations in its last content chunk.

Usage:
    rag api &                                        # in another terminal
    python examples/openai_client.py "How many KFOR troops are there?"
    python examples/openai_client.py --data-dir .rag  # starts its own `rag api` on a free port

Environment: RAG_API_URL (default http://127.0.0.1:8000/v1), RAG_API_KEY (if the server
requires one); with --data-dir, the server takes RAG_LLM, RAG_EMBEDDING_MODEL, ... as usual.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from openai import OpenAI


@contextmanager
def own_server(data_dir: Path) -> Iterator[str]:
    """Start `rag api` over ``data_dir`` on a free port; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAG_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "rag", "api", "--port", str(port)], env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("rag api did not start") from None
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def show_citations(citations: list[dict[str, Any]]) -> None:
    """Print each citation's number, title and supporting sentence."""
    for c in citations:
        print(f"  [{c['n']}] {c['title']} ({c['source'] or 'unknown source'})")
        print(f"      > {c['quote']}")


def ask(base_url: str, api_key: str, question: str) -> None:
    """One plain and one streamed completion."""
    client = OpenAI(base_url=base_url, api_key=api_key)
    models = [m.id for m in client.models.list()]
    print(f"models: {models}")
    messages = [{"role": "user", "content": question}]

    reply = client.chat.completions.create(model="rag", messages=messages)  # type: ignore[arg-type]
    extra = reply.model_extra or {}
    print("\n--- plain ---")
    print(reply.choices[0].message.content)
    print(f"refused: {extra.get('refused')}  reason: {extra.get('refusal_reason')}")
    show_citations(extra.get("citations", []))

    print("\n--- streamed (sources without the appended 'Sources:' lines) ---")
    stream = client.chat.completions.create(
        model="rag",
        messages=messages,  # type: ignore[arg-type]
        stream=True,
        extra_body={"append_sources": False},
    )
    final: dict[str, Any] = {}
    for chunk in stream:
        extra = chunk.model_extra or {}
        if extra.get("sources") is not None:
            print(f"(retrieved {len(extra['sources'])} passages)")
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
        if "citations" in extra:
            final = extra
    print()
    show_citations(final.get("citations", []))


def main() -> None:
    """Parse the arguments and ask."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("question", nargs="?", default="How many KFOR troops are there?")
    parser.add_argument("--base-url", default=os.environ.get("RAG_API_URL"))
    parser.add_argument("--api-key", default=os.environ.get("RAG_API_KEY", "").split(",")[0])
    parser.add_argument(
        "--data-dir", type=Path, help="Start a private `rag api` over this data dir."
    )
    args = parser.parse_args()
    key = args.api_key or "not-needed"
    if args.data_dir and not args.base_url:
        with own_server(args.data_dir) as url:
            ask(url, key, args.question)
    else:
        ask(args.base_url or "http://127.0.0.1:8000/v1", key, args.question)


if __name__ == "__main__":
    main()
