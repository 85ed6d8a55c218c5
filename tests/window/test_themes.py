"""Themes, the Settings window and what the window remembers: light, dark and the system's
palette recolour the real window (sidebar, status line, transcript); the choice, the text
size, the window's size and place and its splitters survive a restart (window.ini); no
widget writes a colour of its own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSettings, Qt
from PySide6.QtGui import QColor, QKeySequence, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QListWidget, QRadioButton, QSplitter
from ui_fakes import FakeChatService, Reply

from app.ui import theme as theme_module
from app.ui.theme import Theme, apply_theme, colours, current_theme, is_dark, palette_for, set_style
from app.ui.viewmodels.main import MainViewModel
from app.ui.windows.main_window import MainWindow
from app.ui.windows.settings_dialog import SettingsDialog
from app.ui.windows.text_zoom import ZOOM_KEY
from app.ui.windows.window_prefs import GEOMETRY_KEY, THEME_KEY

UI = Path(__file__).resolve().parents[2] / "app" / "ui"
# Files that may still name colours: the palettes themselves, and (for now) the transcript's.
ALLOWED = {"theme.py"}


@pytest.fixture(autouse=True)
def _system_theme_after(qapp: QApplication) -> Iterator[None]:
    """The application is shared by the whole run: every test leaves it on the system's palette."""
    yield
    apply_theme(qapp, Theme.SYSTEM)


@pytest.fixture
def ini(tmp_path: Path) -> Path:
    return tmp_path / "window.ini"


def prefs(ini: Path) -> QSettings:
    return QSettings(str(ini), QSettings.Format.IniFormat)


def make_window(qtbot, ini: Path | None = None, service: FakeChatService | None = None) -> MainWindow:
    service = service or FakeChatService(model_name="SmolLM2-135M-Instruct")
    w = MainWindow(MainViewModel(service, service.store), prefs=prefs(ini) if ini else None)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def press(qtbot, w: MainWindow, keys: str) -> None:
    w.activateWindow()
    w.composer.setFocus()
    qtbot.waitUntil(w.composer.hasFocus)
    combo = QKeySequence(keys)[0]
    qtbot.keyClick(w.composer, combo.key(), combo.keyboardModifiers())


def open_settings(qtbot, w: MainWindow) -> SettingsDialog:
    press(qtbot, w, "Ctrl+,")
    qtbot.waitUntil(lambda: w.dialogs.settings_dialog is not None and w.dialogs.settings_dialog.isVisible())
    dialog = w.dialogs.settings_dialog
    assert dialog is not None
    return dialog


def choose(qtbot, dialog: SettingsDialog, theme: Theme) -> None:
    button = dialog.findChild(QRadioButton, f"theme_{theme.value}")
    assert button is not None
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))  # on its circle


def one_chat(qtbot, w: MainWindow, service: FakeChatService) -> None:
    service.enqueue(Reply(["Rye needs a long, slow rise."]))
    qtbot.keyClicks(w.composer, "How do I bake rye bread?")
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.conversations.model.rowCount() == 1 and not w.vm.busy)


def lightness(c: QColor) -> int:
    return c.lightness()


