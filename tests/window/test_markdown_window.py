"""Answers drawn as Markdown in the real window: what streams in is what a reopened chat shows,
model output never makes the window fetch anything, links open only after asking, code blocks
copy alone, lines stay readable on a wide screen, and a theme switch recolours everything."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtGui import QGuiApplication, QPalette, QTextCursor
from PySide6.QtWidgets import QApplication, QMessageBox
from ui_fakes import FakeChatService, Reply

from app.core.message_view import MessageView
from app.ui.theme import Theme, palette_for
from app.ui.viewmodels.main import MainViewModel
from app.ui.widgets.link_guard import LinkGuard
from app.ui.widgets.markdown_writer import MODEL_LINK
from app.ui.widgets.transcript import READING_CHARS, TranscriptView
from app.ui.windows.main_window import MainWindow
from engine.states import GenerationState

SAMPLE = """## Plan for the **release**

Here is what I suggest, with `inline code`, a [link](https://example.com/docs) and ~~old~~ new:

1. Build the wheel
2. Run the tests
   - unit tests
   - the *real* model
3. Ship it

> A quote: keep it simple,
> and measure.

| Step | Time (s) | Note |
|------|---------:|:----:|
| build | 240 | cached |
| test | 1200 | fresh clone |

```python
def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)
```

---

- [ ] a task
- loose item

  with a second paragraph
* another list
"""


@pytest.fixture
def window(qtbot, loop) -> MainWindow:
    service = FakeChatService()
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.resize(1100, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


def _ask(qtbot, w: MainWindow, reply: Reply, prompt: str = "go") -> None:
    w.vm._service.enqueue(reply)
    qtbot.keyClicks(w.composer, prompt)
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.vm.busy and "TTFT" in w.transcript.toPlainText(), timeout=20_000)


def _answer(text: str, state: GenerationState = GenerationState.COMPLETED) -> MessageView:
    return MessageView("assistant", text, state, completion_tokens=9, message_id=2)


def _drawn(text: str, chunks: list[str] | None) -> str:
    """The document, as HTML, of one answer drawn at once (chunks None) or streamed in `chunks`."""
    view = TranscriptView()
    view.resize(900, 700)
    if chunks is None:
        view.show_messages([_answer(text)])
    else:
        view.show_messages([_answer("", GenerationState.STREAMING)])
        for chunk in chunks:
            view.append_text(chunk)
        view.finish_message(_answer(text))
    html = view.document().toHtml()
    view.deleteLater()
    return html


@pytest.mark.parametrize("seed", range(6))
def test_a_streamed_answer_is_drawn_exactly_as_the_reopened_one(qapp, seed: int) -> None:
    rng = random.Random(seed)
    text = SAMPLE * 2
    cuts = sorted(rng.sample(range(1, len(text)), 120))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    assert _drawn(text, chunks) == _drawn(text, None)


def test_characters_qt_keeps_for_its_own_structure_cannot_forge_it(qapp) -> None:
    """U+FDD0/U+FDD1 start and end frames inside a QTextDocument, U+FFFC is an inline object,
    U+2029 a block break: from the model they are shown as replacement marks or a line break."""
    text = "a\ufdd0b\ufdd1c\ufffcd\u2029e\n\n```\n\ufdd1code\ufdd0\n```\n"
    chunks = [text[i : i + 3] for i in range(0, len(text), 3)]
    assert _drawn(text, chunks) == _drawn(text, None)
    view = TranscriptView()
    view.show_messages([MessageView("user", "q\ufdd0\ufdd1", message_id=1), _answer(text)])
    shown = view.toPlainText()
    assert "a\ufffdb\ufffdc\ufffdd\ne" in shown and "\ufffdcode\ufffd" in shown and "q\ufffd\ufffd" in shown
    assert not any(ch in shown for ch in "\ufdd0\ufdd1\ufffc")
    view.deleteLater()


def test_markdown_is_formatted_and_the_persons_text_is_shown_as_typed(qtbot, window) -> None:
    _ask(qtbot, window, Reply([SAMPLE[i : i + 9] for i in range(0, len(SAMPLE), 9)]), prompt="**not bold**")
    shown = window.transcript.toPlainText()
    assert "**not bold**" in shown  # the person's message: as typed
    assert "Plan for the release" in shown and "**release**" not in shown and "## " not in shown
    assert "~~" not in shown and "`inline code`" not in shown and "| Step" not in shown
    doc = window.transcript.document()
    heading = doc.find("Plan for the release")
    assert heading.charFormat().fontWeight() >= 700
    code = doc.find("def fib")
    assert code.charFormat().fontFixedPitch()
    qtbot.waitUntil(lambda: window.transcript.colouring.pending == 0)  # coloured in idle time
    keyword = doc.find("def").charFormat().foreground().color()
    assert keyword != doc.find("fib(n - 1)").charFormat().foreground().color()
    assert "def fib(n: int) -> int:\n    return n" in window.transcript.toPlainText()  # colours change no text
    box = code.currentFrame()  # a box with its language and a Copy link, one block per line
    assert box is not doc.rootFrame() and box.frameFormat().border() == 1
    assert code.block().text() == "def fib(n: int) -> int:"
    assert doc.find("python").block().text().startswith("python") and not doc.find("Copy").isNull()
    item = doc.find("Build the wheel").block()
    assert item.textList() is not None and item.textList().format().style().name == "ListDecimal"
    table = doc.find("fresh clone").currentTable()
    assert table is not None and (table.rows(), table.columns()) == (3, 3)


def test_a_code_blocks_copy_link_copies_that_code_alone(qtbot, window) -> None:
    _ask(qtbot, window, Reply(["Run this:\n\n```bash\necho one\necho two\n```\n\nThen `this`."]))
    view = window.transcript
    copy = view.document().find("Copy")
    rect = view.cursorRect(copy)
    notices: list[str] = []
    view.notice.connect(notices.append)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.left() - 8, rect.center().y()))
    assert QGuiApplication.clipboard().text() == "echo one\necho two"
    assert notices == ["Code copied"]


class _Watcher(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Watcher.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def watcher() -> Iterator[tuple[str, list[str]]]:
    _Watcher.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Watcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Watcher.hits
    finally:
        server.shutdown()
        server.server_close()


def _hostile(base: str) -> str:
    return f"""Here are some things that try to reach out:

![a picture]({base}/md-image.png)

<img src="{base}/html-img.png"> <iframe src="{base}/iframe"></iframe>
<link rel="stylesheet" href="{base}/style.css"><style>@import url({base}/import.css);</style>
<script src="{base}/script.js"></script> <video src="{base}/v.mp4" poster="{base}/poster.png"></video>

<div style="background: url({base}/background.png)">styled</div>

[a link]({base}/link) and <{base}/autolink> and [ftp](ftp://127.0.0.1/file)
[js](javascript:fetch('{base}/js')) [data](data:text/html,<img src={base}/data.png>) [file](file:///etc/passwd)
"""


@pytest.mark.slow
def test_untrusted_output_never_makes_the_window_fetch_anything(qtbot, window, watcher) -> None:
    base, hits = watcher
    text = _hostile(base)
    _ask(qtbot, window, Reply([text[i : i + 7] for i in range(0, len(text), 7)]))
    view = window.transcript
    shown = view.toPlainText()
    assert f'<img src="{base}/html-img.png">' in shown  # raw HTML is shown as text
    assert f"[image: a picture] {base}/md-image.png" in shown  # an image: a placeholder and its address
    # Reopened (drawn at once), hovered, and left to paint a while: still nothing.
    window.transcript.show_messages(list(window.transcript._views))
    for y in range(0, view.viewport().height(), 20):
        qtbot.mouseMove(view.viewport(), QPoint(view.viewport().width() // 2, y))
    qtbot.wait(800)
    assert hits == []


@pytest.mark.slow
def test_links_open_only_for_the_web_and_only_after_a_yes(qtbot, window, watcher) -> None:
    base, hits = watcher
    opened: list[QUrl] = []
    view = window.transcript
    view.links = LinkGuard(view, opener=opened.append)
    _ask(qtbot, window, Reply([_hostile(base)]))

    def click(text: str) -> QMessageBox:
        found = view.document().find(text)
        assert not found.isNull(), text
        assert found.charFormat().anchorHref().startswith(MODEL_LINK)
        rect = view.cursorRect(QTextCursor(found))
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.left() - 4, rect.center().y()))
        assert view.links.box is not None
        qtbot.waitUntil(view.links.box.isVisible)
        return view.links.box

    box = click("a link")
    assert f"{base}/link" in box.informativeText()  # the whole address, before anything opens
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert opened == []
    box = click("a link")
    next(b for b in box.buttons() if b.text() == "Open").click()
    assert opened == [QUrl(f"{base}/link")]
    box = click("ftp")  # not a web link: refused, with the reason
    assert "only web links" in box.text()
    box.button(QMessageBox.StandardButton.Ok).click()
    # javascript:, data: and file: are never links at all: the parser leaves them as text.
    for text in ("js", "data", "file"):
        found = view.document().find(f"[{text}]")
        assert not found.isNull() and not found.charFormat().isAnchor()
    assert view.follow(MODEL_LINK + "javascript:alert(1)") and "only web links" in view.links.box.text()
    assert len(opened) == 1 and hits == []


def test_lines_stay_about_80_characters_wide_on_a_wide_window(qtbot, window) -> None:
    _ask(qtbot, window, Reply(["word " * 400]))
    view = window.transcript
    window.resize(2560, 900)
    qtbot.waitUntil(lambda: view.viewport().width() > 1800)
    root = view.document().rootFrame().frameFormat()
    column = view.viewport().width() - root.leftMargin() - root.rightMargin()
    chars = column / view.fontMetrics().averageCharWidth()
    assert READING_CHARS <= chars <= READING_CHARS + 15
    assert abs(root.leftMargin() - root.rightMargin()) < 1  # centred
    window.resize(700, 700)
    qtbot.waitUntil(lambda: view.document().rootFrame().frameFormat().leftMargin() == 16)


def test_a_theme_switch_recolours_the_answer_and_its_code(qtbot, window) -> None:
    _ask(qtbot, window, Reply(["Plain words.\n\n```python\nx = 'text'\n```\n"]))
    view = window.transcript
    before = view.document().find("Plain words").charFormat().foreground().color()
    dark = palette_for(Theme.DARK, QApplication.palette())
    view.setPalette(dark)
    after = view.document().find("Plain words").charFormat().foreground().color()
    assert before.lightness() < 100 < 180 < after.lightness()  # dark on light, then light on dark
    assert after == dark.color(QPalette.ColorRole.Text)
    assert view.document().find("'text'").charFormat().foreground().color() != before
