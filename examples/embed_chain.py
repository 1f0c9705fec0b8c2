"""Embed the assistant in your own Python program: the same chain `rag api` serves, in-process.

``build_chain()`` returns a LangChain Runnable; ``stream()`` yields the standalone question,
the passages, answer tokens, then one ``final`` event with the verified answer and citations.
:class:`rag.answer.result.AnswerFolder` folds those events into the typed answer.

Usage:
    python examples/embed_chain.py "How many KFOR troops are there?" "Who leads NATO?"
    python examples/embed_chain.py --data-dir .rag --json "How many KFOR troops are there?"

Settings come from RAG_* variables (RAG_LLM=extractive for answers without a model).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag import build_chain
from rag.answer.result import AnswerFolder
from rag.config import get_settings
from rag.errors import RagError


def main() -> None:
    """Answer each question, streaming the tokens, then list the verified citations."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", nargs="*", default=["How many KFOR troops are there?"])
    parser.add_argument("--data-dir", type=Path, help="Data dir of the index [env: RAG_DATA_DIR].")
    parser.add_argument("--json", action="store_true", help="Print each answer as one JSON line.")
    args = parser.parse_args()

    chain = build_chain(get_settings(data_dir=args.data_dir))  # build once, ask many times
    history: list[dict[str, str]] = []
    for question in args.questions:
        folder = AnswerFolder()
        try:
            for event in chain.stream({"input": question, "chat_history": history}):
                token = folder.add(event)
                if token and not args.json:
                    print(token, end="", flush=True)
        except RagError as exc:
            raise SystemExit(f"Error: {exc}") from exc
        out = folder.result()
        if args.json:
            keep = ("answer", "refused", "refusal_reason", "citations", "standalone_question")
            print(json.dumps({"question": question, **{k: out.get(k) for k in keep}}))
        else:
            if not folder.streamed:  # refusals and small talk come whole, in the final event
                print(out["answer"])
            elif out["answer"].strip() != folder.streamed.strip():
                print(f"\nChecked against the passages: {out['answer']}")
            else:
                print()
            for c in out.get("citations", []):
                print(f"  [{c['n']}] {c['title']}\n      > {c['quote']}")
        history += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": out["answer"]},
        ]


if __name__ == "__main__":
    main()
