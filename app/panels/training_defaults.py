"""The Training tab's defaults: the recommended network for the data the user picks.

When the data set changes (typed, "Use the Data tab's set", "Folder...", the Data tab), the
recipe job (:func:`engine.train.recipe.recipe_job`) reads the clips in the background (the
newest request wins) and :func:`engine.train.recipe.with_recipe` fills the form in: features
from the data, the recommended model, the small-data recipe. It is the same function
``snn-explorer train --data SPEC --out DIR`` uses, so the tab and the command line train the
same run.

- Fields the user edited by hand keep their values ("user-touched"); a loaded config (a file,
  an opened run, a sweep trial) keeps all of its settings, as ``--config`` does on the command
  line. "From data" forgets both and applies everything again.
- The Twin box switches the model to its non-spiking twin (``twin_of``), all else equal, as
  ``--twin`` does; unticking it brings the spiking model back.
- ``pane.chosen`` says what was chosen and why (the recipe's reasons, the proposal's warning
  when a fixed length throws most of many clips away).

:class:`SetupDefaults` is a collaborator of :class:`app.panels.training_setup.SetupPane`
(``pane.defaults``); the pane shows configs through :meth:`filling`.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

from engine.errors import SnnError
from engine.models.registry import TWINS, twin_of
from engine.train.recipe import Recipe, recipe_job, with_recipe

#: the warning colour of the proposal line (a fixed length that throws most clips away)
WARN_STYLE = "color: #a50;"


class SetupDefaults:
    """Fills a SetupPane from the recipe for its data; tracks the fields the user touched.

    Attributes
    ----------
    touched : set of str
        ``RunConfig`` fields (``"epochs"``) and table keys (``"features.duration"``) edited by
        hand since the last "From data"; a proposal keeps them.
    kept : bool
        A loaded config is shown: data changes propose nothing until "From data".
    recipe : Recipe or None
        The recipe last applied.
    """

    def __init__(self, pane):
        self.pane = pane
        self.touched: set[str] = set()
        self.kept = False
        self.recipe: Recipe | None = None
        self._filling = False
        self._typing = False  # the data field is being typed in: propose when editing ends
        self._spec = ""  # the data spec last proposed for (or kept)
        self._spiking: str | None = None  # the model the Twin box switched away from
        p = pane
        fields = {
            "features.kind": p.feature_kind.currentIndexChanged,
            "features.n_mfcc": p.n_mfcc.valueChanged,
            "features.n_mels": p.n_mels.valueChanged,
            "features.sample_rate": p.sample_rate.valueChanged,
            "features.duration": p.duration.valueChanged,
            "features.hop_length": p.hop.valueChanged,
            "model": p.model.currentIndexChanged,
            "steps": p.steps.valueChanged,
            "epochs": p.epochs.valueChanged,
            "patience": p.patience.valueChanged,
            "batch": p.batch.valueChanged,
            "augment.copies": p.copies.valueChanged,
            "augment.time_shift_s": p.time_shift.valueChanged,
            "augment.noise_snr_db": p.noise.toggled,
            "augment.spec_time_mask": p.time_mask.valueChanged,
            "augment.spec_freq_mask": p.freq_mask.valueChanged,
        }
        for key, signal in fields.items():
            signal.connect(lambda *_, k=key: self._on_field_changed(k))
        p.noise_snr.valueChanged.connect(lambda *_: self._on_field_changed("augment.noise_snr_db"))
        p.data.textEdited.connect(self._on_data_edited)
        p.data.textChanged.connect(self._on_data_changed)
        p.data.editingFinished.connect(self._on_data_editing_finished)
        p.propose.clicked.connect(self._on_propose_clicked)
        p.twin.toggled.connect(self._on_twin_toggled)
        font = p.chosen.font()
        font.setPointSizeF(font.pointSizeF() * 0.9)  # a note under the settings, not a setting
        p.chosen.setFont(font)

    # ----- the pane shows a config
    @contextmanager
    def filling(self, keep: bool):
        """Around the pane's filling-in: no field counts as touched. ``keep``: a loaded config,
        whose settings win over later proposals (a proposal still running is dropped)."""
        self._filling = True
        try:
            yield
        finally:
            self._filling = False
        self._typing = False
        if keep:
            self.kept = True
            self.touched.clear()
            self.pane.jobs.drop("propose")
            self.pane.propose.setEnabled(True)
            self._spiking = None
            self._set_twin(False)
            self._spec = self.pane.data.text().strip()
            self._say(
                "Settings from a loaded config: a new data set keeps them; "
                '"From data" applies the recommended ones.'
            )
        self._sync_twin()

    # ----- handlers
    def _on_field_changed(self, key: str) -> None:
        if self._filling:
            return
        self.touched.add(key)
        if key == "model":
            self._spiking = None  # a model picked by hand is no longer "the twin of"
            self._set_twin(False)
            self._sync_twin()

    def _on_data_edited(self, _text: str) -> None:
        self._typing = True

    def _on_data_changed(self, _text: str) -> None:
        if not (self._filling or self._typing):  # set by a button or the Data tab
            self._data_changed()

    def _on_data_editing_finished(self) -> None:
        if self._typing:
            self._typing = False
            self._data_changed()

    def _data_changed(self) -> None:
        spec = self.pane.data.text().strip()
        if not spec or spec == self._spec:
            return
        self._spec = spec
        if self.kept:
            self._say(
                "A loaded config's settings are kept for the new data set; "
                '"From data" applies the recommended ones.'
            )
            return
        self.propose()

    def _on_propose_clicked(self) -> None:
        self.touched.clear()
        self.kept = False
        self._spec = self.pane.data.text().strip()
        self.propose()

    def propose(self) -> None:
        """Read the data set in the background, then fill the recipe in (newest wins)."""
        spec = self.pane.data.text().strip()
        if not spec:
            return
        self.pane.propose.setEnabled(False)
        self._say(f"Reading the clips of {spec}...")
        self.pane.jobs.start(
            "propose",
            lambda stop: recipe_job(spec, stop),
            on_finished=self._on_recipe_finished,
            on_failed=self._on_recipe_failed,
        )

    def _on_recipe_finished(self, recipe: Recipe | None) -> None:
        p = self.pane
        p.propose.setEnabled(True)
        if recipe is None:
            self._say("Image data: the pixels are the features, the sound recipe does not apply.")
            return
        try:
            cfg = p.config()
            twin = p.twin.isChecked() and "model" not in self.touched
            new = with_recipe(cfg, recipe, self.touched, twin=twin)
        except SnnError as exc:
            return self._on_recipe_failed(str(exc))
        if twin:
            self._spiking = recipe.settings["model"]
        self.recipe = recipe
        p.set_config(new, keep=False)
        p.propose.setToolTip(recipe.proposal.describe())
        self._say(self.describe(), warn=bool(recipe.proposal.warning))
        p.featuresProposed.emit(recipe.proposal.describe())

    def _on_recipe_failed(self, text: str) -> None:
        self.pane.propose.setEnabled(True)
        self.pane.propose.setToolTip(text)
        self._say(text, warn=True)

    def _on_twin_toggled(self, on: bool) -> None:
        if self._filling:
            return
        p = self.pane
        model = p.model.currentData()
        target = self._spiking if not on else (twin_of(model) if model in TWINS else None)
        if on and target is None:  # no twin (the box is disabled then)
            self._set_twin(False)
        if target is not None:
            self._spiking = model if on else None
            self._filling = True  # the Twin box is not a hand-picked model
            try:
                i = p.model.findData(target)
                p.model.setCurrentIndex(i)
            finally:
                self._filling = False
        self._sync_twin()
        if self.recipe is not None and not self.kept:
            self._say(self.describe(), warn=bool(self.recipe.proposal.warning))

    # ----- the line
    def describe(self) -> str:
        """What the last recipe chose and why, the twin, and the fields kept as the user set."""
        lines = ["Chosen from the data:", *self.recipe.reasons]
        model = self.pane.model.currentData()
        if self._spiking is not None and self.pane.twin.isChecked():
            lines.append(f"training {self._spiking}'s non-spiking twin {model}, all else equal")
        if self.touched:
            lines.append("kept as you set them: " + ", ".join(sorted(self.touched)))
        return "\n- ".join(lines)

    def _say(self, text: str, warn: bool = False) -> None:
        self.pane.chosen.setText(text)
        self.pane.chosen.setStyleSheet(WARN_STYLE if warn else "")
        self.pane.chosen.setVisible(bool(text))

    # ----- the Twin box
    def _set_twin(self, on: bool) -> None:
        box = self.pane.twin
        box.blockSignals(True)
        box.setChecked(on)
        box.blockSignals(False)

    def _sync_twin(self) -> None:
        box = self.pane.twin
        box.setEnabled(box.isChecked() or self.pane.model.currentData() in TWINS)

    # ----- settings (the panel's save_state / restore_state)
    def state(self) -> str:
        """The touched fields and whether a loaded config is kept, as JSON."""
        return json.dumps({"kept": self.kept, "touched": sorted(self.touched)})

    def restore(self, text: str) -> None:
        """Undo :meth:`state` (anything unreadable leaves the defaults)."""
        try:
            d = json.loads(text)
            self.kept = bool(d.get("kept", False))
            self.touched = {str(k) for k in d.get("touched", [])}
        except (ValueError, TypeError, AttributeError):
            pass
        self._spec = self.pane.data.text().strip()
