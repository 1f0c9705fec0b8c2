"""Start the chat page: ``python app.py`` is ``rag serve`` (see ``--help``)."""

from __future__ import annotations

from rag.ui.serve import serve_cmd

if __name__ == "__main__":
    serve_cmd()
