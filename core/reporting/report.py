"""One self-contained HTML report of a run or a study, for a colleague without semscale.

Everything on the page comes from the run directory (``core.results.runs.load_run``) or the
study folder's summary files: the tables are the run's CSV rows (each number cell carries
the exact value it shows, in ``data-value``), the figures are inline SVG drawn with
matplotlib, the styles are inline, and the page loads nothing from anywhere else — it opens
offline, in a mail attachment, years later. The reproduce section says exactly what ran:
the equivalent command (or the study file), the versions and every backbone's weights hash.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pandas as pd

from core.labels.controls import SYNONYMS
from core.results.runs import Run, load_run, read_csv
from core.util.errors import InputError
from core.util.versions import now, versions

TOP_NAMES = 15  # most harmful and most helpful names shown
TOP_CLASSES = 20  # per backbone, the largest drops and gains shown when a dataset has more classes
MAX_TABLE_ROWS = 400  # longer tables are shown in part, with a note naming the file that has all
MAX_CONFIG_CHARS = 50_000  # a longer config is shown without its per-class name lists


@dataclass
class Cell:
    text: str
    value: Optional[str] = None  # the exact value (numbers), as the CSV would read back
    numeric: bool = False


@dataclass
class Table:
    id: str
    caption: str
    source: str  # the run file the rows come from (with how, when not row for row)
    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""


@dataclass
class Section:
    id: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (svg, caption)
    tables: list[Table] = field(default_factory=list)
    code: list[tuple[str, str, bool]] = field(default_factory=list)  # (caption, text, folded)
    details: list[Table] = field(default_factory=list)  # long tables, folded


@dataclass
class Group:
    """The sections of one run (a dataset, in a study) or the study's summary."""

    id: str
    title: str
    subtitle: str
    sections: list[Section]


def _is_p(column: str) -> bool:
    return column.startswith("p_") or column in ("p_value", "alpha")


def _cell(value: Any, column: str) -> Cell:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Cell("—", "", True)
    if isinstance(value, bool):
        return Cell(str(value))
    if isinstance(value, (int,)) or (hasattr(value, "dtype") and getattr(value, "dtype").kind in "iu"):
        return Cell(f"{int(value)}", repr(int(value)), True)
    if isinstance(value, float) or (hasattr(value, "dtype") and getattr(value, "dtype").kind == "f"):
        v = float(value)
        exact = repr(v)
        if _is_p(column):
            return Cell(f"{v:.3g}", exact, True)
        if v.is_integer() and abs(v) < 1e15:
            return Cell(f"{int(v)}", exact, True)
        return Cell(f"{v:.4f}", exact, True)
    return Cell(str(value))


def table(df: Optional[pd.DataFrame], id: str, caption: str, source: str, columns: Optional[Sequence[str]] = None,
          note: str = "", limit: int = MAX_TABLE_ROWS) -> Optional[Table]:
    """A DataFrame as a report table (the listed columns that exist, in that order)."""
    if df is None or df.empty:
        return None
    cols = [c for c in (columns or df.columns) if c in df.columns]
    shown = df.head(limit)
    if len(df) > limit:
        note = (note + " " if note else "") + f"The first {limit} of {len(df)} rows; {source.split(' ')[0]} has all."
    rows = [[_cell(v, c) for c, v in zip(cols, rec)] for rec in shown[cols].itertuples(index=False, name=None)]
    return Table(id, caption, source, cols, rows, note)


def _first_ordering(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["ordering"] == 0] if "ordering" in df.columns and len(df) else df


def _synonyms(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["names"] == SYNONYMS] if "names" in df.columns and len(df) else df


def _with_names(df: Optional[pd.DataFrame]) -> Optional[pd.DataFrame]:
    """Rows of a run made before control curves existed have no ``names`` value: they are the synonyms curve."""
    if df is None or df.empty or "names" not in df.columns or not df["names"].isna().any():
        return df
    return df.assign(names=df["names"].astype(object).where(df["names"].notna(), SYNONYMS))


# ---------------------------------------------------------------------------------------------------------------
# derived tables (what the report shows beside the files' own rows; the tests recompute them)


