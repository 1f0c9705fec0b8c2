"""The browser chat (Gradio): ``build_app(settings)`` builds the page, ``rag serve`` serves it.

Gradio is imported only when the page is built, so ``import rag.ui`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_app", "launch_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rag.ui import app

        return getattr(app, name)
    raise AttributeError(name)
