"""The chat page in a real (headless) Chromium.

Two apps are served in this process on free 127.0.0.1 ports: one with the real chain
(extractive answers, the bundled embedder, an ingested copy of corpus/; more articles are
uploaded through the page by the tests that need them),
one with a scripted fake chain for what the real one cannot be made to do on demand (a model
timing out, hostile model output, slow first tokens).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from tests.browser_helpers import FakeChain, RunningApp, start_app

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = REPO / "docs" / "screenshot.png"
KFOR = "How many KFOR troops are there?"
ZEBRA = "How many stripes did the Quuxville zebra crossing council vote to paint?"
OFF_TOPIC = "What is the capital of Peru?"
FOLLOW_UP = "Where do they come from?"

HOSTILE = {
    "title": "<img src=x onerror=\"window.__xss='title'\">Zebra crossing council "
    "<script>window.__xss='title-script'</script>",
    "url": "javascript:window.__xss='url'",
    "source": "<b onmouseover=\"window.__xss='source'\">evil.example</b>",
    "published": "2024-05-01",
    "text": (
        "The zebra crossing council of Quuxville voted to paint 314 new stripes on Main Street. "
        "<script>window.__xss='body'</script> Residents said "
        "<img src=x onerror=\"window.__xss='img'\"> "
        "the stripes were [bright](javascript:window.__xss='md') and welcome.\n\n"
        "The council meets again in June to discuss the stripes on Elm Street."
    ),
}
NEW_ARTICLE = (
    "Lunar greenhouse harvest\n\n"
    "The experimental lunar greenhouse at Shackleton base harvested 42 tomatoes "
    "in its first season, "
    "the mission's botanist said on Monday.\n\n"
    "The team plans to grow peppers next year.\n"
)


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope: Playwright's sync API keeps an event loop running in this thread while it
    # is open, which would break asyncio.run() in tests collected after this module.
    pytest.importorskip("gradio")
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed (/usr/bin/chromium); run `make browser-deps`"
        )
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def real_app(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[RunningApp]:
    """The real chain (extractive answers, bundled embedder) over an ingested copy of corpus/."""
    from rag.ingestion.pipeline import ingest

    root = tmp_path_factory.mktemp("ui-real")
    corpus = root / "corpus"
    shutil.copytree(REPO / "corpus", corpus)
    settings = Settings(data_dir=root / "data", llm="extractive", concurrency=2)
    report = ingest([corpus], settings)
    assert not report.failed, report.failed
    app = start_app(settings)
    yield app
    app.close()


@pytest.fixture(scope="module")
def fake_app(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[RunningApp]:
    """The scripted fake chain: slow first token, failures, hostile model output."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("ui-fake") / "data")
    app = start_app(settings, chain=FakeChain(token_delay=1.5))
    yield app
    app.close()


class Watch:
    """Records dialogs and page errors of a page."""

    def __init__(self, page: Any) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def open_page(browser: Any, url: str, **context_args: Any) -> tuple[Any, Any, Watch]:
    context = browser.new_context(viewport={"width": 1400, "height": 950}, **context_args)
    page = context.new_page()
    watch = Watch(page)
    page.goto(url)
    page.wait_for_selector("#chat")
    page.wait_for_selector("#question textarea")
    return context, page, watch


@pytest.fixture
def page(browser: Any, real_app: RunningApp) -> Iterator[Any]:
    context, page, watch = open_page(browser, real_app.url)
    page.watch = watch
    yield page
    context.close()


def submit(page: Any, question: str) -> int:
    """Type and send a question; returns how many answers the chat showed before."""
    before = page.locator("#chat .rag-answer").count()
    page.fill("#question textarea", question)
    page.click("#ask")
    return before


DONE_JS = """([n]) => {
  const all = document.querySelectorAll('#chat .rag-answer');
  if (all.length <= n) { return false; }
  const last = all[all.length - 1].classList;
  return !last.contains('rag-waiting') && !last.contains('rag-streaming');
}"""


def wait_answer(page: Any, before: int, timeout: float = 90_000) -> Any:
    """Wait until the answer after the first ``before`` ones is complete; returns it."""
    page.wait_for_function(DONE_JS, arg=[before], timeout=timeout)
    return page.locator("#chat .rag-answer").last


def ask(page: Any, question: str) -> Any:
    return wait_answer(page, submit(page, question))


def feedback_lines(settings: Settings) -> list[dict[str, Any]]:
    path = settings.data_dir / "feedback.jsonl"
    if not path.exists():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


