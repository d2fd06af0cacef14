"""Reading the small CSV files users hand us, with errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from .errors import InputError


def read_user_csv(path: str | Path, required: Sequence[str], what: str) -> pd.DataFrame:
    """All-string table with the ``required`` columns (matched case-insensitively, renamed
    to their lower-case names). Row i of the result is on line i + 2 of the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found", file=path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 (byte {e.start}); save the file as UTF-8", file=path) from None
    except pd.errors.EmptyDataError:
        raise InputError("the file is empty", file=path, line=1) from None
    except Exception as e:  # pandas raises many types for malformed files
        raise InputError(f"cannot read CSV ({str(e).splitlines()[0]})", file=path) from None
    cols = {str(c).strip().lower(): c for c in df.columns}
    for need in required:
        if need not in cols:
            found = ", ".join(map(str, df.columns)) or "none"
            raise InputError(f"missing column '{need}' (found: {found})", file=path, line=1, field=need)
    return df.rename(columns={cols[n]: n for n in required})
