"""The Neuron tab with real widgets: live updates, reset modes, drawing, population, surrogates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QSettings, Qt

from app.context import AppContext
from app.panels.neuron import NeuronPanel
from engine.neuro.surrogate import curves


@pytest.fixture
def panel(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    p = NeuronPanel(AppContext(settings))
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    qtbot.waitExposed(p)
    return p


def _membrane(p) -> np.ndarray:
    return np.asarray(p.single.mem_curve.getData()[1])


def _spikes(p) -> np.ndarray:
    return np.asarray(p.single.spike_curve.getData()[1])


def _lif_by_hand(x, beta, thr, w, reset):
    """Eq. 2-3 written out independently of engine.neuro.simulate (snnTorch's ordering)."""
    u, spikes = 0.0, []
    for xt in x:
        r = 1.0 if u >= thr else 0.0
        u = beta * u + w * xt - r * thr if reset == "subtract" else beta * (1 - r) * u + w * xt
        spikes.append(1.0 if u >= thr else 0.0)
    return np.array(spikes)


def test_default_shows_the_reports_fig15_simulation(panel):
    x = np.asarray(panel.single.input_curve.getData()[1])
    assert x.shape == (200,) and x[:10].sum() == 0 and set(np.unique(x)) <= {0.0, 1.0}
    expected = _lif_by_hand(x, 0.819, 1.0, 0.4, "subtract")
    np.testing.assert_array_equal(_spikes(panel), expected)
    thr_x, thr_y = panel.single.thr_curve.getData()
    assert np.all(thr_y == 1.0)
    assert f"{int(expected.sum())} spikes" in panel.single.summary.text()


def test_moving_the_beta_slider_changes_the_membrane_curve(panel, qtbot):
    before = _membrane(panel).copy()
    slider = panel.controls.beta.slider
    slider.setFocus()
    for _ in range(50):  # a user pressing the right arrow: beta goes up 0.001 per press
        qtbot.keyClick(slider, Qt.Key.Key_Right)
    assert panel.controls.beta.value() == pytest.approx(0.869, abs=1e-9)
    after = _membrane(panel)
    assert not np.allclose(before, after)
    # a slower leak keeps more charge: the membrane is higher wherever no spike reset it
    assert after.sum() > before.sum()
    assert panel.result.beta == pytest.approx(0.869)
    assert len(panel.update_ms) >= 50  # one redraw per slider step


def test_switching_reset_changes_spike_count_as_the_equation_says(panel, qtbot):
    c = panel.controls
    c.input_kind.setCurrentIndex(c.input_kind.findData("step"))
    c.amplitude.setValue(0.7)
    c.weight.setValue(1.0)
    c.beta.setValue(0.9)
    x = np.asarray(panel.single.input_curve.getData()[1])
    sub = _spikes(panel).sum()
    c.reset.setCurrentIndex(c.reset.findData("zero"))
    zero = _spikes(panel).sum()
    assert sub == _lif_by_hand(x, 0.9, 1.0, 1.0, "subtract").sum()
    assert zero == _lif_by_hand(x, 0.9, 1.0, 1.0, "zero").sum()
    # subtracting keeps the surplus above threshold, so it fires more often than a reset to zero
    assert sub > zero > 0
    c.reset.setCurrentIndex(c.reset.findData("none"))
    assert np.all(np.diff(_membrane(panel)[10:]) >= 0)  # no reset: the membrane only charges


def test_tau_and_dt_give_beta(panel):
    c = panel.controls
    c.use_tau.setChecked(True)
    c.tau.setValue(8.0)
    c.dt.setValue(2.0)
    assert panel.result.beta == pytest.approx(math.exp(-2.0 / 8.0))
    assert "0.7788" in c.beta_note.text()


def test_other_models_and_overlay(panel):
    c = panel.controls
    c.model.setCurrentIndex(c.model.findData("synaptic"))
    assert panel.result.model == "synaptic"
    assert len(panel.single.syn_curve.getData()[1]) == 200
    assert c.alpha.isVisibleTo(panel)
    c.compare.setChecked(True)
    names = [curve.name() for curve in panel.single.compare_curves]
    assert names == ["lif", "lapicque"]
    assert all(len(curve.getData()[1]) == 200 for curve in panel.single.compare_curves)
    c.model.setCurrentIndex(c.model.findData("lapicque"))
    c.beta.setValue(0.9)
    assert f"1 - dt/RC = {1 - math.log(1 / 0.9):.4f}" in panel.single.summary.text()


def test_drawing_the_input_with_the_mouse(panel, qtbot):
    c = panel.controls
    c.input_kind.setCurrentIndex(c.input_kind.findData("drawn"))
    c.clear_drawing.click()
    assert np.all(np.asarray(panel.single.input_curve.getData()[1]) == 0)
    plot = panel.single.input_plot
    vb = panel.single.draw_box

    def to_widget(t, v):
        scene = vb.mapViewToScene(pg_point(t, v))
        return plot.mapFromScene(scene)

    start, end = to_widget(40, 1.5), to_widget(120, 1.5)
    viewport = plot.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    for k in range(1, 21):
        pos = QPoint(start.x() + (end.x() - start.x()) * k // 20, start.y())
        qtbot.mouseMove(viewport, pos)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)
    drawn = np.asarray(panel.single.input_curve.getData()[1])
    painted = np.flatnonzero(drawn)
    assert painted.size > 50, "the drag painted the current"
    assert 35 <= painted[0] <= 50 and 110 <= painted[-1] <= 125
    assert np.all(np.abs(drawn[painted] - 1.5) < 0.1)
    # the neuron saw that current: it fires only after the drawn current starts
    spikes = np.flatnonzero(_spikes(panel))
    assert spikes.size > 0 and spikes[0] >= painted[0]


def pg_point(x, y):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_population_raster_and_histogram(panel):
    panel.population.n.setValue(60)
    panel.views.setCurrentWidget(panel.population)
    res = panel.population_result
    assert res.spikes.shape == (200, 60)
    image = panel.population.raster.image
    np.testing.assert_array_equal(image, res.spikes.T)
    edges, counts = panel.population.hist_curve.getData()
    assert counts.sum() == 60
    # neurons with more input spikes fire more (inputs grow from neuron 0 to N-1)
    rates = res.spikes.mean(axis=0)
    assert rates[-10:].mean() > rates[:10].mean()


def test_surrogate_view_plots_function_and_derivative(panel):
    s = panel.surrogate
    s.choice.setCurrentIndex(s.choice.findData("sigmoid"))
    s.slope.setValue(6.0)
    x, d = s.d_curves["sigmoid"].getData()
    np.testing.assert_allclose(d, curves("sigmoid", x, 6.0)[1])
    x, f = s.f_curves["sigmoid"].getData()
    np.testing.assert_allclose(f, curves("sigmoid", x, 6.0)[0])
    _, step = s.step_curve.getData()
    assert set(np.unique(step)) == {0.0, 1.0}


def test_state_round_trip(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    a = NeuronPanel(AppContext(settings))
    qtbot.addWidget(a)
    a.controls.beta.setValue(0.75)
    a.controls.reset.setCurrentIndex(a.controls.reset.findData("zero"))
    a.controls.input_kind.setCurrentIndex(a.controls.input_kind.findData("pulses"))
    a.population.n.setValue(33)
    a.surrogate.choice.setCurrentIndex(a.surrogate.choice.findData("fast_sigmoid"))
    a.save_state(settings)
    b = NeuronPanel(AppContext(settings))
    qtbot.addWidget(b)
    b.restore_state(settings)
    assert b.controls.beta.value() == pytest.approx(0.75)
    assert b.controls.reset.currentData() == "zero"
    assert b.controls.input_kind.currentData() == "pulses"
    assert b.population.n.value() == 33
    assert b.surrogate.choice.currentData() == "fast_sigmoid"
    np.testing.assert_array_equal(b.result.membrane, a.result.membrane)
