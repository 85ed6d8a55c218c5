"""What fits and what holds still in the window: the chat settings panel fits its column from
the window's minimum width up (no sideways scrolling, nothing cut, every button and spin arrow
shown); opening or closing it keeps the place the person was reading; a long context-meter
warning wraps instead of squeezing the conversation list; the list's scroll bar is drawn in the
theme's colours; radio buttons and check boxes stand out from the dark theme's background
(3:1, as WCAG asks of a control's parts)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QLabel,
    QRadioButton,
    QStyle,
    QStyleOptionButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from ui_fakes import FakeChatService, run

from app.ui.theme import Theme, apply_theme
from app.ui.viewmodels.main import MainViewModel
from app.ui.windows.main_window import MainWindow
from engine.events import Measured


@pytest.fixture(autouse=True)
def _system_theme_after(qapp: QApplication) -> Iterator[None]:
    yield
    apply_theme(qapp, Theme.SYSTEM)


@pytest.fixture
def service() -> FakeChatService:
    return FakeChatService(model_name="SmolLM2-135M-Instruct")


@pytest.fixture
def window(qtbot, loop, service: FakeChatService) -> MainWindow:
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def settle(qtbot) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        QApplication.processEvents()
        qtbot.wait(10)


def cut_off(panel_viewport: QWidget, widget: QWidget) -> bool:
    """Part of `widget` lies right of what the panel's scroll area shows."""
    right = widget.mapTo(panel_viewport, QPoint(widget.width(), 0)).x()
    return right > panel_viewport.width() or widget.mapTo(panel_viewport, QPoint(0, 0)).x() < 0


# -- the chat settings panel fits its column ----------------------------------------------
@pytest.mark.parametrize("width", [0, 1040, 1400], ids=["minimum", "1040", "1400"])
@pytest.mark.parametrize("theme", [Theme.LIGHT, Theme.DARK], ids=["light", "dark"])
def test_the_chat_settings_panel_fits_its_column(qtbot, window: MainWindow, width: int, theme: Theme) -> None:
    apply_theme(QApplication.instance(), theme)
    panel = window.chat_settings.panel
    panel.set_model_context(131_072)  # the widest text the context field shows: "All (131,072 tokens)"
    window.chat_settings.set_open(True)
    window.resize(width, 720)  # 0: as narrow as the window goes
    settle(qtbot)
    assert window.width() == (window.minimumSizeHint().width() if width == 0 else width)
    scroll = panel.scroll_area
    viewport = scroll.viewport()
    assert not scroll.horizontalScrollBar().isVisible()
    assert scroll.widget().minimumSizeHint().width() <= viewport.width()
    shown = [w for w in scroll.widget().findChildren(QWidget) if w.isVisible()]
    assert panel.more_button in shown and panel.save_as_button in shown
    assert [w.objectName() or type(w).__name__ for w in shown if cut_off(viewport, w)] == []
    for w in shown:
        if isinstance(w, (QAbstractSpinBox, QComboBox, QToolButton)):  # arrows and ⋯ need their room
            assert w.width() >= w.minimumSizeHint().width(), type(w).__name__
        if isinstance(w, QLabel) and not w.wordWrap() and w.text():
            assert w.width() >= w.minimumSizeHint().width(), w.text()


def test_a_long_choice_is_cut_in_the_box_but_whole_in_its_popup(qtbot, window: MainWindow) -> None:
    panel = window.chat_settings.panel
    window.chat_settings.set_open(True)
    window.resize(0, 720)
    settle(qtbot)
    longest = max((panel.overflow.itemText(i) for i in range(panel.overflow.count())), key=len)
    assert panel.overflow.fontMetrics().horizontalAdvance(longest) > panel.overflow.width()  # cut in the box
    assert panel.overflow.view().minimumWidth() > panel.overflow.fontMetrics().horizontalAdvance(longest)
    panel.overflow.setCurrentIndex(panel.overflow.findText(longest))
    assert longest in panel.overflow.toolTip()


# -- the transcript keeps its place when the panel opens or closes --------------------------
def long_chat(service: FakeChatService) -> int:
    store = service.store
    cid = store.add_conversation("A long read")
    for i in range(30):
        store.add_message(cid, "user", f"Question {i}: tell me about the harbour.")
        store.add_message(cid, "assistant", f"Answer {i}. " + "The tide comes in over the old stones. " * 12)
    return cid