# --- the real chain ------------------------------------------------------------------------
def test_kfor_answer_with_highlighted_source_and_linked_citation(page: Any) -> None:
    page.locator("#chat button", has_text=KFOR).first.click()  # the first example question
    answer = wait_answer(page, 0)
    assert "3,700" in answer.inner_text()
    sources = page.locator("#rag-sources")
    assert "3,700 troops" in sources.inner_text()
    assert "3,700 troops" in sources.locator("mark.rag-quote").first.inner_text()
    card = sources.locator(".rag-card.rag-cited").first
    assert "infobae.com" in card.inner_text()
    cite = answer.locator("a.rag-cite").first
    target = cite.get_attribute("href")
    assert target and target.startswith("#src-")
    assert page.locator(target).count() == 1
    assert cite.inner_text().strip("[]") == page.locator(target).locator(".rag-num").inner_text()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.screenshot(path=str(SCREENSHOT))
    cite.click()
    page.wait_for_function(
        "(id) => document.getElementById(id).classList.contains('rag-flash')", arg=target[1:]
    )
    # the trace
    trace = page.locator("#chat details.rag-trace").last
    assert trace.locator("summary").inner_text() == "How this was answered"
    trace.locator("summary").click()
    text = trace.inner_text()
    assert "Dense" in text and "BM25" in text and "Fused" in text and "Total" in text
    assert "extractive" in text
    assert not page.watch.errors


def test_what_someone_said_gets_their_own_words_in_several_cited_sentences(page: Any) -> None:
    answer = ask(page, "What did Kurti say about Serbia?")
    text = answer.inner_text()
    assert "criminal gangs" in text  # Kurti's words
    assert "is not simple" not in text  # Vucic's words, in the same passages
    assert answer.locator("a.rag-cite").count() >= 1
    assert page.locator("#chat .rag-refusal").count() == 0
    trace = page.locator("#chat details.rag-trace").last
    trace.locator("summary").click()
    assert "Question kind: said" in trace.inner_text()
    overview = ask(page, "What is going on between Serbia and Kosovo?")
    assert overview.locator("a.rag-cite").count() >= 2  # several cited sentences
    assert page.locator("#chat .rag-refusal").count() == 0


def test_follow_up_uses_this_sessions_history(page: Any) -> None:
    ask(page, KFOR)
    answer = ask(page, FOLLOW_UP)
    assert "countries" in answer.inner_text()
    assert page.locator("#chat .rag-refusal").count() == 0
    trace = page.locator("#chat details.rag-trace").last
    trace.locator("summary").click()
    assert "Follow-up rewritten for search" in trace.inner_text()
    assert "KFOR" in trace.inner_text()


def test_refusal_looks_different_and_lists_closest_passages(page: Any) -> None:
    answer = ask(page, OFF_TOPIC)
    assert "rag-refusal" in (answer.get_attribute("class") or "")
    assert "Not found in the articles" in answer.inner_text()
    sources = page.locator("#rag-sources")
    assert "Closest passages found" in sources.inner_text()
    assert sources.locator(".rag-card").count() >= 1
    bg = answer.evaluate("el => getComputedStyle(el).backgroundColor")
    assert bg == "rgb(255, 251, 235)"  # amber, not the normal answer style


def test_clicking_an_earlier_answer_shows_its_sources(page: Any) -> None:
    ask(page, KFOR)
    ask(page, OFF_TOPIC)
    assert "Closest passages found" in page.locator("#rag-sources").inner_text()
    page.locator("#chat .rag-answer").first.click()
    page.wait_for_function(
        "() => document.querySelector('#rag-sources .rag-sources').dataset.turn === '0'"
    )
    assert "3,700 troops" in page.locator("#rag-sources mark").first.inner_text()


def test_new_chat_clears_the_conversation(page: Any) -> None:
    ask(page, KFOR)
    page.click("#new-chat")
    page.wait_for_function("() => !document.querySelector('#chat .rag-answer')")
    answer = ask(page, FOLLOW_UP)  # no history any more: nothing to resolve "they" against
    assert "rag-refusal" in (answer.get_attribute("class") or "")


def test_copy_answer_puts_answer_and_sources_on_the_clipboard(
    browser: Any, real_app: RunningApp
) -> None:
    context, page, _ = open_page(
        browser, real_app.url, permissions=["clipboard-read", "clipboard-write"]
    )
    try:
        ask(page, KFOR)
        button = page.locator("#chat button.rag-copy").last
        button.click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('button.rag-copy')]"
            ".some(b => b.textContent.startsWith('Copied'))"
        )
        copied = page.evaluate("navigator.clipboard.readText()")
        assert "3,700 troops" in copied and "Sources:" in copied and "[1]" in copied
    finally:
        context.close()


