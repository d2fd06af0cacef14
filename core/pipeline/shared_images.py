"""The images every system of a sweep could use: the multi-backbone stages (ensembles, probes,
similarity) compare systems on exactly these."""

from __future__ import annotations

import numpy as np


def common_rows(outcomes: list) -> tuple[list[str], list[np.ndarray]]:
    """(image ids every outcome scored, in the first outcome's order; each outcome's rows of them)."""
    common = set(outcomes[0].ids)
    for o in outcomes[1:]:
        common &= set(o.ids)
    ids = [i for i in outcomes[0].ids if i in common]
    rows_of = [{i: r for r, i in enumerate(o.ids)} for o in outcomes]
    return ids, [np.array([ro[i] for i in ids], dtype=np.int64) for ro in rows_of]
