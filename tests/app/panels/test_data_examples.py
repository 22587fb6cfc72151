"""First launch in the Data tab: the Examples menu downloads a published set from a test server
on 127.0.0.1 (progress, Cancel), then opens it; the empty tab says how to get going."""

from __future__ import annotations

from fetchkit import FSDD_ZIP, fsdd_zip
from PySide6.QtCore import QSettings

from app.context import AppContext
from app.panels.data import DataPanel


def _panel(qtbot, tmp_path, monkeypatch, base):
    monkeypatch.setenv("SNN_EXPLORER_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SNN_EXPLORER_FETCH_BASE", base)
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    p = DataPanel(AppContext(settings))
    qtbot.addWidget(p)
    p.show()
    return p


def _action(panel, name):
    acts = [a for a in panel.bar.examples.menu().actions() if a.data() == name]
    assert len(acts) == 1, name
    return acts[0]


def test_examples_menu_fetches_and_opens(qtbot, tmp_path, monkeypatch, media_server):
    srv = media_server(fsdd_zip(tmp_path / "srv").parent)
    panel = _panel(qtbot, tmp_path, monkeypatch, srv.url())
    try:
        assert panel.bar.examples.isEnabled()
        names = [a.data() for a in panel.bar.examples.menu().actions() if a.data()]
        assert names == ["fsdd", "esc50", "speechcommands", "shd", "ssc", "kitchen20", "mnist"]
        assert "download ~24 MB" in _action(panel, "fsdd").text()
        assert "Examples" in panel.stack.widget(0).findChildren(type(panel.message))[0].text()
        _action(panel, "fsdd").trigger()
        qtbot.waitUntil(lambda: panel.overview is not None, timeout=60000)
        assert panel.overview.spec == f"fsdd:{tmp_path / 'data' / 'fsdd' / 'recordings'}"
        assert panel.overview.summary.n_items == 24
        assert "CC BY-SA 4.0" in panel.fetcher.strip.label.text()
        assert "verified by size only" in panel.fetcher.strip.label.text()
        assert _action(panel, "fsdd").text().endswith("[downloaded]")
        assert panel.context.dataset_spec == panel.overview.spec
        # a second pick opens the downloaded copy without asking the server again
        before = len(srv.paths_requested())
        panel.overview = None
        _action(panel, "fsdd").trigger()
        qtbot.waitUntil(lambda: panel.overview is not None, timeout=60000)
        assert len(srv.paths_requested()) == before
    finally:
        panel.shutdown()


def test_cancel_keeps_the_partial_download(qtbot, tmp_path, monkeypatch, media_server):
    srv = media_server(fsdd_zip(tmp_path / "srv").parent, {FSDD_ZIP: "slow"}, slow_bps=20_000)
    panel = _panel(qtbot, tmp_path, monkeypatch, srv.url())
    try:
        _action(panel, "fsdd").trigger()
        strip = panel.fetcher.strip
        qtbot.waitUntil(lambda: "MB" in strip.bar.format(), timeout=20000)
        assert strip.isVisible() and strip.cancel_button.isVisible()
        strip.cancel_button.click()
        qtbot.waitUntil(lambda: not panel.fetcher.is_running(), timeout=20000)
        assert "download cancelled (it resumes next time)" in panel.message.text()
        assert (tmp_path / "data" / ".downloads" / (FSDD_ZIP + ".part")).stat().st_size > 0
        assert panel.overview is None
    finally:
        panel.shutdown()


def test_first_launch_without_shared_data(qtbot, tmp_path, monkeypatch, media_server):
    from PySide6.QtWidgets import QPushButton

    monkeypatch.setenv("SNN_SHARED_DATA", str(tmp_path / "no-such-folder"))
    srv = media_server(fsdd_zip(tmp_path / "srv").parent)
    panel = _panel(qtbot, tmp_path, monkeypatch, srv.url())
    try:
        assert panel.examples_available == []  # the named shared folder is missing: none
        acts = [a for a in panel.bar.examples.menu().actions() if not a.isSeparator()]
        assert len(acts) == 7 and all(a.data() for a in acts)  # only the published sets
        assert panel.stack.currentIndex() == 0
        (button,) = [
            b for b in panel.stack.widget(0).findChildren(QPushButton) if "FSDD" in b.text()
        ]
        button.click()
        qtbot.waitUntil(lambda: panel.overview is not None, timeout=60000)
        assert panel.stack.currentIndex() == 1 and panel.overview.summary.n_items == 24
    finally:
        panel.shutdown()


def test_a_spike_set_opens_with_rasters(qtbot, tmp_path, monkeypatch):
    from fetchkit import write_shd

    write_shd(tmp_path / "shd_train.h5", n=12)
    write_shd(tmp_path / "shd_test.h5", n=4, seed=1)
    panel = _panel(qtbot, tmp_path, monkeypatch, "http://127.0.0.1:9/")
    try:
        panel.open_spec(f"shd:{tmp_path}?bins=30")
        qtbot.waitUntil(lambda: panel.overview is not None, timeout=30000)
        assert panel.overview.summary.kind == "spikes" and panel.overview.summary.n_items == 16
        ex = panel.overview.examples[0]
        assert ex.matrix.shape == (700, 30) and ex.matrix.max() == 1.0
        assert "Spike rasters" in panel.grid.findChildren(type(panel.message))[0].text()
    finally:
        panel.shutdown()