def test_two_sessions_keep_separate_histories(browser: Any, real_app: RunningApp) -> None:
    ctx_a, a, _ = open_page(browser, real_app.url)
    ctx_b, b, _ = open_page(browser, real_app.url)
    try:
        before_a, before_b = submit(a, KFOR), submit(b, OFF_TOPIC)  # both in flight at once
        wait_answer(a, before_a)
        wait_answer(b, before_b)
        assert OFF_TOPIC not in a.locator("#chat").inner_text()
        assert KFOR not in b.locator("#chat").inner_text()
        # the same follow-up: resolved against A's history, not against B's
        answer_a = ask(a, FOLLOW_UP)
        answer_b = ask(b, FOLLOW_UP)
        assert "3,700" in answer_a.inner_text() or "countries" in answer_a.inner_text()
        assert "rag-refusal" in (answer_b.get_attribute("class") or "")
        assert (
            b.locator("#chat .rag-answer").count() == 2
            and a.locator("#chat .rag-answer").count() == 2
        )
    finally:
        ctx_a.close()
        ctx_b.close()


def test_thumbs_up_writes_a_feedback_line(page: Any, real_app: RunningApp) -> None:
    before = len(feedback_lines(real_app.settings))
    ask(page, KFOR)
    page.locator('#chat button[aria-label="Like"]').last.click()
    deadline = time.monotonic() + 15
    while len(feedback_lines(real_app.settings)) <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    record = feedback_lines(real_app.settings)[-1]
    assert record["rating"] == "up"
    assert record["question"] == KFOR
    assert "3,700" in record["answer"]
    assert record["citations"] and record["citations"][0]["n"] == 1
    assert record["timestamp"]


def upload(page: Any, *files: Path) -> str:
    """Upload files through the corpus panel; returns the status text once indexing is done."""
    panel = page.locator("#corpus-panel")
    if not panel.locator("#upload").is_visible():
        page.get_by_text("Corpus: add articles").click()
    page.locator("#upload input[type=file]").set_input_files([str(f) for f in files])
    page.wait_for_selector("#upload-status .rag-upload-summary", timeout=120_000)
    return page.locator("#upload-status").inner_text()


def test_hostile_article_renders_as_text_and_runs_nothing(page: Any, tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps(HOSTILE), encoding="utf-8")
    status = upload(page, hostile)
    assert "added" in status or "updated" in status or "unchanged" in status
    answer = ask(page, ZEBRA)
    assert "314" in answer.inner_text()
    sources = page.locator("#rag-sources")
    text = sources.inner_text()
    assert "Zebra crossing council" in text
    assert "<img src=x" in text or "<script>" in text  # shown as text, not as markup
    page.locator("#chat details.rag-trace").last.locator("summary").click()
    page.wait_for_timeout(500)
    for root in ("#chat", "#rag-sources"):
        assert page.locator(f"{root} img").count() == 0
        assert page.locator(f"{root} script").count() == 0
        assert page.locator(f"{root} [onerror], {root} [onmouseover]").count() == 0
    assert page.locator('a[href^="javascript"]').count() == 0
    # the javascript: url is not a link; hovering and clicking the title does nothing
    title = sources.locator(".rag-card-title").first
    assert title.evaluate("el => el.tagName") == "SPAN"
    title.hover()
    title.click()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert page.watch.dialogs == []


def test_evaluation_report_with_hostile_text_runs_nothing(browser: Any, tmp_path: Path) -> None:
    """report.md, rendered with raw HTML allowed, shows article/model text as text in Chromium."""
    from tests.hostile_report import HOSTILE_TEXT, render_report, shown_text, write_hostile_report

    html = render_report(write_hostile_report(tmp_path / "report"))
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(page)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.set_content(f"<!doctype html><html><body>{html}</body></html>")
        page.wait_for_timeout(300)
        for link in page.locator("a").all():
            assert (link.get_attribute("href") or "").startswith(("http://", "https://"))
        assert page.locator("script").count() == 0
        assert page.locator("[onerror], [onmouseover]").count() == 0
        images = page.locator("img")
        assert [images.nth(i).get_attribute("src") for i in range(images.count())] == ["report.png"]
        for cell in page.locator("li").all():
            cell.hover()
        assert page.evaluate("window.__xss") is None
        assert watch.dialogs == [] and watch.errors == []
        assert not [url for url in requests if "evil.example" in url]
        body = " ".join(page.locator("body").inner_text().split())
        assert shown_text(HOSTILE_TEXT) in body
    finally:
        context.close()