def top_line(window: MainWindow) -> str:
    t = window.transcript
    cursor = t.cursorForPosition(QPoint(t.viewport().width() // 2, 4))
    return cursor.block().text()[:40]


def test_opening_and_closing_the_panel_keeps_the_place_being_read(
    qtbot, window: MainWindow, service: FakeChatService
) -> None:
    cid = long_chat(service)
    run(qtbot, window.vm.open_conversation(cid))
    window.resize(1040, 720)
    settle(qtbot)
    t = window.transcript
    bar = t.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)  # reading somewhere in the middle
    settle(qtbot)
    reading = top_line(window)
    assert reading.startswith(("Answer", "Question"))
    window.chat_settings.set_open(True)
    settle(qtbot)
    assert top_line(window) == reading
    window.chat_settings.set_open(False)
    settle(qtbot)
    assert top_line(window) == reading
    bar.setValue(bar.maximum())  # at the newest message: it stays there
    window.chat_settings.set_open(True)
    settle(qtbot)
    assert bar.value() == bar.maximum()


# -- a long meter warning wraps -----------------------------------------------------------
def test_a_long_context_warning_wraps_and_leaves_the_list_its_width(qtbot, window: MainWindow) -> None:
    window.resize(1040, 720)
    settle(qtbot)
    list_width = window.conversations.width()
    # Too long to send: the longest thing the meter says.
    window.meter.show_measure(Measured(1, 9_000, 4_096, 120, -1))
    settle(qtbot)
    assert window.meter.isVisible() and len(window.meter.text()) > 80
    assert window.conversations.width() == list_width
    assert window.meter.minimumSizeHint().width() < 300
    assert window.centralWidget().widget(1).minimumSizeHint().width() < 600


# -- the list's scroll bar -----------------------------------------------------------------
def dark_share(image: QImage) -> float:
    dark = sum(
        1 for y in range(image.height()) for x in range(image.width()) if image.pixelColor(x, y).lightness() < 24
    )
    return dark / (image.width() * image.height())


@pytest.mark.parametrize("theme", [Theme.LIGHT, Theme.DARK], ids=["light", "dark"])
def test_the_list_scroll_bar_is_drawn_in_the_themes_colours(
    qtbot, window: MainWindow, service: FakeChatService, theme: Theme
) -> None:
    for i in range(80):
        service.store.add_conversation(f"Conversation {i}")
    run(qtbot, window.vm.refresh_conversations())
    apply_theme(QApplication.instance(), theme)
    window.resize(1040, 720)
    settle(qtbot)
    bar = window.conversations.view.verticalScrollBar()
    assert bar.isVisible()
    image = bar.grab().toImage()
    assert dark_share(image) < 0.05  # it was solid black below the handle


# -- radio buttons and check boxes in the dark theme ----------------------------------------
def luminance(c: QColor) -> float:
    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())


def contrast(a: QColor, b: QColor) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def indicator_contrast(widget: QRadioButton | QCheckBox) -> float:
    """The strongest contrast between the indicator's pixels and the window behind it."""
    option = QStyleOptionButton()
    widget.initStyleOption(option)
    element = (
        QStyle.SubElement.SE_RadioButtonIndicator
        if isinstance(widget, QRadioButton)
        else QStyle.SubElement.SE_CheckBoxIndicator
    )
    rect = widget.style().subElementRect(element, option, widget)
    image = widget.grab(rect).toImage()
    window = widget.palette().color(QPalette.ColorRole.Window)
    return max(contrast(image.pixelColor(x, y), window) for y in range(image.height()) for x in range(image.width()))


def test_radio_buttons_and_check_boxes_stand_out_from_the_dark_background(qtbot) -> None:
    apply_theme(QApplication.instance(), Theme.DARK)
    host = QWidget()
    qtbot.addWidget(host)
    layout = QVBoxLayout(host)
    radio, check = QRadioButton("Dark", host), QCheckBox("Serve on localhost", host)
    layout.addWidget(radio)
    layout.addWidget(check)
    host.show()
    qtbot.waitExposed(host)
    # Non-text parts of a control need 3:1 against what is next to them (WCAG 2.1, 1.4.11).
    assert indicator_contrast(radio) >= 3.0
    assert indicator_contrast(check) >= 3.0
    radio.setChecked(True)
    check.setChecked(True)
    assert indicator_contrast(radio) >= 3.0
    assert indicator_contrast(check) >= 3.0
