"""The AudioSet builder's ontology tree: searchable, with clip counts per node.

A QTreeView over a QStandardItemModel (name, clips, ID) behind a QSortFilterProxyModel with
recursive filtering, so a search keeps the path down to every match. The ontology is a DAG: a
node with two parents appears under both (as in the official ontology browser).
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor, QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from engine.audioset.selection import Ontology

ID_ROLE = Qt.ItemDataRole.UserRole + 1
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 2  # "name id": what the search box matches
COLUMNS = ("Class", "Clips", "ID")


def _node_filter(parent) -> QSortFilterProxyModel:
    """Matches the search text in a node's name or ID; parents of matches stay visible."""
    proxy = QSortFilterProxyModel(parent)
    proxy.setRecursiveFilteringEnabled(True)
    proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    proxy.setFilterKeyColumn(0)
    proxy.setFilterRole(SEARCH_ROLE)
    proxy.setSortRole(Qt.ItemDataRole.UserRole)
    return proxy


class OntologyTree(QWidget):
    """Search box, tree and the buttons that pick a node as a class or an excluded label.

    Signals
    -------
    classRequested(str)
        The user asked for a node (its ID) as a target class.
    excludeRequested(str)
        The user asked to drop clips carrying this node's labels.
    """

    classRequested = Signal(str)
    excludeRequested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.ontology: Ontology | None = None
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search classes by name or ID (e.g. dog, /m/0jbk)")
        self.search.setClearButtonEnabled(True)
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.proxy = _node_filter(self)
        self.proxy.setSourceModel(self.model)
        self.view = QTreeView()
        self.view.setModel(self.proxy)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSortingEnabled(True)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        header = self.view.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        self.details = QLabel("Load ontology.json and segment CSVs to see the class tree.")
        self.details.setWordWrap(True)
        self.details.setMinimumHeight(54)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.add_class = QPushButton("Use as class")
        self.add_class.setToolTip("Make the selected node a target class (or double-click it)")
        self.add_exclude = QPushButton("Exclude label")
        self.add_exclude.setToolTip("Drop clips carrying this label or a label below it")
        for b in (self.add_class, self.add_exclude):
            b.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_class)
        buttons.addWidget(self.add_exclude)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.search)
        lay.addWidget(self.view, 1)
        lay.addLayout(buttons)
        lay.addWidget(self.details)

        self.search.textChanged.connect(self._on_search_text_changed)
        self.view.selectionModel().currentChanged.connect(self._on_view_current_changed)
        self.view.doubleClicked.connect(self._on_view_double_clicked)
        self.add_class.clicked.connect(lambda: self._emit(self.classRequested))
        self.add_exclude.clicked.connect(lambda: self._emit(self.excludeRequested))

    # ----- content
    def set_ontology(self, onto: Ontology, counts: Mapping[str, int]) -> None:
        """Rebuild the tree for ``onto`` with clip ``counts`` per node ID."""
        self.ontology = onto
        self.model.removeRows(0, self.model.rowCount())
        root = self.model.invisibleRootItem()
        for nid in sorted(onto.roots, key=lambda n: -counts.get(n, 0)):
            self._add(root, nid, onto, counts, frozenset())
        self.view.sortByColumn(1, Qt.SortOrder.DescendingOrder)
        for row in range(self.proxy.rowCount()):  # the top level open, the rest closed
            self.view.expand(self.proxy.index(row, 0))
        self.details.setText(
            f"{len(onto)} classes, {sum(1 for n in onto.nodes if counts.get(n))} with clips in "
            "the loaded CSVs. Grey: abstract or blacklisted in the ontology."
        )

    def _add(self, parent: QStandardItem, nid: str, onto, counts, above: frozenset) -> None:
        node = onto.nodes[nid]
        name = QStandardItem(node.name)
        name.setData(nid, ID_ROLE)
        name.setData(f"{node.name} {nid}", SEARCH_ROLE)
        name.setData(node.name.casefold(), Qt.ItemDataRole.UserRole)
        name.setToolTip(node.description or node.name)
        n = int(counts.get(nid, 0))
        count = QStandardItem(f"{n:,}")
        count.setData(n, Qt.ItemDataRole.UserRole)
        count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        ident = QStandardItem(nid)
        ident.setData(nid, Qt.ItemDataRole.UserRole)
        if node.restrictions:
            grey = QColor(130, 130, 130)
            font = QFont()
            font.setItalic(True)
            for item in (name, count, ident):
                item.setForeground(grey)
                item.setFont(font)
            name.setToolTip(f"[{', '.join(node.restrictions)}] {node.description}")
        parent.appendRow([name, count, ident])
        for kid in onto.children.get(nid, ()):
            if kid not in above:  # a cycle: do not descend into an ancestor again
                self._add(name, kid, onto, counts, above | {nid})

    def clear(self, message: str) -> None:
        self.ontology = None
        self.model.removeRows(0, self.model.rowCount())
        self.details.setText(message)

    # ----- queries (tests use them too)
    def current_id(self) -> str | None:
        index = self.view.currentIndex()
        if not index.isValid():
            return None
        return self.proxy.index(index.row(), 0, index.parent()).data(ID_ROLE)

    def select_id(self, nid: str) -> bool:
        """Make the first row of node ``nid`` current (expanding its parents); False if hidden."""
        matches = self.proxy.match(
            self.proxy.index(0, 0), ID_ROLE, nid, 1, Qt.MatchFlag.MatchRecursive
        )
        if not matches:
            return False
        index = matches[0]
        parent = index.parent()
        while parent.isValid():
            self.view.expand(parent)
            parent = parent.parent()
        self.view.setCurrentIndex(index)
        self.view.scrollTo(index)
        return True

    def visible_ids(self) -> list[str]:
        """IDs of every row the filter lets through, depth first."""
        out: list[str] = []

        def walk(parent) -> None:
            for row in range(self.proxy.rowCount(parent)):
                index = self.proxy.index(row, 0, parent)
                out.append(index.data(ID_ROLE))
                walk(index)

        walk(self.proxy.index(-1, -1))
        return out

    # ----- handlers
    def _emit(self, signal) -> None:
        nid = self.current_id()
        if nid:
            signal.emit(nid)

    def _on_search_text_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        if text.strip():
            self.view.expandAll()

    def _on_view_current_changed(self, current, _previous) -> None:
        nid = self.current_id()
        for b in (self.add_class, self.add_exclude):
            b.setEnabled(bool(nid))
        if not nid or self.ontology is None:
            return
        onto = self.ontology
        node = onto.nodes[nid]
        count = self.proxy.index(current.row(), 1, current.parent()).data()
        tags = f" [{', '.join(node.restrictions)}]" if node.restrictions else ""
        desc = node.description if len(node.description) < 260 else node.description[:257] + "..."
        self.details.setText(
            f"<b>{html.escape(onto.path(nid))}</b>{tags} - {count} clips<br>{html.escape(desc)}"
        )

    def _on_view_double_clicked(self, _index) -> None:
        self._emit(self.classRequested)
