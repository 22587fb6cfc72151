"""The AudioSet builder's selection form: input files, target classes, excluded labels, filters."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.audioset.selection import DEFAULT_CLASSES, Ontology, SelectionConfig


def _id_list(height: int) -> QListWidget:
    w = QListWidget()
    w.setMaximumHeight(height)
    return w


class SelectionForm(QWidget):
    """Classes, exclusions and filter options; ``config()`` turns them into a SelectionConfig.

    Signals
    -------
    previewRequested()
        The user pressed Preview.
    loadRequested()
        The user pressed "Load files...".
    """

    previewRequested = Signal()
    loadRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.files = QLabel("No files loaded.")
        self.files.setWordWrap(True)
        self.load = QPushButton("Load files...")
        self.load.setToolTip("Pick ontology.json, then one or more segment CSVs")
        top = QGroupBox("AudioSet metadata")
        tl = QVBoxLayout(top)
        tl.addWidget(self.files)
        tl.addWidget(self.load)

        self.classes = _id_list(110)
        self.remove_class = QPushButton("Remove")
        self.reset_classes = QPushButton("Defaults")
        self.reset_classes.setToolTip(", ".join(DEFAULT_CLASSES) + " (the report's classes)")
        cls_box = QGroupBox("Target classes (pick in the tree)")
        cl = QVBoxLayout(cls_box)
        cl.addWidget(self.classes)
        row = QHBoxLayout()
        row.addWidget(self.remove_class)
        row.addWidget(self.reset_classes)
        row.addStretch(1)
        cl.addLayout(row)

        self.excluded = _id_list(70)
        self.remove_excluded = QPushButton("Remove")
        ex_box = QGroupBox("Excluded labels (e.g. Speech as noise)")
        el = QVBoxLayout(ex_box)
        el.addWidget(self.excluded)
        el.addWidget(self.remove_excluded)

        self.skip_abstract = QCheckBox("ignore abstract nodes' labels")
        self.skip_blacklist = QCheckBox("ignore blacklisted nodes' labels")
        self.min_length = QDoubleSpinBox()
        self.min_length.setRange(0.0, 60.0)
        self.min_length.setSingleStep(0.5)
        self.min_length.setSuffix(" s")
        self.min_length.setSpecialValueText("off")
        self.per_class = QSpinBox()
        self.per_class.setRange(0, 10_000_000)
        self.per_class.setSingleStep(100)
        self.per_class.setSpecialValueText("no cap")
        self.balance = QCheckBox("balance to the smallest class")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        opts = QGroupBox("Filters")
        form = QFormLayout(opts)
        form.addRow(self.skip_abstract)
        form.addRow(self.skip_blacklist)
        form.addRow("Min length", self.min_length)
        form.addRow("Per class", self.per_class)
        form.addRow(self.balance)
        form.addRow("Seed", self.seed)
        self.preview = QPushButton("Preview counts")
        self.preview.setEnabled(False)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (top, cls_box, ex_box, opts):
            lay.addWidget(w)
        lay.addWidget(self.preview)
        lay.addStretch(1)

        self.load.clicked.connect(self.loadRequested)
        self.preview.clicked.connect(self.previewRequested)
        self.remove_class.clicked.connect(lambda: self._remove(self.classes))
        self.remove_excluded.clicked.connect(lambda: self._remove(self.excluded))
        self.reset_classes.clicked.connect(self._on_reset_classes_clicked)
        self._show_names(self.classes, DEFAULT_CLASSES)

    # ----- lists of ontology nodes (items hold the ID; the text is the name)
    @staticmethod
    def _show_names(widget: QListWidget, names) -> None:
        widget.clear()
        for n in names:
            widget.addItem(n)

    @staticmethod
    def _remove(widget: QListWidget) -> None:
        for item in widget.selectedItems() or (
            [widget.currentItem()] if widget.currentItem() else []
        ):
            widget.takeItem(widget.row(item))

    def _on_reset_classes_clicked(self) -> None:
        self._show_names(self.classes, DEFAULT_CLASSES)

    def add_class(self, onto: Ontology, nid: str) -> None:
        self._add(self.classes, onto, nid)

    def add_excluded(self, onto: Ontology, nid: str) -> None:
        self._add(self.excluded, onto, nid)

    @staticmethod
    def _add(widget: QListWidget, onto: Ontology, nid: str) -> None:
        name = onto.name(nid)
        if any(widget.item(i).text() == name for i in range(widget.count())):
            return
        item = QListWidgetItem(name)
        item.setToolTip(f"{onto.path(nid)} ({nid})")
        widget.addItem(item)

    @staticmethod
    def names(widget: QListWidget) -> list[str]:
        return [widget.item(i).text() for i in range(widget.count())]

    # ----- the config
    def config(self, fmt: str = "wav") -> SelectionConfig:
        """The form as a SelectionConfig (ConfigError on an impossible choice)."""
        skip = tuple(
            r
            for r, box in (("abstract", self.skip_abstract), ("blacklist", self.skip_blacklist))
            if box.isChecked()
        )
        return SelectionConfig(
            classes=tuple(self.names(self.classes)),
            exclude=tuple(self.names(self.excluded)),
            skip_restricted=skip,
            min_length=self.min_length.value(),
            per_class=self.per_class.value() or None,
            balance=self.balance.isChecked(),
            seed=self.seed.value(),
            format=fmt,
        )

    def set_config(self, cfg: SelectionConfig) -> None:
        self._show_names(self.classes, cfg.classes)
        self._show_names(self.excluded, cfg.exclude)
        self.skip_abstract.setChecked("abstract" in cfg.skip_restricted)
        self.skip_blacklist.setChecked("blacklist" in cfg.skip_restricted)
        self.min_length.setValue(cfg.min_length)
        self.per_class.setValue(cfg.per_class or 0)
        self.balance.setChecked(cfg.balance)
        self.seed.setValue(cfg.seed)
