"""A LangChain ``Runnable`` whose work is a stream of events, folded into one answer by ``invoke``.

The chain streams tokens and *then* rewrites the answer by verifying its citations; that does
not fit ``RunnablePassthrough.assign`` plumbing without giving up streaming. Subclasses
implement ``_run`` (a generator of event dicts, see :mod:`rag.answer.result`); this base class
gives them ``stream``, ``invoke``, ``astream``, ``ainvoke`` (and so ``batch``) with LangChain's
callbacks and run tree.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForChainRun
from langchain_core.runnables import Runnable, RunnableConfig

from rag.answer.result import fold_events

__all__ = ["EventStreamRunnable"]


class EventStreamRunnable(Runnable[dict[str, Any], dict[str, Any]]):
    """Base of runnables that yield events; ``invoke`` folds them with :func:`fold_events`."""

    def _run(
        self,
        inputs: Iterator[dict[str, Any]],
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    @property
    def InputType(self) -> type:  # noqa: N802 - LangChain's name
        return dict

    @property
    def OutputType(self) -> type:  # noqa: N802
        return dict

    def stream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        yield from self._transform_stream_with_config(
            iter([input]), self._run, config, run_type="chain"
        )

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return dict(fold_events(self.stream(input, config, **kwargs)))

    async def astream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        # The work is CPU-bound in a local model: run the sync stream in a thread and hand
        # events over as they come, so an async host stays responsive.
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        done = object()

        def pump() -> None:
            try:
                for event in self.stream(input, config, **kwargs):
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except BaseException as exc:  # re-raised in the consumer
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            loop.call_soon_threadsafe(queue.put_nowait, done)

        threading.Thread(target=pump, daemon=True, name="rag-astream").start()
        while True:
            item = await queue.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self.invoke, input, config, **kwargs)
