"""The assistant over HTTP: ``rag api`` (OpenAI-compatible chat, ask, ingest, articles, health).

``build_api_app(settings)`` returns the FastAPI app; FastAPI and uvicorn come with the ``api``
extra and are imported only when the app is built.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_api_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rag.api import app

        return getattr(app, name)
    raise AttributeError(name)