def test_upload_an_article_then_ask_about_it(
    page: Any, real_app: RunningApp, tmp_path: Path
) -> None:
    before = page.locator("#corpus-stats .rag-articles").inner_text()
    good = tmp_path / "lunar-greenhouse.txt"
    good.write_text(NEW_ARTICLE, encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    status = upload(page, good, broken)
    assert "1 added" in status
    assert "broken.json" in page.locator("#upload-status .rag-upload-errors").inner_text()
    after = page.locator("#corpus-stats .rag-articles").inner_text()
    assert int(after) == int(before) + 1
    assert (real_app.settings.data_dir / "uploads" / "lunar-greenhouse.txt").exists()
    answer = ask(page, "How many tomatoes did the lunar greenhouse harvest?")
    assert "42" in answer.inner_text()
    assert "Lunar greenhouse harvest" in page.locator("#rag-sources").inner_text()


def test_upload_refuses_other_file_types(page: Any, tmp_path: Path) -> None:
    bad = tmp_path / "notes.exe"
    bad.write_bytes(b"MZ\x00\x00")
    page.get_by_text("Corpus: add articles").click()
    page.locator("#upload input[type=file]").set_input_files([str(bad)])
    page.get_by_text("Invalid file type: notes.exe").wait_for(timeout=10_000)


# --- the fake chain ------------------------------------------------------------------------
def test_sources_appear_before_the_first_token(browser: Any, fake_app: RunningApp) -> None:
    context, page, _ = open_page(browser, fake_app.url)
    try:
        submit(page, KFOR)
        page.wait_for_selector("#rag-sources #src-0-1", timeout=10_000)
        # the passages are on screen while the answer has not started (the fake waits 1.5 s)
        assert "3,700" not in page.locator("#chat").inner_text()
        assert "Writing the answer" in page.locator("#rag-sources").inner_text()
        answer = wait_answer(page, 0)
        assert "3,700" in answer.inner_text()
    finally:
        context.close()


def test_backend_failure_is_shown_and_the_chat_stays_usable(
    browser: Any, fake_app: RunningApp
) -> None:
    context, page, _ = open_page(browser, fake_app.url)
    try:
        ask(page, "boom: How many KFOR troops are there?")
        error = page.locator("#chat .rag-error").last
        assert "took longer than 120s" in error.inner_text()
        assert "ask again" in error.inner_text()
        answer = ask(page, KFOR)
        assert "3,700" in answer.inner_text()
    finally:
        context.close()


def test_hostile_model_output_renders_as_text(browser: Any, fake_app: RunningApp) -> None:
    context, page, watch = open_page(browser, fake_app.url)
    try:
        answer = ask(page, "payload please")
        text = answer.inner_text()
        assert "<img src=x" in text and "[click me](javascript:" in text and "<script>" in text
        page.locator("#chat details.rag-trace").last.locator("summary").click()
        page.wait_for_timeout(300)
        assert page.locator("#chat img, #rag-sources img, #chat script").count() == 0
        assert page.locator('a[href^="javascript"]').count() == 0
        assert page.evaluate("window.__xss") is None
        assert watch.dialogs == []
    finally:
        context.close()


def test_stop_then_ask_again(browser: Any, fake_app: RunningApp) -> None:
    context, page, _ = open_page(browser, fake_app.url)
    try:
        submit(page, KFOR)
        page.wait_for_selector("#rag-sources #src-0-1", timeout=10_000)
        page.click("#stop")
        stopped = page.locator("#chat .rag-error").first
        stopped.wait_for(timeout=5_000)
        assert "stopped" in stopped.inner_text()
        page.wait_for_timeout(2500)  # longer than the fake's pause before its first token
        assert "3,700" not in page.locator("#chat").inner_text()
        answer = ask(page, KFOR)
        assert "3,700" in answer.inner_text()
        assert page.locator("#chat .rag-answer").count() == 2
    finally:
        context.close()


def test_login_is_required_when_auth_is_set(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = Settings(data_dir=tmp_path_factory.mktemp("ui-auth") / "data", auth="ann:s3cret")
    app = start_app(settings, chain=FakeChain())
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(app.url)
        page.locator("input[type=password]").wait_for()
        assert page.locator("#chat").count() == 0
        page.locator("input[type=text]").fill("ann")
        page.locator("input[type=password]").fill("wrong")
        page.get_by_role("button", name="Login").click()
        page.get_by_text("Incorrect Credentials").wait_for(timeout=10_000)
        assert page.locator("#chat").count() == 0
        page.locator("input[type=text]").fill("ann")
        page.locator("input[type=password]").fill("s3cret")
        page.get_by_role("button", name="Login").click()
        page.wait_for_selector("#chat", timeout=15_000)
        assert "3,700" in ask(page, KFOR).inner_text()
    finally:
        context.close()
        app.close()