class PaletteChanges(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.PaletteChange:
            self.seen += 1
        return False


def test_dark_then_light_recolour_the_sidebar_status_line_and_transcript(qtbot, loop) -> None:
    service = FakeChatService(model_name="SmolLM2-135M-Instruct")
    w = make_window(qtbot, service=service)
    one_chat(qtbot, w, service)
    changes = PaletteChanges()
    w.transcript.installEventFilter(changes)
    muted_before = w.status.notice_label.styleSheet()

    choose(qtbot, open_settings(qtbot, w), Theme.DARK)

    assert current_theme(QApplication.instance()) is Theme.DARK
    assert changes.seen >= 1  # the transcript is told, and re-renders in the new colours
    for widget in (w, w.transcript, w.conversations.view, w.composer):
        assert lightness(widget.palette().color(QPalette.ColorRole.Window)) < 128, widget
    assert lightness(w.transcript.palette().color(QPalette.ColorRole.Base)) < 128
    assert lightness(w.conversations.view.palette().color(QPalette.ColorRole.Text)) > 180
    assert w.status.notice_label.styleSheet() != muted_before  # the muted grey of the dark palette
    # What a person sees: the sidebar's title is light on dark.
    rect = w.conversations.view.visualRect(w.conversations.model.index(0))
    shot = w.conversations.view.viewport().grab(rect).toImage()
    pixels = [shot.pixelColor(x, y).lightness() for y in range(shot.height()) for x in range(shot.width())]
    assert sorted(pixels)[len(pixels) // 2] < 100 and max(pixels) > 180

    choose(qtbot, w.dialogs.settings_dialog, Theme.LIGHT)
    assert lightness(w.transcript.palette().color(QPalette.ColorRole.Base)) > 200
    assert lightness(w.conversations.view.palette().color(QPalette.ColorRole.Text)) < 80
    shot = w.conversations.view.viewport().grab(rect).toImage()
    pixels = [shot.pixelColor(x, y).lightness() for y in range(shot.height()) for x in range(shot.width())]
    assert sorted(pixels)[len(pixels) // 2] > 180 and min(pixels) < 100


def test_the_theme_is_kept_in_window_ini_and_a_new_window_starts_with_it(qtbot, loop, ini: Path) -> None:
    w = make_window(qtbot, ini)
    dialog = open_settings(qtbot, w)
    assert dialog.theme() is Theme.SYSTEM  # a first start follows the system
    choose(qtbot, dialog, Theme.DARK)
    assert prefs(ini).value(THEME_KEY) == "dark"
    w.close()
    apply_theme(QApplication.instance(), Theme.SYSTEM)  # a new process starts on the system's palette

    again = make_window(qtbot, ini)
    assert current_theme(QApplication.instance()) is Theme.DARK
    assert is_dark(again.conversations.palette())
    assert open_settings(qtbot, again).theme() is Theme.DARK


def test_a_damaged_theme_setting_means_the_systems(qtbot, loop, ini: Path) -> None:
    ini.write_text("[view]\ntheme=purple\n", encoding="utf-8")
    w = make_window(qtbot, ini)
    assert current_theme(QApplication.instance()) is Theme.SYSTEM
    assert open_settings(qtbot, w).theme() is Theme.SYSTEM


def test_ctrl_comma_opens_one_settings_window_that_stays_non_modal(qtbot, loop) -> None:
    w = make_window(qtbot)
    first = open_settings(qtbot, w)
    assert not first.isModal() and first.windowTitle() == "Settings"
    first.close()
    assert open_settings(qtbot, w) is first
    menus = {m.title().replace("&", ""): m for m in (a.menu() for a in w.menuBar().actions()) if m}
    assert "Settings…" in [a.text() for a in menus["View"].actions()]


def test_the_settings_text_size_is_the_zoom(qtbot, loop, ini: Path) -> None:
    w = make_window(qtbot, ini)
    normal = w.transcript.font().pointSizeF()
    dialog = open_settings(qtbot, w)
    assert dialog.text_size.value() == round(normal)
    dialog.text_size.setValue(round(normal) + 3)
    assert w.zoom.zoom == 3 and w.transcript.font().pointSizeF() == normal + 3 == w.composer.font().pointSizeF()
    assert int(str(prefs(ini).value(ZOOM_KEY))) == 3
    press(qtbot, w, "Ctrl+-")  # the keys and the window are one setting
    assert dialog.text_size.value() == round(normal) + 2 and dialog.zoom() == 2
    qtbot.mouseClick(dialog.normal_button, Qt.MouseButton.LeftButton)
    assert w.zoom.zoom == 0 and w.transcript.font().pointSizeF() == normal
    assert int(str(prefs(ini).value(ZOOM_KEY))) == 0


def test_size_place_and_splitters_survive_a_restart(qtbot, loop, ini: Path) -> None:
    w = make_window(qtbot, ini)
    w.setGeometry(QRect(10, 50, 780, 520))
    outer = w.centralWidget()
    assert isinstance(outer, QSplitter)
    w.chat_settings.set_open(True)
    outer.setSizes([200, 580])
    w.chat_settings.splitter.setSizes([200, 380])
    qtbot.wait(50)  # laid out as a person would leave it
    list_width, panel_width = outer.sizes()[0], w.chat_settings.splitter.sizes()[1]
    assert list_width < 220 and panel_width > 340  # not what a first start shows (240 | 300)
    w.close()
    assert prefs(ini).value(GEOMETRY_KEY) is not None

    again = make_window(qtbot, ini)
    assert again.geometry() == QRect(10, 50, 780, 520)
    again_outer = again.centralWidget()
    assert isinstance(again_outer, QSplitter)
    qtbot.wait(50)
    assert again_outer.sizes()[0] == list_width
    assert again.chat_settings.is_open and again.chat_settings.splitter.sizes()[1] == panel_width


def test_a_window_left_on_a_screen_that_is_gone_comes_back_onto_one_that_is_there(qtbot, loop, ini: Path) -> None:
    w = make_window(qtbot, ini)
    w.setGeometry(QRect(60, 50, 700, 500))
    w.move(6000, 4000)  # e.g. on a second monitor, unplugged since
    w.close()
    again = make_window(qtbot, ini)
    screen = QApplication.primaryScreen().availableGeometry()
    assert screen.contains(again.frameGeometry().topLeft()) and again.size().width() == 700


def test_damaged_geometry_bytes_leave_the_default_size(qtbot, loop, ini: Path) -> None:
    ini.write_text(
        "[window]\ngeometry=@ByteArray(not a geometry)\nlist_splitter=@ByteArray(nor this)\n", encoding="utf-8"
    )
    w = make_window(qtbot, ini)
    assert w.isVisible() and w.width() > 300


def test_the_palettes_are_whole() -> None:
    system = QPalette(QApplication.palette())
    dark, light = palette_for(Theme.DARK, system), palette_for(Theme.LIGHT, system)
    assert is_dark(dark) and not is_dark(light)
    assert palette_for(Theme.SYSTEM, system) == system
    for p in (dark, light):
        text, base = p.color(QPalette.ColorRole.Text), p.color(QPalette.ColorRole.Base)
        assert abs(text.lightness() - base.lightness()) > 150
        disabled = p.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        assert disabled != text and abs(disabled.lightness() - base.lightness()) > 40  # dimmer, still legible
        for role in (QPalette.ColorRole.PlaceholderText, QPalette.ColorRole.Link, QPalette.ColorRole.Highlight):
            assert abs(p.color(role).lightness() - base.lightness()) > 50, role
        c = colours(p)
        assert abs(c.muted.lightness() - base.lightness()) > 60  # hints stay readable


def test_the_desktop_turning_dark_is_followed_when_its_palette_is_not(qtbot, loop, monkeypatch) -> None:
    """A platform that reports a dark desktop but offers no dark palette gets Hearth's dark one."""
    app = QApplication.instance()
    apply_theme(app, Theme.SYSTEM)
    label = QLabel("hint")
    qtbot.addWidget(label)
    set_style(label, "color: $muted;")
    light_sheet = label.styleSheet()
    monkeypatch.setattr(theme_module._Keeper, "_desktop_is_dark", lambda _self: True)
    app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    qtbot.waitUntil(lambda: is_dark(QApplication.palette()))
    assert label.styleSheet() != light_sheet and current_theme(app) is Theme.SYSTEM
    apply_theme(app, Theme.LIGHT)  # a chosen theme is not changed by the desktop
    app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    qtbot.wait(20)
    assert not is_dark(QApplication.palette())


def test_no_widget_names_a_colour_of_its_own() -> None:
    """Colours come from the palette (app.ui.theme), so a theme switch reaches every widget."""
    colour = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b|\brgba?\(|QColor\(\"|GlobalColor\.(?!transparent)")
    found = [
        f"{path.relative_to(UI)}:{n}: {line.strip()}"
        for path in sorted(UI.rglob("*.py"))
        if path.name not in ALLOWED
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if colour.search(line)
    ]
    assert found == []


def test_a_widget_with_a_colourless_style_sheet_is_recoloured_too(qtbot) -> None:
    """Qt keeps the palette a widget had when its style sheet was set (a padding is enough)."""
    box = QListWidget()
    box.setStyleSheet("QListWidget::item { padding: 6px 4px; }")
    title = QLabel("API key")
    title.setStyleSheet("font-weight: 600;")
    for w in (box, title):
        qtbot.addWidget(w)
        w.show()
    apply_theme(QApplication.instance(), Theme.DARK)
    assert lightness(box.palette().color(QPalette.ColorRole.Base)) < 60
    assert lightness(title.palette().color(QPalette.ColorRole.WindowText)) > 180
