"""Reading the small CSV files users hand us, with errors that name file, line and field."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

from core.util.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


def read_user_text(path: str | Path) -> str:
    """A user's text file as str (UTF-8, BOM tolerated); errors name the file and line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read file ({e.strerror or e})", file=path) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(
            f"not valid UTF-8 (byte {e.start}); save the file as UTF-8", file=path, line=line
        ) from None


def strict_csv_rows(text: str, path) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of each CSV row, parsed strictly: an unterminated quote, text after a
    closing quote or a field holding a line break is an :class:`InputError` naming the line
    (a lenient reader runs such a row into the next ones and yields one long, wrong name)."""
    reader = csv.reader(io.StringIO(text), strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            why = "a quote is never closed" if "end of data" in str(e) or "EOF" in str(e) else str(e)
            raise InputError(f"malformed CSV row starting here: {why}", file=path, line=start) from None
        for i, cell in enumerate(row):
            if "\n" in cell or "\r" in cell:
                raise InputError(f"field {i + 1} holds a line break (an unclosed quote?); names cannot span lines",
                                 file=path, line=start) from None
        yield start, row
        start = reader.line_num + 1


def read_user_json(path: str | Path, missing: Optional[str] = None, field: Optional[str] = None) -> Any:
    """Parsed JSON of a user's (or a run's) file; ``missing`` is the message when it does not exist."""
    path = Path(path)
    if missing is not None and not path.is_file():
        raise InputError(missing, file=path, field=field)
    return parse_user_json(read_user_text(path), path, field)


def parse_user_json(text: str, path: str | Path, field: Optional[str] = None) -> Any:
    """``json.loads`` whose error names the file, line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", file=path, line=e.lineno, field=field) from None


def read_user_csv(path: str | Path, required: Sequence[str], what: str) -> pd.DataFrame:
    """All-string table with the ``required`` columns (matched case-insensitively, renamed
    to their lower-case names). Row i of the result is on line i + 2 of the file."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found", file=path)
    # pandas runs an unclosed quote into the next lines and pads short rows quietly: check strictly first
    width = None
    for line, row in strict_csv_rows(read_user_text(path), path):
        if not row or not any(c.strip() for c in row):
            continue
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise InputError(f"expected {width} fields (as in the header) but found {len(row)}", file=path, line=line)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 (byte {e.start}); save the file as UTF-8", file=path) from None
    except pd.errors.EmptyDataError:
        raise InputError("the file is empty", file=path, line=1) from None
    except Exception as e:  # pandas raises many types for malformed files
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        m = re.search(r"\bline (\d+)", first)
        raise InputError(f"cannot read CSV ({first})", file=path, line=int(m.group(1)) if m else None) from None
    cols = {str(c).strip().lower(): c for c in df.columns}
    for need in required:
        if need not in cols:
            found = ", ".join(map(str, df.columns)) or "none"
            raise InputError(f"missing column '{need}' (found: {found})", file=path, line=1, field=need)
    return df.rename(columns={cols[n]: n for n in required})


# ---------------------------------------------------------------- spreadsheet formulas

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is run as a formula by spreadsheet programs (CSV injection)."""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def formula_risk(value: Any) -> bool:
    """Whether a spreadsheet would read ``value`` as a formula (text, not a plain number, starting
    with ``= + - @``, tab or carriage return)."""
    return isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value)


def neutralise(value: Any) -> Any:
    """OWASP's remedy for CSV injection: a single quote before a value a spreadsheet would run as
    a formula, so it shows as text. For files meant for people (the app's exports); run files
    keep values exactly, since scripts read them."""
    return "'" + value if formula_risk(value) else value


def neutralise_frame(df: "pd.DataFrame") -> "pd.DataFrame":
    """``df`` with :func:`neutralise` applied to every text cell (numbers are left alone)."""
    import pandas as pd

    out = df.copy()
    for c in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[c]) or pd.api.types.is_bool_dtype(out[c])):
            out[c] = out[c].map(neutralise)
    out.columns = [neutralise(c) for c in out.columns]
    return out


def neutralise_csv(src: str | Path, dest: str | Path) -> int:
    """Copy a CSV for people: byte for byte when no cell is at risk, else cell by cell with the
    risky ones neutralised. Returns how many cells were changed."""
    import shutil

    text = Path(src).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    changed = sum(formula_risk(c) for row in rows for c in row)
    if not changed:
        shutil.copy2(src, dest)
        return 0
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows([[neutralise(c) for c in row] for row in rows])
    Path(dest).write_text(buf.getvalue(), encoding="utf-8", newline="")
    return changed


def formula_warnings(names: dict[str, list[str]]) -> list[str]:
    """One warning per class or name that a spreadsheet would run as a formula."""
    out = []
    for cls, ns in names.items():
        for n in dict.fromkeys([cls, *ns]):
            if formula_risk(n):
                out.append(f"'{n}' starts with {n[0]!r}: a spreadsheet opening the run's CSV files would run it as "
                           "a formula (run files keep it exactly; the app's exports neutralise it)")
    return out
