"""``semscale-gui PATH…``: open what the command line names, as other desktop tools do.

Each path is a run directory (or its run.json: shown in Results, and side by side in
Compare when there are several), a labels file (CSV ``class,synonym`` or JSON: loaded
into the synonym editor), or a dataset in any format the engine reads. ``classify`` is
plain Python; ``open_paths`` hands each path to the panel that opens it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

RUN, LABELS, DATASET, STUDY = "run", "labels", "dataset", "study"
LABEL_HEADERS = (["class", "synonym"], ["class", "name"])


@dataclass(frozen=True)
class OpenTarget:
    kind: str  # run | labels | dataset | study
    path: Path


def _looks_like_labels_csv(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for row in csv.reader(f):
                if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                    continue
                return [c.strip().lower() for c in row[:2]] in LABEL_HEADERS
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return False


def _looks_like_labels_json(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and bool(data) and all(isinstance(v, (list, str)) for v in data.values())


def classify(path: str | Path) -> OpenTarget:
    """What ``path`` is; anything not recognised as a run, labels or study is tried as a dataset
    (whose reader then says precisely what is wrong with it)."""
    p = Path(path).expanduser()
    if p.is_dir() and (p / "run.json").is_file():
        return OpenTarget(RUN, p)
    if p.is_file() and p.name == "run.json":
        return OpenTarget(RUN, p.parent)
    if p.is_file() and p.suffix.lower() == ".toml":
        return OpenTarget(STUDY, p)
    if p.is_file() and p.suffix.lower() == ".json" and _looks_like_labels_json(p):
        return OpenTarget(LABELS, p)
    if p.is_file() and p.suffix.lower() in (".csv", ".txt", ".tsv") and _looks_like_labels_csv(p):
        return OpenTarget(LABELS, p)
    return OpenTarget(DATASET, p)


def open_paths(window: Any, paths: Sequence[str | Path]) -> list[OpenTarget]:
    """Open each path in ``window`` (a MainWindow); returns what each was taken to be.

    Labels load after the dataset so that a labels.csv lying beside the images does not
    replace the file named on the command line.
    """
    targets = [classify(p) for p in paths]
    runs = [t.path for t in targets if t.kind == RUN]
    datasets = [t.path for t in targets if t.kind == DATASET]
    labels = [t.path for t in targets if t.kind == LABELS]
    for t in targets:
        if t.kind == STUDY:
            window.statusBar().showMessage(f"{t.path}: study files are run with `semscale study`", 10000)
    if labels:
        def load_labels(*_args: Any) -> None:
            for p in labels:
                window.editor.load_file(p, undoable=True)
            window.browser.set_labels(window.doc.to_labelset())

        if datasets:
            conn: list = []

            def once(*_args: Any) -> None:
                window.browser.dataset_loaded.disconnect(conn[0])
                load_labels()

            conn.append(window.browser.dataset_loaded.connect(once))
        else:
            load_labels()
            window.tabs.setCurrentWidget(window.editor)
    if datasets:
        window.browser.open_path(datasets[-1])  # one dataset at a time: the last one named
        window.tabs.setCurrentWidget(window.browser)
    if runs:
        window.results.open_run(runs[-1])
        if len(runs) > 1:
            window.results.compare.add_runs(runs)
            window.results.tabs.setCurrentWidget(window.results.compare)
        window.tabs.setCurrentWidget(window.results)
    return targets
