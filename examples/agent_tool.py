"""The article retriever as a LangChain tool, called by an agent loop.

``create_retriever_tool`` wraps :func:`rag.build_retriever` (hybrid BM25 + dense retrieval
over the index) so any tool-calling chat model can search the articles. Here a scripted fake
chat model (``GenericFakeChatModel``) plays the model, so the example runs without one: it asks
for the tool, the loop runs it, and the tool's passages go back to the model. Swap in a real
tool-calling model (``ChatOpenAI(...).bind_tools([tool])``) to let it write the answer.

Usage:
    python examples/agent_tool.py "How many KFOR troops are there?" --data-dir .rag
"""

from __future__ import annotations

import argparse
from pathlib import Path

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import create_retriever_tool

from rag import build_retriever
from rag.config import get_settings


def main() -> None:
    """Run one tool call and print what the tool returned."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("question", nargs="?", default="How many KFOR troops are there?")
    parser.add_argument("--data-dir", type=Path, help="Data dir of the index [env: RAG_DATA_DIR].")
    args = parser.parse_args()

    settings = get_settings(data_dir=args.data_dir, k=3)
    tool = create_retriever_tool(
        build_retriever(settings),
        name="search_articles",
        description="Search the indexed news articles; returns the most relevant passages.",
    )
    model = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[
                        {"name": tool.name, "args": {"query": args.question}, "id": "call_1"}
                    ],
                ),
                AIMessage(content="(scripted model) The passages above answer the question."),
            ]
        )
    )
    tools = {tool.name: tool}
    messages: list[BaseMessage] = [HumanMessage(args.question)]
    while True:  # the agent loop: call the model, run the tools it asks for, until it answers
        reply = model.invoke(messages)
        messages.append(reply)
        if not isinstance(reply, AIMessage) or not reply.tool_calls:
            break
        for call in reply.tool_calls:
            print(f"tool call: {call['name']}({call['args']})")
            result = tools[call["name"]].invoke(call["args"])
            print(f"tool result:\n{result}\n")
            messages.append(ToolMessage(content=str(result), tool_call_id=call["id"] or ""))
    print(f"final answer: {messages[-1].content}")


if __name__ == "__main__":
    main()
