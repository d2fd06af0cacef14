"""Reading a semscale HTML report back (stdlib html.parser): its tables, with each number
cell's exact value, and every attribute that could make the browser fetch something."""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd


class ReportParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict] = {}
        self.attributes: list[tuple[str, str, str]] = []  # (tag, attribute, value) of every element
        self.tags: list[str] = []
        self.groups: list[str] = []
        self._table = None
        self._row = None
        self._cell = None
        self._in_th = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        for k, v in attrs:
            self.attributes.append((tag, k, v or ""))
        if tag == "section" and "data-group" in a:
            self.groups.append(a["data-group"])
        if tag == "table":
            self._table = {"source": a.get("data-source"), "columns": [], "rows": []}
            self.tables[a["id"]] = self._table
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag == "th" and self._table is not None:
            self._in_th = True
            self._cell = {"text": ""}
        elif tag == "td" and self._row is not None:
            self._cell = {"text": "", "value": a.get("data-value")}

    def handle_endtag(self, tag):
        if tag == "th" and self._cell is not None:
            self._table["columns"].append(self._cell["text"].strip())
            self._cell, self._in_th = None, False
        elif tag == "td" and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def parse_report(text: str) -> ReportParser:
    p = ReportParser()
    p.feed(text)
    p.close()
    return p


def frame(table: dict, exact: bool = True) -> pd.DataFrame:
    """A report table as a DataFrame: numbers from their exact data-value, text as shown."""
    def value(cell):
        v = cell.get("value")
        if v is None or not exact:
            return cell["text"].strip()
        return float("nan") if v == "" else float(v)

    return pd.DataFrame([[value(c) for c in row] for row in table["rows"]], columns=table["columns"])