def class_changes(per_class: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """Per backbone and class, recall at the first and at the last level (synonyms, ordering 0)."""
    df = _synonyms(_first_ordering(per_class))
    if df.empty:
        return pd.DataFrame(), "", ""
    first, last = int(df["level"].min()), int(df["level"].max())
    a = df[df["level"] == first].set_index(["backbone", "class"])
    b = df[df["level"] == last].set_index(["backbone", "class"])
    out = pd.DataFrame({"n_images": a["n_images"], f"recall_level_{first}": a["recall"],
                        f"recall_level_{last}": b["recall"]}).dropna(subset=[f"recall_level_{last}"])
    out["change"] = out[f"recall_level_{last}"] - out[f"recall_level_{first}"]
    out = out.reset_index()
    order = {bb: i for i, bb in enumerate(dict.fromkeys(df["backbone"]))}
    out = out.sort_values(["backbone", "change", "class"], key=lambda s: s.map(order) if s.name == "backbone" else s)
    return out.reset_index(drop=True), f"recall_level_{first}", f"recall_level_{last}"


def extreme_classes(changes: pd.DataFrame, top: int = TOP_CLASSES) -> pd.DataFrame:
    """Per backbone, the ``top`` largest drops and gains (all classes when there are few)."""
    parts = []
    for _, d in changes.groupby("backbone", sort=False):
        if len(d) > 2 * top:
            d = pd.concat([d.head(top), d.tail(top)])
        parts.append(d)
    return pd.concat(parts) if parts else changes


def helpful_names(names: pd.DataFrame, top: int = TOP_NAMES) -> pd.DataFrame:
    """The added names (rank > 1) that gained the most credit: synonyms curve, ordering 0.

    ``credit_change`` is the run's total credit with the name minus without it (names.csv,
    docs/statistics.md); the first name of a class is left out (without it the class has no
    category, so it always "helps"). Each (backbone, class, name) once, at its largest gain,
    then by the fewest images taken from other classes.
    """
    df = _synonyms(_first_ordering(names))
    if df.empty or "credit_change" not in df.columns:
        return pd.DataFrame(columns=df.columns)
    if "rank" in df.columns:
        df = df[df["rank"] > 1]
    df = df[df["credit_change"] > 0]
    df = df.sort_values(["credit_change", "won_from_other_classes", "name", "level"],
                        ascending=[False, True, True, True], kind="mergesort")
    df = df.drop_duplicates(["backbone", "class", "name"], keep="first")
    return df.head(top).reset_index(drop=True)


def harmful(names: pd.DataFrame, predictions: Optional[pd.DataFrame], top: int = TOP_NAMES) -> pd.DataFrame:
    """The most harmful names as the app's Names view ranks them (:func:`core.results.names.harmful_names`),
    with from how many other classes each took its images (flat mode, from predictions.csv)."""
    from core.results.names import harmful_names

    df = names if "names" in names.columns else names.assign(names=SYNONYMS)
    use = predictions if predictions is not None and len(predictions) and "predicted_label" in predictions.columns \
        else None
    return harmful_names(df, top=top, predictions=use)


def sentence(row) -> str:
    """"figure (circle) takes 41 images from 3 other classes at level 8, costs 12 correct" (plain text)."""
    from core.results.names import name_sentence

    return name_sentence(row).replace("*", "")


def adaptive_ensembles(ensembles: pd.DataFrame) -> pd.DataFrame:
    """Adaptive ensembles (k > 0): mean top-1 over the seeded splits per level, method and k."""
    df = ensembles[ensembles["k"] > 0] if len(ensembles) else ensembles
    if df.empty:
        return pd.DataFrame()
    g = df.groupby(["level", "method", "k"], sort=True)
    return g.agg(n_splits=("split", "nunique"), n_eval=("n_eval", "mean"), top1=("top1", "mean"),
                 top1_min=("top1", "min"), top1_max=("top1", "max")).reset_index()


# ---------------------------------------------------------------------------------------------------------------
# reproduce


def _backbone_arg(spec: dict) -> str:
    model = str(spec.get("model", ""))
    if spec.get("checkpoint"):
        return f"{model}={spec['checkpoint']}"
    if spec.get("pretrained"):
        return f"{model}@{spec['pretrained']}"
    return model


def sweep_command(config: dict) -> tuple[str, str]:
    """The ``semscale sweep`` line that repeats this run (and a backbones CSV when labels need one)."""
    q = shlex.quote
    parts = ["semscale", "sweep"]
    if config.get("embeddings"):
        for e in config["embeddings"]:
            parts += ["--embeddings", q(str(e))]
    else:
        parts += ["--dataset", q(str(config.get("dataset", "")))]
    for key, flag in (("split", "--split"), ("image_column", "--image-column"), ("label_column", "--label-column"),
                      ("data_root", "--data-root"), ("labels", "--labels")):
        if config.get(key):
            parts += [flag, q(str(config[key]))]
    specs = config.get("backbones") or []
    extra = ""
    if any(s.get("label") for s in specs):
        parts += ["--backbones", "backbones.csv"]
        rows = pd.DataFrame([{"model": s.get("model"), "pretrained": s.get("pretrained") or "",
                              "checkpoint": s.get("checkpoint") or "", "label": s.get("label") or ""}
                             for s in specs])
        extra = rows.to_csv(index=False)
    else:
        for s in specs:
            parts += ["--model", q(_backbone_arg(s))]
    first = specs[0] if specs else {}
    if first.get("device") and first["device"] != "auto":
        parts += ["--device", q(str(first["device"]))]
    if first.get("precision") and first["precision"] != "fp32":
        parts += ["--precision", q(str(first["precision"]))]
    templates = config.get("templates")
    if isinstance(templates, str):
        parts += ["--templates", q(templates)]
    elif templates:
        parts += ["--templates", "templates.txt"]
        extra += ("\n" if extra else "") + "templates.txt:\n" + "\n".join(map(str, templates)) + "\n"
    levels = config.get("levels") or config.get("levels_resolved")
    if levels:
        parts += ["--levels", ",".join(map(str, levels)) if isinstance(levels, list) else q(str(levels))]
    for key, flag in (("mode", "--mode"), ("orderings", "--orderings"), ("seed", "--seed"),
                      ("bootstrap", "--bootstrap"), ("alpha", "--alpha"), ("ensemble_splits", "--ensemble-splits"),
                      ("class_frequency", "--class-frequency"), ("vocabulary", "--vocabulary")):
        if config.get(key) is not None:
            parts += [flag, q(str(config[key]))]
    if "ensemble_shots" in config:
        parts += ["--ensemble-shots", q(",".join(map(str, config.get("ensemble_shots") or [])))]
    if config.get("controls"):
        parts += ["--controls", q(",".join(config["controls"]))]
    for e in config.get("external_predictions") or []:
        parts += ["--external-predictions", q(str(e))]
    if config.get("save_predictions") is False:
        parts.append("--no-predictions")
    if config.get("save_names") is False:
        parts.append("--no-names-table")
    for spec in config.get("perturb") or []:
        parts += ["--perturb", q(str(spec))]
    if config.get("probe_shots"):
        parts += ["--probe-shots", q(",".join(map(str, config["probe_shots"])))]
        if config.get("probe_solver") and config["probe_solver"] != "optimum":
            parts += ["--probe-solver", q(str(config["probe_solver"]))]
    if config.get("similarity_k") is not None and int(config["similarity_k"]) != 10:
        parts += ["--similarity-k", q(str(config["similarity_k"]))]
    if config.get("extend_names"):
        parts += ["--extend-names", q(str(config["extend_names"]))]
        if config.get("extend_to"):
            parts += ["--extend-to", q(str(config["extend_to"]))]
    if first.get("decode") and first["decode"] != "draft":
        parts += ["--decode", q(str(first["decode"]))]
    parts += ["--out", q(str(config.get("out", "RUN")))]
    line = " ".join(parts)
    return line, extra


def _reproduce(run: Run, sid: Callable[[str], str], command: bool = True) -> Section:
    meta, config = run.meta, run.config
    s = Section(sid("reproduce"), "How to reproduce")
    s.paragraphs.append(f"Status {run.status}; started {meta.get('started') or '?'}, finished "
                        f"{meta.get('finished') or '?'} on {meta.get('host') or '?'}.")
    if command:
        line, extra = sweep_command(config)
        s.code.append(("The command (rebuilt from run.json's config)", line, False))
        if extra:
            s.code.append(("with these files beside it", extra, False))
    specs = meta.get("backbones") or []
    rows = []
    for b in specs:
        rows.append({"backbone": b.get("name"), "kind": b.get("kind"), "model": b.get("model") or
                     (b.get("spec") or {}).get("model"), "weights": b.get("weights") or b.get("fingerprint") or "",
                     "identity": b.get("identity"), "device": b.get("device"), "precision": b.get("precision"),
                     "decode": b.get("decode")})
    t = table(pd.DataFrame(rows), sid("table-checkpoints"), "Backbones and their checkpoint hashes",
              "run.json (backbones)")
    if t:
        s.tables.append(t)
    vs = meta.get("versions") or {}
    t = table(pd.DataFrame([{"package": k, "version": str(v)} for k, v in vs.items()]), sid("table-versions"),
              "Versions the run used", "run.json (versions)")
    if t:
        s.tables.append(t)
    shown = dict(config)
    text = json.dumps(shown, indent=1, default=str)
    if len(text) > MAX_CONFIG_CHARS:  # thousands of classes: the name lists are the labels file's, named above
        for key in ("labels_resolved", "controls_resolved", "dataset_classes"):
            if isinstance(shown.get(key), (dict, list)) and shown[key]:
                shown[key] = f"({len(shown[key])} entries: see run.json)"
        text = json.dumps(shown, indent=1, default=str)
    s.code.append(("run.json config (every option, as asked and as resolved)", text, True))
    return s


# ---------------------------------------------------------------------------------------------------------------
# the sections of one run


def run_sections(run: Run, prefix: str = "", command: bool = True, names_df: Optional[pd.DataFrame] = None
                 ) -> list[Section]:
    """Every section of one run's report (ids prefixed for a dataset of a study)."""
    from core.reporting import figures

    def sid(name: str) -> str:
        return f"{prefix}{name}"

    salt = prefix or "run"
    sections: list[Section] = []
    lv = _with_names(run.levels)

    # accuracy vs names
    s = Section(sid("accuracy"), "Accuracy vs number of names")
    if lv.empty:
        s.paragraphs.append("This run has no finished level (levels.csv is empty).")
    else:
        kinds = sorted(set(lv["names"])) if "names" in lv.columns else [SYNONYMS]
        s.paragraphs.append(
            "Top-1 accuracy at each level (names per class) for every backbone, with the 95% bootstrap "
            "interval as a band" + ("; dashed lines are the control curves (" +
                                    ", ".join(k for k in kinds if k != SYNONYMS) + ") with the same name counts"
                                    if len(kinds) > 1 else "") + ". Ordering 0 (the labels file's ranking).")
        svg = figures.accuracy_curves(lv, salt=salt + "acc")
        if svg:
            s.figures.append((svg, "top-1 vs names per class; band: 95% bootstrap CI"))
        cols = ["backbone", "names", "ordering", "level", "n_categories", "n_images", "top1", "top5", "ci_low",
                "ci_high", "n_correct", "n_tied"]
        s.tables.append(table(lv, sid("table-levels"), "Accuracy per level", "levels.csv", cols))
        if run.levels_summary is not None and len(run.levels_summary):
            s.tables.append(table(run.levels_summary, sid("table-levels-summary"),
                                  "Across name orderings", "levels_summary.csv"))
    sections.append(s)

    # threshold verdicts
    th = run.tables.get("threshold")
    s = Section(sid("threshold"), "Threshold verdicts")
    if th is not None and len(th):
        s.paragraphs.append(
            "Per backbone and names curve: the level where top-1 peaks and the verdict on what follows it. "
            "'declining' means a paired McNemar test finds the later levels significantly worse than the peak "
            "(the test column says which comparison decided); 'rising' that the peak is the last level and "
            "significantly above level 1; otherwise 'plateau'. peak_share is the share of bootstrap resamples "
            "in which the peak level is the peak.")
        s.tables.append(table(th, sid("table-threshold"), "Threshold verdicts and their tests", "threshold.csv"))
    else:
        s.paragraphs.append("This run has no threshold.csv (written when a curve's last level is scored).")
    sections.append(s)

    # significance
    s = Section(sid("significance"), "Statistics: levels and significance")
    if not lv.empty and "p_vs_level1" in lv.columns:
        s.paragraphs.append("Paired McNemar tests on the same images: each level against level 1 and against the "
                            "level before; p_vs_level1_holm is Holm-corrected over the levels of a curve.")
        s.tables.append(table(lv, sid("table-significance"), "Paired tests per level", "levels.csv",
                              ["backbone", "names", "ordering", "level", "top1", "p_vs_level1", "p_vs_previous",
                               "p_vs_level1_holm", "peak_share"]))
    ctl = run.tables.get("controls")
    if ctl is not None and len(ctl):
        s.paragraphs.append("Semantic effect: synonyms top-1 minus the control curve's top-1 at the same level, "
                            "with a paired bootstrap CI and a McNemar p-value.")
        s.tables.append(table(ctl, sid("table-controls"), "Synonyms vs control curves", "controls.csv"))
    if not s.tables:
        s.paragraphs.append("No paired tests in this run.")
    sections.append(s)

    # per-class changes
    s = Section(sid("classes"), "Per-class changes")
    changes, first, last = class_changes(_with_names(run.per_class))
    if changes.empty:
        s.paragraphs.append("No per-class rows (per_class.csv is empty).")
    else:
        shown = extreme_classes(changes)
        more = len(shown) < len(changes)
        s.paragraphs.append(f"Recall of each class at the first level ({first.rsplit('_', 1)[-1]}) and at the last "
                            f"({last.rsplit('_', 1)[-1]}), synonyms curve, ordering 0"
                            + (f"; the {TOP_CLASSES} largest drops and gains per backbone" if more else "") + ".")
        svg = figures.class_changes(shown, first, last, salt=salt + "cls")
        if svg:
            s.figures.append((svg, "per-class recall, first level → last level (red: dropped, green: gained)"))
        s.tables.append(table(shown, sid("table-classes"), "Per-class recall change",
                              "per_class.csv (first and last level)",
                              ["backbone", "class", "n_images", first, last, "change"]))
    sections.append(s)

    # names
    s = Section(sid("names"), "Most harmful and most helpful names")
    names = _with_names(names_df if names_df is not None else run.tables.get("names"))
    if names is None or names.empty:
        s.paragraphs.append("This run has no names.csv (per-name attribution: made before it existed, or with "
                            "--no-names-table), so which names helped or hurt is not shown. core.load_run(RUN).names "
                            "scores it again from the embedding cache; save it as names.csv in the run folder and "
                            "make the report again.")
    else:
        harm, helps = harmful(names, run.predictions), helpful_names(names)
        s.paragraphs.append("credit_change is the run's top-1 credit (images) at that level with the name minus "
                            "without it (names.csv; statistics.md); images_won counts the images the name wins, "
                            "won_from_other_classes those of other classes. Harmful: the names that cost the most "
                            "credit, then those that take the most images from other classes, as the app's Names "
                            "view ranks them. Helpful: the names the levels add to a class's first name that gain "
                            "the most. Each name once, at its largest effect; synonyms curve, ordering 0.")
        s.bullets = [f"{row['backbone']}: {sentence(row)}" for _, row in harm.head(5).iterrows()]
        both = pd.concat([harm, helps.iloc[::-1]]) if len(helps) else harm
        svg = figures.name_effects(both, salt=salt + "names")
        if svg:
            s.figures.append((svg, "net credit change per name (red: harmful, green: helpful)"))
        cols = ["backbone", "class", "name", "rank", "level", "n_owners", "images_won", "won_correct",
                "won_from_other_classes", "n_other_classes", "credit_change"]
        for df, key, title in ((harm, "harmful", "Most harmful names"), (helps, "helpful", "Most helpful names")):
            t = table(df, sid(f"table-names-{key}"), title, f"names.csv ({key})", cols)
            if t:
                s.tables.append(t)
            else:
                s.paragraphs.append(f"No {key} names.")
    sections.append(s)

    # backbones and ensembles
    s = Section(sid("ensembles"), "Backbones and ensembles")
    bb, pairs, ens = run.backbones, run.pairs, run.ensembles
    if bb is None or bb.empty:
        s.paragraphs.append("One backbone: no backbone comparison or ensembles (run with two or more --model).")
    else:
        fixed = ens[ens["k"] == 0] if ens is not None and len(ens) else None
        svg = figures.backbones_and_ensembles(bb, fixed, salt=salt + "ens")
        if svg:
            s.figures.append((svg, "each backbone and the fixed ensembles (dotted: oracle, any backbone right)"))
        s.tables.append(table(bb, sid("table-backbones"), "Backbones per level", "backbones.csv"))
        if pairs is not None and len(pairs):
            s.tables.append(table(pairs, sid("table-pairs"), "Pairs of backbones", "pairs.csv"))
        if fixed is not None and len(fixed):
            s.tables.append(table(fixed, sid("table-ensembles"), "Fixed ensembles (all images)",
                                  "ensembles.csv (k = 0)"))
        if ens is not None and len(ens):
            t = table(adaptive_ensembles(ens), sid("table-adaptive"),
                      "Adaptive ensembles (k labelled images per class; mean over seeded splits)",
                      "ensembles.csv (k > 0, mean over splits)")
            if t:
                s.details.append(t)
    sections.append(s)

    # frequency
    s = Section(sid("frequency"), "Class frequency")
    fs, fr = run.frequency_summary, run.frequency
    if fs is None or fs.empty:
        s.paragraphs.append("No class frequencies in this run (--class-frequency FILE or wordfreq).")
    else:
        s.paragraphs.append("Spearman's rank correlation of per-class recall with class frequency, per backbone and "
                            "level.")
        if fr is not None and len(fr):
            level = int(fr["level"].min())
            svg = figures.frequency_scatter(fr, level, salt=salt + "freq")
            if svg:
                s.figures.append((svg, f"per-class recall vs log10 frequency at level {level}"))
        s.tables.append(table(fs, sid("table-frequency-summary"), "Recall vs frequency", "frequency_summary.csv"))
        if fr is not None and len(fr):
            t = table(fr, sid("table-frequency"), "Per-class recall and frequency", "frequency.csv")
            if t:
                s.details.append(t)
    sections.append(s)

    extra = _beyond_clean(run, sid)
    if extra is not None:
        sections.append(extra)

    sections.append(_reproduce(run, sid, command))
    for sec in sections:
        sec.tables = [t for t in sec.tables if t is not None]
    return sections


def _beyond_clean(run: Run, sid: Callable[[str], str]) -> Optional[Section]:
    """Robustness (--perturb), representation similarity and linear probes (--probe-shots), when the
    run measured them; None when it measured none."""
    rob, sim, probes = run.tables.get("robustness"), run.similarity, run.probes
    if all(t is None or t.empty for t in (rob, sim, probes)):
        return None
    s = Section(sid("beyond"), "Robustness, representation similarity, linear probes")
    if rob is not None and len(rob):
        s.paragraphs.append("Top-1 under each perturbation and severity, with the drop from the clean images and "
                            "its paired McNemar test (robustness.csv; the perturbations are listed in "
                            "docs/robustness.md).")
        s.tables.append(table(rob, sid("table-robustness"), "Robustness under perturbations", "robustness.csv"))
    if sim is not None and len(sim):
        s.paragraphs.append("Linear CKA of every pair of backbones' image embeddings and the agreement of their "
                            "nearest-neighbour graphs (similarity.csv).")
        s.tables.append(table(sim[sim["scope"] == "overall"], sid("table-similarity"), "Representation similarity",
                              "similarity.csv (scope overall)"))
        per_class = sim[sim["scope"] != "overall"]
        if len(per_class):
            t = table(per_class, sid("table-similarity-classes"), "Representation similarity per class",
                      "similarity.csv (scope class)")
            if t:
                s.details.append(t)
    if probes is not None and len(probes):
        s.paragraphs.append("Linear probes on each backbone's image features (CLIP_benchmark's protocol) next to "
                            "zero-shot on the same held-out images (probes.csv).")
        summary = probes[probes["split"].astype(str) == "mean"]
        s.tables.append(table(summary if len(summary) else probes, sid("table-probes"),
                              "Linear probe vs zero-shot (mean over splits)", "probes.csv (split mean)"))
        t = table(probes, sid("table-probes-splits"), "Linear probes per split", "probes.csv")
        if t:
            s.details.append(t)
    return s


def _run_subtitle(run: Run) -> str:
    c = run.config
    bbs = [b.get("name") for b in run.meta.get("backbones") or []] or \
        [b.get("label") or b.get("model") for b in c.get("backbones") or []]
    n = run.levels["n_images"].max() if len(run.levels) and "n_images" in run.levels.columns else None
    bits = [f"dataset {c.get('dataset', '?')}", f"{len(c.get('dataset_classes') or [])} classes"]
    if n is not None and not (isinstance(n, float) and math.isnan(n)):
        bits.append(f"{int(n)} images")
    bits += [f"backbones {', '.join(map(str, bbs))}", f"mode {c.get('mode', '?')}", f"status {run.status}"]
    return " · ".join(bits)


def _verdicts(run: Run) -> list[str]:
    out = []
    for name, b in (run.summary.get("backbones") or {}).items():
        t = b.get("threshold") if isinstance(b, dict) else None
        if isinstance(t, dict) and "trend" in t:
            out.append(f"{name}: peak at level {t.get('peak_level')} (top-1 {float(t.get('peak_top1', float('nan'))):.4f}),"
                       f" {t.get('trend')} after it (p = {float(t.get('p_value', float('nan'))):.3g}, "
                       f"{t.get('test', '')})")
    return out


# ---------------------------------------------------------------------------------------------------------------
# a study


def _study_sections(study_dir: Path, meta: dict) -> list[Section]:
    from core.reporting import figures

    sections = []
    by_level = read_csv(study_dir / "summary_by_level.csv")
    s = Section("study-levels", "Across datasets: change vs one name per class")
    s.paragraphs.append("Per backbone and level, the mean change in top-1 against level 1 over the datasets, with a "
                        "percentile-bootstrap CI over datasets, and how many datasets improved, were hurt or did not "
                        "change significantly (paired McNemar, α = 0.05).")
    svg = figures.study_deltas(by_level, salt="studylv")
    if svg:
        s.figures.append((svg, "mean change in top-1 vs level 1 across datasets; band: bootstrap CI over datasets"))
    s.tables.append(table(by_level, "study-table-by-level", "Per backbone and level", "summary_by_level.csv"))
    s.tables.append(table(read_csv(study_dir / "thresholds.csv"), "study-table-thresholds",
                          "Thresholds per dataset", "thresholds.csv"))
    sections.append(s)
    s = Section("study-ensembles", "Across datasets: ensembles, frequency, controls")
    for name, title in (("ensembles_summary", "Ensemble gains over the best single backbone"),
                        ("frequency_summary", "Recall vs class frequency"),
                        ("controls_summary", "Semantic effect vs control curves")):
        s.tables.append(table(read_csv(study_dir / f"{name}.csv"), f"study-table-{name.replace('_', '-')}", title,
                              f"{name}.csv"))
    s.tables = [t for t in s.tables if t is not None]
    if not s.tables:
        s.paragraphs.append("No ensembles, frequencies or controls in this study.")
    sections.append(s)
    for sec in sections:
        sec.tables = [t for t in sec.tables if t is not None]

    s = Section("study-reproduce", "How to reproduce the study")
    file = meta.get("study_file")
    s.code.append(("The command", f"semscale study {shlex.quote(str(file or 'study.toml'))} --out "
                                  f"{shlex.quote(str(study_dir))}", False))
    text = None
    if file:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError:
            text = None
    if text is None:
        text = json.dumps({k: meta.get(k) for k in ("protocol", "backbones", "datasets")}, indent=1, default=str)
        s.code.append(("The study (from study.json; the study file is not readable here)", text, False))
    else:
        s.code.append((f"The study file ({Path(file).name})", text, False))
    rows = [{"dataset": d.get("name"), "status": d.get("status"), "path": d.get("path"), "labels": d.get("labels"),
             "run_dir": d.get("run_dir")} for d in meta.get("datasets") or []]
    s.tables.append(table(pd.DataFrame(rows), "study-table-datasets", "Datasets", "study.json (datasets)"))
    vs = meta.get("versions") or {}
    s.tables.append(table(pd.DataFrame([{"package": k, "version": str(v)} for k, v in vs.items()]),
                          "study-table-versions", "Versions", "study.json (versions)"))
    s.tables = [t for t in s.tables if t is not None]
    sections.append(s)
    return sections


def is_study(path: Path) -> bool:
    return (path / "study.json").is_file() and not (path / "run.json").is_file()


def study_datasets(study_dir: Path, meta: dict) -> dict[str, Path]:
    """Each dataset's run folder that exists (study order)."""
    out = {}
    for d in meta.get("datasets") or []:
        name = str(d.get("name"))
        rel = d.get("run_dir") or f"runs/{name}"
        p = Path(rel) if Path(rel).is_absolute() else study_dir / rel
        if (p / "run.json").is_file():
            out[name] = p
    return out


# ---------------------------------------------------------------------------------------------------------------
# the page


def build_groups(source: "str | Path | Run") -> tuple[str, str, list[Group]]:
    """(title, subtitle, groups) of a run directory, a loaded run, or a study folder."""
    if isinstance(source, Run):
        run = source
        name = run.dir.name if run.dir is not None else "run"
        return (f"semscale report: {name}", _run_subtitle(run),
                [Group("run", "Run", " · ".join(_verdicts(run)), run_sections(run))])
    path = Path(source)
    if path.name in ("run.json", "study.json"):
        path = path.parent
    if not path.is_dir():
        raise InputError("no such run or study folder", file=path)
    if is_study(path):
        from core.util.tables import read_user_json

        meta = read_user_json(path / "study.json")
        runs = study_datasets(path, meta)
        if not runs:
            raise InputError("this study has no dataset run yet (no runs/<dataset>/run.json)", file=path)
        groups = [Group("study", "Study summary", f"{len(runs)} datasets: {', '.join(runs)}",
                        _study_sections(path, meta))]
        for name, d in runs.items():
            run = load_run(d)
            prefix = f"ds-{_slug(name)}-"
            verdicts = _verdicts(run)
            groups.append(Group(f"ds-{_slug(name)}", f"Dataset {name}",
                                _run_subtitle(run) + ("; " + "; ".join(verdicts) if verdicts else ""),
                                run_sections(run, prefix=prefix)))
        status = meta.get("status", "?")
        return f"semscale study report: {path.name}", f"study {status} · {len(runs)} datasets", groups
    run = load_run(path)
    return build_groups(run)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)


def render(source: "str | Path | Run") -> str:
    """The report as one HTML string."""
    import jinja2

    from core.reporting.template import TEMPLATE

    title, subtitle, groups = build_groups(source)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["svg"] = lambda s: jinja2.utils.markupsafe.Markup(s)
    return env.from_string(TEMPLATE).render(title=title, subtitle=subtitle, groups=groups,
                                            generated=now(), version=versions().get("semscale", ""))


def write_report(source: "str | Path | Run", out: "str | Path | None" = None) -> Path:
    """Write the report of a run or a study folder; ``out`` defaults to ``report.html`` inside it."""
    from core.util.files import atomic_write_text

    if out is None:
        base = source.dir if isinstance(source, Run) else Path(source)
        if base is None:
            raise InputError("this run has no folder (out=None); give out= for the report", field="out")
        if base.name in ("run.json", "study.json"):
            base = base.parent
        out = base / "report.html"
    out = Path(out)
    text = render(source)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    return out


__all__ = ["write_report", "render", "build_groups", "sweep_command", "class_changes", "helpful_names", "harmful",
           "adaptive_ensembles", "is_study"]
