"""Answering kinds (a VLM asked a question) on the same levels as every other backbone.

Open mode: one answer per image, generated once; at level k it is matched against the first
k names of every class. Closed mode: the prompt lists level k's categories, so each level
(and each curve) asks again; answers are cached, so a re-run asks nothing. Either way a level
turns into the same :class:`~core.pipeline.scoring.LevelScores` the level scorer gives, with
the credit of the tie policy (1 for the true class alone, 1/m for m matched classes including
it, else 0), so levels, CIs, McNemar, flips and per-class rows are written as for CLIP.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from core.data.images import BadImage
from core.models.prompts import closed_prompt
from core.pipeline.scoring import LevelPlan, LevelScores
from core.stats.answers import AnswerMatcher, answer_rows
from core.util.errors import InputError
from core.util.events import Log

ANSWER_MODES = ("open", "closed")


def level_categories(plan: LevelPlan) -> list[str]:
    """The distinct names a level's categories are made of, in the plan's (sorted) order."""
    if plan.mode == "flat":
        return list(plan.keys)
    return list(dict.fromkeys(n for key in plan.keys for n in key))


def check_closed_prompts(backbone, labels, levels: Sequence[int]) -> None:
    """Refuse a closed-world run whose longest level prompt would not fit the model's context."""
    fits = getattr(backbone, "check_prompt_fits", None)
    if fits is None or getattr(backbone, "mode", "open") != "closed":
        return
    k = max(levels)  # levels only add names: the highest level's prompt is the longest
    names = list(dict.fromkeys(n for c in labels.classes for n in labels.names[c][:k]))
    fits(closed_prompt(backbone.prompt, names), f"the closed-world prompt of level {k} ({len(names)} names)")


class AnswerScores:
    """One answering backbone's answers, turned into level scores on demand."""

    def __init__(self, backbone, dataset, indices: Sequence[int], classes: Sequence[str], *, rule: str = "word",
                 seed: int = 0, cache=None, emit=None, cancel=None) -> None:
        self.backbone, self.dataset, self.classes = backbone, dataset, list(classes)
        self.rule, self.seed, self.cache, self.emit, self.cancel = rule, seed, cache, emit, cancel
        self.mode = getattr(backbone, "mode", "open")
        if self.mode not in ANSWER_MODES:
            raise InputError(f"answering backbone '{backbone.name}' has mode '{self.mode}'", field="vlm-mode")
        self.prompt = backbone.prompt
        self.skipped: list[tuple[int, str]] = []
        self.n_computed = 0
        if self.mode == "open":
            got = backbone.answer(dataset, list(indices), [self.prompt] * len(indices), cache=cache, emit=emit,
                                  cancel=cancel)
            self.indices = np.asarray(got.indices, dtype=np.int64)
            self.open_answers = list(got.answers)
            self.skipped += got.skipped
            self.n_computed += got.n_computed
        else:  # every level asks again: keep the images that open now, so all levels share one set
            ok = []
            for i in indices:
                try:
                    dataset.open(i)
                    ok.append(i)
                except BadImage as e:
                    self.skipped.append((i, str(e)))
            self.indices = np.asarray(ok, dtype=np.int64)
            self.open_answers = None
        self.keys = [dataset.content_hash(int(i)) for i in self.indices] if self.mode == "closed" else None

    def answers_for(self, plan: LevelPlan) -> list[Optional[str]]:
        """The raw answer of every image at this level (None where the model gave none)."""
        if self.open_answers is not None:
            return self.open_answers
        cats = level_categories(plan)
        prompts = [closed_prompt(self.prompt, cats, seed=self.seed, image_key=k) for k in self.keys]
        got = self.backbone.answer(self.dataset, [int(i) for i in self.indices], prompts, cache=self.cache,
                                   emit=self.emit, cancel=self.cancel, keys=self.keys)
        self.n_computed += got.n_computed
        by_index = dict(zip((int(i) for i in got.indices), got.answers))
        if got.skipped and self.emit is not None:
            self.emit(Log(f"{self.backbone.name}: no answer for {len(got.skipped)} images at level {plan.level} "
                          "(counted wrong)", "warning"))
        return [by_index.get(int(i)) for i in self.indices]

    def level(self, plan: LevelPlan, y: np.ndarray, ids: Sequence[str]) -> tuple[LevelScores, list[dict]]:
        """(level scores, answers.csv rows) of one level: each answer matched to the level's names."""
        answers = self.answers_for(plan)
        level_names = {c: plan.names[c][: plan.level] for c in self.classes}
        matcher = AnswerMatcher(level_names, self.rule)
        col = {c: j for j, c in enumerate(self.classes)}
        n = len(answers)
        pred_class = np.full(n, -1, dtype=np.int64)
        credit = np.zeros(n, dtype=np.float64)
        n_owners = np.zeros(n, dtype=np.int64)
        labels, owners = [], []
        for r, (ans, t) in enumerate(zip(answers, y)):
            m = matcher.match(ans, self.classes[int(t)])
            credit[r] = m.credit
            n_owners[r] = len(m.classes)
            if m.classes:
                pred_class[r] = col[m.classes[0]]
            labels.append("|".join(m.names))
            owners.append("|".join(m.classes))
        s = LevelScores(level=plan.level, n_categories=len(plan.keys), pred_class=pred_class, pred_label=labels,
                        score=np.full(n, np.nan), credit=credit, credit_topk=np.full(n, np.nan), n_owners=n_owners,
                        owners=owners, names_per_class=plan.names_per_class)
        rows = answer_rows(self.backbone.name, ids, [self.classes[int(t)] for t in y], answers, plan.level,
                           level_names, self.rule)
        return s, rows

    def choices(self, plan: LevelPlan, y: np.ndarray, rows: Optional[np.ndarray] = None,
                class_order: Optional[np.ndarray] = None) -> np.ndarray:
        """[images, classes] choice matrix of one level: 1/m on each of the m matched classes
        (what the backbone comparison, pairs and oracle read for a system without scores)."""
        answers = self.answers_for(plan)
        level_names = {c: plan.names[c][: plan.level] for c in self.classes}
        matcher = AnswerMatcher(level_names, self.rule)
        col = {c: j for j, c in enumerate(self.classes)}
        sel = range(len(answers)) if rows is None else rows
        out = np.zeros((len(sel), len(self.classes)), dtype=np.float32)
        for r, j in enumerate(sel):
            m = matcher.match(answers[int(j)])
            for c in m.classes:
                out[r, col[c]] = 1.0 / len(m.classes)
        return out[:, class_order] if class_order is not None else out
