"""Models: embedders (and their accelerated runners), the optional reranker, LLM backends.

``embedder`` loads the embedding model (``runners`` and ``export`` make it fast on CPU;
``keyword`` is a model-free stand-in); ``reranker`` loads a cross-encoder; ``llms`` is the table
of LLM backends; ``bundled`` assembles the bundled GGUF model; ``llamacpp`` and
``chat_llamacpp`` run it in-process; ``server`` serves it over an OpenAI-compatible API.
Heavy packages are imported inside the loaders.
"""

from __future__ import annotations
