"""``semscale`` command line: the same engine and run directories as the app.

Exit codes: 0 success, 2 bad input (one line naming file, line and field), 130 when
interrupted by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP (finished levels are kept in each
case), 1 for anything unexpected (``--debug`` or ``SEMSCALE_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence

from core.labels.controls import SYNONYMS
from core.util import config as defaults
from core.models.registry import parse_backbone
from core.util.config import PRECISIONS, BackboneSpec, int_list
from core.util.errors import InputError, RemoteFailure, WeightsUnavailable
from core.util.events import CancelToken, ImageSkipped, LevelFinished, Log, Progress, RunFinished, Stage, Status, stage_title

EXIT_OK, EXIT_ERROR, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

def _kind(row: dict) -> str:
    """" random-words" for a control curve's row, "" for the synonyms."""
    kind = row.get("names", SYNONYMS)
    return "" if kind == SYNONYMS else f" {kind}"


class TqdmReporter:
    """Renders engine events as tqdm bars and log lines on stderr."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bars: dict[tuple[str, str], object] = {}
        self.n_skipped = 0

    def __call__(self, ev) -> None:
        from tqdm import tqdm

        if isinstance(ev, Progress):
            if self.quiet or ev.stage in (Stage.LOAD_MODEL, Stage.SCORE):
                return
            key = (ev.backbone, ev.stage)
            bar = self.bars.get(key)
            if bar is None:
                unit = Stage(ev.stage).unit if ev.stage in Stage._value2member_map_ else "img"
                bar = tqdm(total=ev.total, desc=f"{ev.backbone}: {stage_title(ev.stage)}",
                           unit=unit, file=sys.stderr, leave=True, dynamic_ncols=True)
                self.bars[key] = bar
            if bar.total != ev.total:
                bar.total = ev.total
            bar.update(ev.done - bar.n)
            if ev.done >= ev.total:
                bar.close()
                self.bars.pop(key, None)
        elif isinstance(ev, Log):
            if ev.level != "info" or not self.quiet:
                tqdm.write(f"[{ev.level}] {ev.message}" if ev.level != "info" else ev.message, file=sys.stderr)
        elif isinstance(ev, ImageSkipped):
            self.n_skipped += 1
        elif isinstance(ev, LevelFinished):
            r = ev.row
            if not self.quiet:
                tqdm.write(
                    f"{ev.backbone}{_kind(r)} ordering {ev.ordering} level {ev.level:>3}: {r['n_categories']:>5} categories  "
                    f"top1 {r['top1']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]  top5 {r['top5']:.3f}",
                    file=sys.stderr,
                )
        elif isinstance(ev, RunFinished):
            for bar in self.bars.values():
                bar.close()
            self.bars.clear()


# ---------------------------------------------------------------- commands


def graceful_sigint(cancel: CancelToken):
    """First Ctrl-C: stop after the current batch, keeping finished work; second: stop now."""

    def on_sigint(signum, frame):
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        print("\ninterrupt: stopping after the current batch (press Ctrl-C again to stop now)", file=sys.stderr)

    return on_sigint


class Stopped(KeyboardInterrupt):
    """A second stop signal: stop now. ``status`` is what run.json records."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.status = "interrupted"


# what a scheduler, `timeout`, a logout or `systemctl stop` send; they stop a run like Ctrl-C
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


@contextmanager
def stop_signals(cancel: CancelToken):
    """Ctrl-C, SIGTERM and SIGHUP stop after the current batch (a second one stops now).

    Yields a one-item list that holds the signal that stopped the run (None for none or
    Ctrl-C), so the command exits 128 + that signal's number.
    """
    received: list[Optional[int]] = [None]

    def on_stop(signum, frame):
        if cancel.cancelled:
            raise Stopped(signum)
        received[0] = signum
        name = signal.Signals(signum).name
        cancel.cancel(reason=f"stopped by {name}", status="interrupted")
        print(f"\n{name}: stopping after the current batch", file=sys.stderr)

    old = {sig: signal.signal(sig, on_stop) for sig in STOP_SIGNALS}
    old[signal.SIGINT] = signal.signal(signal.SIGINT, graceful_sigint(cancel))
    try:
        yield received
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _stop_code(received: list[Optional[int]], err: Optional[BaseException] = None) -> int:
    signum = getattr(err, "signum", None) or received[0]
    return 128 + int(signum) if signum else EXIT_INTERRUPTED


def _backbones_file(path: str) -> list:
    """Backbones from a CSV (model,pretrained,checkpoint,label columns) or a JSON list."""
    from core.util.config import BackboneSpec
    from core.util.tables import read_user_csv, read_user_json

    p = Path(path)
    if not p.is_file():
        raise InputError("backbones file not found", file=path)
    if p.suffix.lower() == ".json":
        items = read_user_json(p)
        if not isinstance(items, list):
            raise InputError('expected a list of {"model": ..., "pretrained"|"checkpoint": ...}', file=path, line=1)
    else:
        df = read_user_csv(p, ["model"], "backbones")
        df.columns = [str(c).strip().lower() for c in df.columns]
        items = df.to_dict("records")
    specs = []
    for i, it in enumerate(items):
        if not isinstance(it, dict) or not it.get("model"):
            raise InputError("each backbone needs a 'model'", file=path, line=i + 2 if p.suffix != ".json" else None,
                             field="model")
        options = it.get("options") or {}  # a kind's own options (JSON files), e.g. a CLIP server's timeouts
        if not isinstance(options, dict):
            raise InputError("'options' must be an object of a kind's options", file=path, field="options")
        specs.append(BackboneSpec(model=it["model"], pretrained=it.get("pretrained") or None,
                                  checkpoint=it.get("checkpoint") or None, label=it.get("label") or None,
                                  options=dict(options)))
    return specs


VLM_OPTIONS = {  # command-line option -> the spec option of the vlm: and openai: kinds
    "vlm_mode": "mode", "vlm_prompt": "prompt", "max_new_tokens": "max_new_tokens", "vlm_norm": "norm",
    "vlm_calibrate": "calibrate", "max_concurrency": "max_concurrency", "request_timeout": "request_timeout",
    "api_key_env": "api_key_env", "allow_insecure": "allow_insecure",
}


def _vlm_options(args, spec) -> None:
    """Put the VLM options given on the command line into a vlm:/openai: spec's options."""
    from core.models.registry import kind_of

    entry = kind_of(spec.model)
    for arg, opt in VLM_OPTIONS.items():
        value = getattr(args, arg, None)
        if value not in (None, False) and opt in entry.options:
            spec.options.setdefault(opt, value)


def _backbone_specs(args) -> list:
    specs = _backbone_specs_(args)
    for spec in specs:
        _vlm_options(args, spec)
    return specs


def _backbone_specs_(args) -> list:
    models = args.model or []
    if args.backbones:
        specs = _backbones_file(args.backbones)
        for s in specs:
            s.device, s.precision, s.decode = args.device, args.precision, args.decode
        if not models:
            return specs
    else:
        specs = []
    if not models and not specs:
        raise InputError("give at least one --model (e.g. --model demo-vit)", field="model")
    for m in models:
        # "MODEL@TAG" or "MODEL=CHECKPOINT" let several backbones share one command line
        one = len(models) == 1
        specs.append(parse_backbone(m, pretrained=args.pretrained if one else None,
                                    checkpoint=args.checkpoint if one else None,
                                    device=args.device, precision=args.precision))
        specs[-1].decode = args.decode
    server = _server_options_given(args)
    for spec in specs:
        if server and spec.model.strip().startswith("clip-server:"):
            spec.options = {**server, **(spec.options or {})}  # a backbones file's own options win
    return specs


def _server_options_given(args) -> dict:
    """The CLIP-server options given on the command line (the kind's defaults apply to the rest)."""
    names = ("max_concurrency", "request_timeout", "ca_bundle", "auth_env")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _probe_shots(args) -> list:
    """--probe-shots 1,2,4,16,all, checked here so a typo stops the run before anything is loaded."""
    from core.stats.probe import parse_probe_shots

    return parse_probe_shots(getattr(args, "probe_shots", None))


def cmd_sweep(args) -> int:
    from core.labels.controls import parse_controls
    from core.pipeline.runner import SweepConfig, run_sweep

    if not args.dataset and not args.embeddings:
        raise InputError("give --dataset (images) or --embeddings (a store written by 'semscale embed')", field="dataset")
    if args.embeddings and not (args.model or args.backbones):
        from core.embedding.store import store_specs

        specs = store_specs(args.embeddings, device=args.device)  # each store's own backbone, for the text side
    else:
        specs = _backbone_specs(args)
    config = SweepConfig(
        dataset=args.dataset or args.embeddings[0], out=args.out, backbones=specs, labels=args.labels,
        templates=args.templates, levels=args.levels, mode=args.mode, orderings=args.orderings, seed=args.seed,
        batch_size=args.batch_size, num_workers=args.workers, cache_dir=args.cache_dir, use_cache=not args.no_cache,
        bootstrap=args.bootstrap, allow_absolute_paths=args.allow_absolute_paths, **dataset_options(args),
        save_predictions=not args.no_predictions, save_logits={"auto": None, "always": True, "never": False}[args.logits],
        ensemble_shots=int_list(args.ensemble_shots, "ensemble-shots"), ensemble_splits=args.ensemble_splits,
        class_frequency=args.class_frequency, external_predictions=args.external_predictions or [],
        embeddings=args.embeddings or [], controls=parse_controls(args.controls), vocabulary=args.vocabulary,
        alpha=args.alpha, overwrite=args.overwrite, vlm_match=args.vlm_match,
        perturb=args.perturb or [],
        similarity_k=args.similarity_k, extend_names=args.extend_names or "", extend_to=args.extend_to,
        probe_shots=_probe_shots(args), probe_solver=args.probe_solver,
        save_names=not args.no_names_table,
    )
    reporter = TqdmReporter(quiet=args.quiet)
    cancel = CancelToken()

    with stop_signals(cancel) as received:
        try:
            result = run_sweep(config, emit=reporter, cancel=cancel)
        except KeyboardInterrupt as err:
            print(f"interrupted; finished levels kept in {args.out}", file=sys.stderr)
            return _stop_code(received, err)
    if result.status in ("cancelled", "interrupted"):
        print(f"interrupted; finished levels kept in {result.run_dir}", file=sys.stderr)
        return _stop_code(received)
    for name, s in result.summary.get("backbones", {}).items():
        t = s["threshold"]
        print(f"{name}: peak top-1 {t['peak_top1']:.3f} at level {t['peak_level']} ({_verdict(t)}); "
              f"{s['n_images_scored']} images scored, {s['images_from_cache']} from cache, "
              f"{s['n_skipped']} skipped", file=sys.stderr)
        for control, c in s.get("controls", {}).items():
            print(f"{name} {control}: peak top-1 {c['peak_top1']:.3f} at level {c['peak_level']} ({_verdict(c)})",
                  file=sys.stderr)
        for control, effects in s.get("semantic_effect", {}).items():
            parts = [f"level {lv}: {e['effect']:+.3f} [{e['ci_low']:+.3f}, {e['ci_high']:+.3f}] p={e['p_value']:.3g}"
                     for lv, e in effects.items() if int(lv) > 1]
            if parts:
                print(f"{name} semantic effect (synonyms - {control}): " + "; ".join(parts), file=sys.stderr)
    for level, e in result.summary.get("ensembles", {}).items():
        line = f"level {level}: best single {e['best_single']:.3f}, oracle {e['oracle']:.3f} (+{e['oracle_gain']:.3f})"
        for k, methods in sorted(e.get("adaptive", {}).items()):
            line += f"; {k}-shot " + ", ".join(f"{m} {v:.3f}" for m, v in methods.items())
        print(line, file=sys.stderr)
    rob = result.summary.get("robustness")
    if rob:
        print(f"robustness: {len(rob['perturbations'])} perturbation(s) x severity scored "
              f"({rob['images_encoded']} perturbed images encoded, {rob['images_from_cache']} from the cache); "
              "see robustness.csv", file=sys.stderr)
    for row in result.summary.get("similarity", []):  # similarity.csv's overall rows
        print(f"{row['backbone_a']} vs {row['backbone_b']}: linear CKA {row['cka']:.3f}, "
              f"k-NN agreement {row['knn_agreement']:.3f}", file=sys.stderr)
    settled = result.summary.get("until_settled")
    if settled:
        print(f"until settled: levels {', '.join(map(str, settled['levels']))} of "
              f"{', '.join(map(str, settled['candidates']))}", file=sys.stderr)
    for name, shots in result.summary.get("probes", {}).items():  # --probe-shots
        print(f"{name} linear probe vs zero-shot on the same held-out images: " + "; ".join(
            f"{k}-shot {p['top1']:.3f} vs {p['zeroshot_top1']:.3f}" for k, p in shots.items()), file=sys.stderr)
    for row in result.summary.get("frequency", []):
        print(f"{row['backbone']} level {row['level']}: Spearman(recall, frequency) = {row['spearman_rho']:.3f} "
              f"(p={row['p_value']:.3g}, {row['n_classes']} classes)", file=sys.stderr)
    print(result.run_dir)
    return EXIT_OK


def _verdict(t: dict) -> str:
    """"declining: McNemar p=0.003, Holm, last level vs peak; peak in 81% of resamples"."""
    text = t.get("trend", "?")
    if t.get("p_value") is not None:
        text += f": McNemar p={t['p_value']:.3g}, Holm, {t.get('test', '')}"
    share = (t.get("peak_share") or {}).get(t.get("peak_level"))
    if share is None:
        share = (t.get("peak_share") or {}).get(str(t.get("peak_level")))
    if share is not None:
        text += f"; peak in {share:.0%} of resamples"
    spread = t.get("orderings")
    if spread:
        text += "; orderings: " + ", ".join(f"{v} {k}" for k, v in spread["trend_counts"].items()) + \
                "; peak levels " + ", ".join(f"{k}: {v}" for k, v in sorted(spread["peak_level_counts"].items()))
    return text


def cmd_embed(args) -> int:
    """Encode every image once into an embedding store; finished shards survive a failure or Ctrl-C."""
    import json

    from core.embedding.distributed import EmbedConfig, run_embed
    from core.util.events import Cancelled

    runtime_env = None
    if args.runtime_env:
        try:
            runtime_env = json.loads(args.runtime_env)
        except json.JSONDecodeError as err:
            raise InputError(f"invalid JSON: {err.msg}", field="runtime-env") from None
    config = EmbedConfig(
        dataset=args.dataset, out=args.out, engine=args.engine, batch_size=args.batch_size, shard_size=args.shard_size,
        backbone=BackboneSpec(model=args.model, pretrained=args.pretrained, checkpoint=args.checkpoint,
                              device=args.device, precision=args.precision, decode=args.decode),
        num_workers=args.workers, cache_dir=args.cache_dir, use_cache=not args.no_cache, address=args.address,
        num_gpus_per_worker=args.num_gpus_per_worker, concurrency=args.concurrency, num_cpus=args.num_cpus,
        runtime_env=runtime_env, allow_absolute_paths=args.allow_absolute_paths, **dataset_options(args),
    )
    reporter = TqdmReporter(quiet=args.quiet)
    cancel = CancelToken()

    def shards_done() -> str:
        try:
            from core.embedding.store import open_store

            st = open_store(args.out)
            return f"{len(st.shards)} of {st.manifest['n_shards']} shards are in {args.out}"
        except Exception:
            return f"finished shards are kept in {args.out}"

    with stop_signals(cancel) as received:
        try:
            result = run_embed(config, emit=reporter, cancel=cancel)
        except (Cancelled, KeyboardInterrupt) as err:
            print(f"interrupted; {shards_done()}; run the same command again to resume", file=sys.stderr)
            return _stop_code(received, err)
        except (InputError, WeightsUnavailable):
            raise
        except Exception as err:
            from core.embedding.distributed import short_error

            if cancel.cancelled:
                print(f"interrupted; {shards_done()}; run the same command again to resume", file=sys.stderr)
                return _stop_code(received)
            print(f"semscale: error: embedding failed ({short_error(err)}); {shards_done()}; "
                  "run the same command again to resume", file=sys.stderr)
            return EXIT_ERROR
    print(f"{result.n_rows} images embedded, {result.n_skipped} skipped; {result.shards_written} shards written now, "
          f"{result.shards_before} already done ({result.n_shards} in all); "
          f"{result.images_per_second:.1f} images/s with the {result.engine} engine", file=sys.stderr)
    print(result.store)
    return EXIT_OK


def _vlm_arguments(s: argparse.ArgumentParser) -> None:
    """Options of the vision-language kinds (--model vlm:PATH_OR_HF_ID, --model openai:MODEL@URL)."""
    from core.models.prompts import DEFAULT_MAX_NEW_TOKENS, DEFAULT_PROMPT, VLM_MODES, VLM_NORMS
    from core.stats.answers import MATCH_RULES

    g = s.add_argument_group("vision-language models (--model vlm:PATH_OR_HF_ID or openai:MODEL@URL)")
    g.add_argument("--vlm-mode", choices=VLM_MODES, default=None,
                   help="open: one answer per image, matched at every level (default); closed: the prompt lists "
                        "the level's categories; likelihood: each name's log-probability as the answer (local only)")
    g.add_argument("--vlm-prompt", default=None, help=f"the question (default \"{DEFAULT_PROMPT}\")")
    g.add_argument("--max-new-tokens", type=int, default=None, help=f"answer length (default {DEFAULT_MAX_NEW_TOKENS})")
    g.add_argument("--vlm-match", choices=MATCH_RULES, default="word",
                   help="word: a name's words as whole words of the answer (default); substring: the published "
                        "label.lower() in answer.lower()")
    g.add_argument("--vlm-norm", choices=VLM_NORMS, default=None,
                   help="likelihood: mean (default) or sum of the name's token log-probs")
    g.add_argument("--vlm-calibrate", action="store_true",
                   help="likelihood: subtract each name's score without the image (prompt-only prior)")
    g.add_argument("--api-key-env", default=None,
                   help="endpoints: environment variable holding the key (default OPENAI_API_KEY); the key itself "
                        "is never written anywhere")
    g.add_argument("--allow-insecure", action="store_true",
                   help="endpoints: allow sending the key over plain http to another machine")


def cmd_answers(args) -> int:
    """The most frequent unmatched answers per class, as CSV (synonym candidates)."""
    import pandas as pd

    from core.stats.answers import frequent_unmatched

    path = Path(args.run) / "answers.csv"
    if not path.is_file():
        raise InputError("this run has no answers.csv (it had no answering VLM backbone)", file=path)
    df = pd.read_csv(path, keep_default_na=False, dtype={"answer": str, "matched_classes": str, "image": str})
    if args.backbone:
        if args.backbone not in set(df["backbone"]):
            raise InputError(f"no backbone '{args.backbone}' in answers.csv ({', '.join(sorted(set(df['backbone'])))})",
                             file=path, field="backbone")
        df = df[df["backbone"] == args.backbone]
    if args.cls:
        if args.cls not in set(df["true_class"]):
            raise InputError(f"no class '{args.cls}' in answers.csv", file=path, field="class")
        df = df[df["true_class"] == args.cls]
    top = frequent_unmatched(df, top=args.top)
    n = int((df.groupby(["backbone", "image"])["level"].transform("max") == df["level"]).sum())
    if args.out:
        top.to_csv(args.out, index=False)
    else:
        top.to_csv(sys.stdout, index=False)
    print(f"{int(top['count'].sum()) if len(top) else 0} of {n} answers shown matched no class", file=sys.stderr)
    return 0


def cmd_flips(args) -> int:
    """Images whose correctness changes between two levels (consecutive ones by default), as CSV."""
    from core.stats.flips import compute_flips, gained
    from core.results.runs import load_run

    run = load_run(args.run)
    if run.predictions.empty:
        raise InputError("this run has no predictions.csv rows (was it made with --no-predictions?)",
                         file=Path(run.dir) / "predictions.csv")
    flips = compute_flips(run.predictions, backbone=args.backbone, from_level=args.from_level,
                          to_level=args.to_level, true_class=args.cls, ordering=args.ordering, names=args.names)
    n_gained = int(gained(flips).sum()) if len(flips) else 0
    print(f"{len(flips)} flips: {n_gained} gained, {len(flips) - n_gained} lost", file=sys.stderr)
    if args.out:
        flips.to_csv(args.out, index=False)
        print(args.out)
    else:
        flips.to_csv(sys.stdout, index=False)
    return EXIT_OK


def cmd_report(args) -> int:
    """One self-contained HTML report of a run or a study folder."""
    from core.reporting.report import write_report

    out = write_report(args.run, args.out)
    print(out)
    return EXIT_OK


def cmd_compare(args) -> int:
    """Runs of one dataset side by side: their curves, and for runs whose label files differ, which
    names each class gained, lost or re-ranked and how its recall changed."""
    import pandas as pd

    from core.results.compare import compare_names, comparison_table, labels_differ, read_compared_run

    runs = [read_compared_run(p) for p in args.runs]
    table = comparison_table(runs)
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_colwidth", 60):
        print(table.to_string(index=False) if len(table) else "(no finished levels to compare)")
        frames = []
        for r in runs[1:]:
            if not labels_differ(runs[0].config, r.config):
                continue
            names = compare_names(runs[0].path, r.path, backbone=args.backbone, level=args.level)
            changed = names[(names["added"] != "") | (names["removed"] != "") | (names["reranked"] != "")]
            shown = names if args.all_classes else changed
            print(f"\nnames of {r.title} against {runs[0].title} ({len(changed)} of {len(names)} classes changed; "
                  f"recall at level {names['level'].iloc[0] if len(names) else '?'}):")
            print(shown.drop(columns=["level"]).to_string(index=False, float_format=lambda v: f"{v:.3f}")
                  if len(shown) else "(no class changed)")
            frames.append(names.assign(run=r.title))
    if args.out and frames:
        pd.concat(frames, ignore_index=True).to_csv(args.out, index=False)
        print(args.out, file=sys.stderr)
    return EXIT_OK


class StudyReporter(TqdmReporter):
    """A study's overall bar (datasets done) above the per-dataset stage bars."""

    def __init__(self, quiet: bool = False) -> None:
        super().__init__(quiet)
        self.overall = None

    def __call__(self, ev) -> None:
        from tqdm import tqdm

        from core.study.study import DatasetFinished, DatasetStarted

        if isinstance(ev, DatasetStarted):
            if self.overall is None:
                self.overall = tqdm(total=ev.total, desc="study", unit="dataset", file=sys.stderr, position=0,
                                    leave=True, dynamic_ncols=True, disable=self.quiet)
            self.overall.set_postfix_str(ev.name)
            tqdm.write(f"[{ev.index + 1}/{ev.total}] {ev.name}: {ev.action} ({ev.reason})", file=sys.stderr)
        elif isinstance(ev, DatasetFinished):
            line = f"[{ev.index + 1}/{ev.total}] {ev.name}: {ev.status}"
            if ev.status != "skipped":
                line += f", {ev.images_encoded} images encoded"
            if ev.error:
                line += f" ({ev.error})"
            tqdm.write(line, file=sys.stderr)
            if self.overall is not None:
                self.overall.update(1)
                if self.overall.n >= self.overall.total:
                    self.overall.close()
        else:
            super().__call__(ev)


def cmd_study(args) -> int:
    """Run every dataset of a study file (resumable); summaries are written after each dataset."""
    from core.study.study import StudyOptions, load_study, run_study

    study = load_study(args.study)
    options = StudyOptions(out=args.out, overwrite=args.overwrite, rerun=args.rerun or [], engine=args.engine,
                           address=args.address, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                           num_workers=args.workers)
    reporter = StudyReporter(quiet=args.quiet)
    cancel = CancelToken()
    with stop_signals(cancel) as received:
        try:
            result = run_study(study, options, emit=reporter, cancel=cancel)
        except KeyboardInterrupt as err:
            print(f"interrupted; finished datasets are kept in {args.out}", file=sys.stderr)
            return _stop_code(received, err)
    counts: dict[str, int] = {}
    for d in result.datasets.values():
        counts[d["status"]] = counts.get(d["status"], 0) + 1
    print(f"study {result.status}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
          + f"; summaries in {result.out}", file=sys.stderr)
    print(result.out)
    if result.status in ("cancelled", "interrupted"):
        return _stop_code(received)
    return EXIT_OK if result.status == "completed" else EXIT_ERROR


def cmd_demo_study(args) -> int:
    from core.demo.study import write_demo_study

    print(write_demo_study(args.out, n_per_class=args.per_class))
    return EXIT_OK


def cmd_validate(args) -> int:
    from core.data import load_dataset, validate
    from core.labels.labelset import load_labels

    ds = load_dataset(args.dataset, allow_absolute=args.allow_absolute_paths, **dataset_options(args))
    labels = load_labels(args.labels, ds.classes, args.data_root) if args.labels else None
    report = validate(ds, labels, check_images=not args.quick)
    print(report.to_text())
    # errors (unreadable files, classes without images or without names) fail; warnings alone do not
    return EXIT_OK if report.ok else EXIT_INPUT


def cmd_models(args) -> int:
    from core.models.openclip import list_models

    for arch, tags in list_models():
        if args.filter and args.filter.lower() not in arch.lower():
            continue
        print(f"{arch:<40} {', '.join(tags) if tags else '(no pretrained weights; use --checkpoint)'}")
    return EXIT_OK


def cmd_demo_data(args) -> int:
    from core.demo.data import write_demo_dataset

    out = write_demo_dataset(args.out, seed=args.seed, n_per_class=args.per_class)
    print(out)
    return EXIT_OK


def cmd_suggest(args) -> int:
    """Fill a labels file (or a bare class list) up to --per-class names from WordNet / embedding neighbours."""
    from core.models.openclip import load_backbone
    from core.embedding.cache import EmbeddingCache
    from core import synonyms as syn
    from core.labels.presets import is_preset, preset_labels
    from core.labels.labelset import load_labels, load_templates

    if args.labels:
        labels = load_labels(args.labels, data_root=args.data_root)
    elif is_preset(args.classes):
        labels = preset_labels(args.classes, data_root=args.data_root)
    else:
        labels = syn.load_class_list(args.classes)
    if args.per_class < 1:
        raise InputError(f"must be at least 1, got {args.per_class}", field="per-class")
    sources = []
    for item in args.source or ["wordnet"]:
        for s in item.split(","):
            s = s.strip()
            if s not in syn.SUGGESTION_SOURCES:
                raise InputError(f"unknown source '{s}' (choose from {', '.join(syn.SUGGESTION_SOURCES)})",
                                 field="source")
            sources.append(s)
    if args.senses < 0:
        raise InputError(f"must be 0 (all senses) or more, got {args.senses}", field="senses")
    if args.max_vocabulary < 1:
        raise InputError(f"must be at least 1, got {args.max_vocabulary}", field="max-vocabulary")
    vocabulary = syn.load_vocabulary(args.vocabulary) if args.vocabulary else None
    reader = None
    if "wordnet" in sources or ("neighbours" in sources and vocabulary is None):
        try:
            reader = syn.open_wordnet(args.wordnet)
        except InputError as e:
            if "wordnet" in sources:
                raise
            raise InputError(f"the neighbours source needs --vocabulary FILE (one word per line) or WordNet: {e}",
                             field="vocabulary") from None
    backbone, templates, cache = None, None, None
    reporter = TqdmReporter(quiet=args.quiet)
    if "neighbours" in sources:
        if not args.model:
            raise InputError("--source neighbours needs --model (and --pretrained or --checkpoint)", field="model")
        templates = load_templates(args.templates)
        backbone = load_backbone(BackboneSpec(model=args.model, pretrained=args.pretrained,
                                              checkpoint=args.checkpoint, device=args.device,
                                              precision=args.precision))
        cache = None if args.no_cache else EmbeddingCache(args.cache_dir)
    try:
        report = syn.suggest_for_labels(
            labels, args.per_class, sources=sources, wordnet_reader=reader, include_related=args.related,
            max_senses=args.senses or None, backbone=backbone, templates=templates, vocabulary=vocabulary,
            max_vocabulary=args.max_vocabulary, min_similarity=args.min_similarity, cache=cache,
            keep_collisions=args.keep_collisions, emit=reporter)
    finally:
        if cache is not None:
            cache.close()
    out = report.labels
    try:
        out.save(args.out)
    except OSError as e:
        raise InputError(f"cannot write the labels file ({e.strerror or e})", file=args.out, field="out") from None
    if Path(args.out).suffix.lower() == ".json" and not args.quiet:
        print("note: JSON labels files have no source column; write .csv to keep where each name came from",
              file=sys.stderr)
    if report.wordnet and not args.quiet:
        print(report.wordnet, file=sys.stderr)
    short = 0
    for c, names in out.names.items():
        n = len(names)
        short += n < args.per_class
        if args.quiet:
            continue
        added = out.sources[c][len(names) - report.added.get(c, 0):]
        kinds: dict[str, int] = {}
        for src in added:
            kind = src.split(":")[0].split(";")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        line = f"{c}: {n} names"
        if kinds:
            line += " (+" + ", ".join(f"{v} {k}" for k, v in kinds.items()) + ")"
        if report.dropped.get(c):
            line += f"; {report.dropped[c]} collision(s) dropped"
        if n < args.per_class:
            line += f"; only {n} of {args.per_class} found"
        print(line, file=sys.stderr)
    notes = out.warnings[len(labels.warnings):]
    for w in notes[:10] if not args.quiet else []:
        print(f"[warning] {w}", file=sys.stderr)
    if len(notes) > 10 and not args.quiet:
        print(f"[warning] … and {len(notes) - 10} more", file=sys.stderr)
    print(f"{len(out.names)} classes, {sum(report.added.values())} names added, "
          f"{sum(report.dropped.values())} collisions dropped, {short} classes below {args.per_class} names"
          + (f"; vocabulary {report.vocabulary_size} names" if report.vocabulary_size else ""), file=sys.stderr)
    print(args.out)
    return EXIT_OK


DATASET_HELP = ("ImageFolder, CSV/Parquet manifest, CIFAR folder, WebDataset .tar shards, a Hugging Face save_to_disk "
                "folder, a parquet file or folder of shards with an image column, hf:ORG/NAME[:SPLIT] or tv:NAME "
                "(torchvision, e.g. tv:CIFAR10)")


def add_dataset_options(p: argparse.ArgumentParser) -> None:
    """How to read Hugging Face / parquet / torchvision sources (shared by sweep, embed, validate)."""
    p.add_argument("--split", help="split of a Hugging Face or torchvision dataset (default: test, then validation, "
                                   "then the only one)")
    p.add_argument("--image-column", help="Hugging Face / parquet: column holding the images (default: image/img or "
                                          "the Image feature)")
    p.add_argument("--label-column", help="Hugging Face / parquet: column holding the labels (default: "
                                          "label/labels/fine_label or the ClassLabel feature)")
    p.add_argument("--data-root", help="torchvision datasets: folder they are in or are downloaded to (default: the "
                                       "user data folder)")


def dataset_options(args) -> dict:
    return {"split": args.split, "image_column": args.image_column, "label_column": args.label_column,
            "data_root": args.data_root}


def _parent(build) -> argparse.ArgumentParser:
    """A parent parser holding one group of options that several commands share."""
    parent = argparse.ArgumentParser(add_help=False)
    build(parent)
    return parent


def _weights_options(p: argparse.ArgumentParser) -> None:
    w = p.add_mutually_exclusive_group()
    w.add_argument("--pretrained", help="open_clip pretrained tag (see 'semscale models')")
    w.add_argument("--checkpoint", help="local checkpoint (state dict) file")


def _hardware_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=defaults.DEFAULT_DEVICE,
                   help="auto|cpu|cuda|mps (ray workers use cuda when given GPUs, else cpu)")
    p.add_argument("--precision", default=defaults.DEFAULT_PRECISION, choices=PRECISIONS)
    p.add_argument("--decode", default=defaults.DEFAULT_DECODE, choices=defaults.DECODERS,
                   help="JPEG decoding: draft (reduced scale, still >= the model input; default), exact (full size), "
                        "gpu (batched nvJPEG on a CUDA device)")


def _server_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("remote backbones (--model clip-server:URL, --model openai:MODEL@URL)")
    g.add_argument("--max-concurrency", type=int, default=None, metavar="N",
                   help="requests in flight at once (default 4); for a CLIP server --batch-size is the documents "
                        "per request")
    g.add_argument("--request-timeout", type=float, default=None, metavar="SECONDS",
                   help="seconds to wait for one answer before retrying (default 120)")
    g.add_argument("--ca-bundle", default=None, metavar="FILE",
                   help="CA certificate file for an https/grpcs server with a private certificate authority")
    g.add_argument("--auth-env", default=None, metavar="VAR",
                   help="send the value of environment variable VAR as the Authorization header "
                        "(e.g. 'Bearer TOKEN'); the value is never written anywhere")


def _cache_options(p: argparse.ArgumentParser) -> None:
    c = p.add_mutually_exclusive_group()
    c.add_argument("--cache-dir", help="embedding cache folder (default: the user cache folder)")
    c.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")


def _templates_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--templates", default=defaults.DEFAULT_TEMPLATES,
                   help="preset openai|simple|plain|clip_benchmark:NAME or a file, one template per line")


def _quiet_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", "-q", action="store_true")


def _paths_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-absolute-paths", action="store_true", help="let manifests use absolute paths")


def build_parser() -> argparse.ArgumentParser:
    from core import __version__

    weights, hardware, cache, templates, quiet, paths, server = (
        _parent(f) for f in (_weights_options, _hardware_options, _cache_options, _templates_options,
                             _quiet_options, _paths_options, _server_options))

    p = argparse.ArgumentParser(prog="semscale", description="Semantic-category scaling experiments with CLIP models.",
                                epilog="Add --debug anywhere on the line to see the traceback of an unexpected error.")
    p.add_argument("--version", action="version", version=f"semscale {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sweep", help="run a semantic-scaling sweep and write a run directory",
                       parents=[weights, templates, hardware, cache, paths, quiet, server])
    s.add_argument("--dataset", help=DATASET_HELP + " (not needed with --embeddings)")
    add_dataset_options(s)
    s.add_argument("--embeddings", action="append", metavar="STORE",
                   help="embedding store written by 'semscale embed': score its embeddings instead of images "
                        "(repeat, one store per backbone; --model optional, default: each store's backbone)")
    s.add_argument("--labels", help="labels file (CSV class,synonym rows or JSON {class: [names]}) or "
                                    "clip_benchmark:NAME; default: class names")
    s.add_argument("--model", action="append",
                   help="open_clip architecture, demo-vit/demo-resnet, hf-hub:ID, a config .json, or a CLIP server "
                        "(clip-server:http://HOST:PORT, clip-server:grpc://HOST:PORT); repeat for several "
                        "backbones (MODEL@TAG or MODEL=CHECKPOINT per backbone)")
    s.add_argument("--levels", help="comma-separated names-per-class levels (default 1,2,4,… up to the longest list), "
                                    "or until-settled: 1,2,4,… until the curve plateaus, declines or fluctuates")
    s.add_argument("--mode", choices=defaults.MODES, default=defaults.DEFAULT_MODE)
    s.add_argument("--orderings", type=int, default=defaults.DEFAULT_ORDERINGS,
                   help="number of name orderings (1 = the file's ranking)")
    s.add_argument("--seed", type=int, default=defaults.DEFAULT_SEED)
    s.add_argument("--batch-size", type=int, default=defaults.DEFAULT_BATCH_SIZE)
    s.add_argument("--workers", type=int, default=None, help="DataLoader worker processes (default: auto)")
    s.add_argument("--bootstrap", type=int, default=defaults.DEFAULT_BOOTSTRAP,
                   help="bootstrap resamples for the 95%% CI")
    s.add_argument("--no-predictions", action="store_true", help="do not write predictions.csv")
    s.add_argument("--logits", choices=("auto", "always", "never"), default="auto",
                   help="logits/ (float16 class scores per backbone and level): auto = unless it would take more "
                        f"than {defaults.DEFAULT_LOGITS_LIMIT_MB:g} MB")
    s.add_argument("--no-names-table", action="store_true",
                   help="do not write names.csv (each name's wins and leave-one-out credit per level)")
    s.add_argument("--backbones", help="CSV (model,pretrained,checkpoint,label) or JSON list of backbones")
    s.add_argument("--ensemble-shots", default=",".join(map(str, defaults.DEFAULT_ENSEMBLE_SHOTS)),
                   help="labelled images per class for adaptive ensembles ('' = none)")
    s.add_argument("--ensemble-splits", type=int, default=defaults.DEFAULT_ENSEMBLE_SPLITS,
                   help="seeded splits per shot count")
    s.add_argument("--probe-shots", metavar="1,2,4,16,all",
                   help="linear probes: a logistic regression on each backbone's image embeddings, fitted on this "
                        "many images per class ('all': half of each class) on the ensembles' seeded splits and "
                        "scored on the same held-out images as zero-shot (probes.csv)")
    s.add_argument("--probe-solver", choices=("optimum", "clip_benchmark"), default="optimum",
                   help="optimum: the regularised logistic regression solved exactly (default); clip_benchmark: "
                        "CLIP_benchmark's AdamW training (lr 0.1, 10 epochs, batches of 64), to reproduce its figures")
    s.add_argument("--class-frequency", metavar="FILE|wordfreq",
                   help="CSV class,frequency, or 'wordfreq' (web-text word frequency of each class's names, a proxy "
                        "for pretraining counts): correlate per-class accuracy with frequency")
    s.add_argument("--external-predictions", action="append", metavar="NAME=FILE",
                   help="CSV image,predicted_class of another system, compared as a pseudo-backbone (repeatable)")
    s.add_argument("--controls", metavar="random-words,random-chars",
                   help="control curves with the same name counts: random vocabulary words and/or random letter strings")
    s.add_argument("--vocabulary", help="word list for the random-words control, one per line "
                                        "(default: the bundled noun lexicon)")
    s.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the paired tests behind the threshold verdict (default 0.05)")
    s.add_argument("--out", required=True, help="run directory to write (refused when it already holds a run)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (every file of the old run is removed first)")
    s.add_argument("--perturb", action="append", metavar="NAME:SEVERITIES",
                   help="also score perturbed copies of the images (repeatable), e.g. gaussian_noise:1,3,5 or jpeg:5 "
                        "(severities 1-5; no severities: all five); writes robustness.csv. Names: "
                        "gaussian_noise, shot_noise, impulse_noise, defocus_blur, motion_blur, gaussian_blur, jpeg, "
                        "contrast, brightness, pixelate, elastic, rotation, crop_shift")
    s.add_argument("--extend-names", metavar="wordnet|neighbours[:MODEL]",
                   help="fill every class's names up to a power of two from WordNet (the bundled lexicon when no "
                        "system WordNet is found) or a backbone's text-embedding neighbours; added names are listed "
                        "with their source in labels_used.csv")
    s.add_argument("--extend-to", type=int, default=0, metavar="N",
                   help="the power of two --extend-names fills up to (default: the smallest at or above the "
                        "longest list)")
    s.add_argument("--similarity-k", type=int, default=10, metavar="K",
                   help="neighbours per image for similarity.csv's k-NN agreement (default 10; 0 = CKA only, "
                        "skipping the n x n neighbour search)")
    _vlm_arguments(s)
    s.set_defaults(func=cmd_sweep)

    a = sub.add_parser("answers", help="a VLM run's most frequent answers that matched no class, per class")
    a.add_argument("run", help="run directory (with answers.csv)")
    a.add_argument("--backbone", help="only this backbone")
    a.add_argument("--class", dest="cls", help="only this true class")
    a.add_argument("--top", type=int, default=5, help="answers per class (default 5)")
    a.add_argument("--out", help="write CSV here instead of printing it")
    a.set_defaults(func=cmd_answers)

    e = sub.add_parser("embed", help="encode a dataset's images once into an embedding store (local or Ray); resumable",
                       parents=[weights, hardware, cache, paths, quiet])
    e.add_argument("--dataset", required=True,
                   help=DATASET_HELP + "; WebDataset shards as a .tar, a folder of .tar files, a brace pattern "
                                       "data-{000..009}.tar, or several joined with '::'")
    add_dataset_options(e)
    e.add_argument("--model", required=True, help="open_clip architecture, demo-vit/demo-resnet, hf-hub:ID or a config .json")
    e.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this machine (DataLoader + embedding cache); ray: Ray Data on a Ray cluster")
    e.add_argument("--address", help="Ray cluster address (e.g. auto, ray://head:10001); default: start Ray here")
    e.add_argument("--num-gpus-per-worker", type=float, default=0.0, help="GPUs per encoder actor (ray engine)")
    e.add_argument("--concurrency", type=int, default=1, help="encoder actors (ray engine)")
    e.add_argument("--num-cpus", type=int, default=None, help="CPUs of a Ray instance started here (default: all)")
    e.add_argument("--runtime-env", help="Ray runtime_env as JSON, e.g. '{\"pip\": [\"semscale[scale]\"]}'")
    e.add_argument("--batch-size", type=int, default=defaults.DEFAULT_BATCH_SIZE, help="images per encoder batch")
    e.add_argument("--shard-size", type=int, default=None,
                   help="images per store shard, the unit of restart (default 1000; a resumed store keeps its own)")
    e.add_argument("--workers", type=int, default=None, help="local engine: DataLoader worker processes")
    e.add_argument("--out", required=True, help="store folder to write (or resume)")
    e.set_defaults(func=cmd_embed)

    f = sub.add_parser("flips", help="images whose correctness changes between levels of a run (from predictions.csv)")
    f.add_argument("run", help="run directory (or its run.json)")
    f.add_argument("--backbone", help="only this backbone (default: all)")
    f.add_argument("--from", dest="from_level", type=int, metavar="K", help="compare level K ...")
    f.add_argument("--to", dest="to_level", type=int, metavar="L", help="... with level L (default: each level with the next)")
    f.add_argument("--class", dest="cls", metavar="C", help="only images whose true class is C")
    f.add_argument("--ordering", type=int, default=None, help="only this name ordering (default: all)")
    f.add_argument("--names", metavar="KIND", help="only this names curve: synonyms or a control (default: all)")
    f.add_argument("--out", help="CSV file to write (default: print to stdout)")
    f.set_defaults(func=cmd_flips)
    r = sub.add_parser("report", help="one self-contained HTML report of a run or a study folder (figures, "
                                      "tables, verdicts, how to reproduce)")
    r.add_argument("run", help="run directory (or its run.json), or a study folder (with study.json)")
    r.add_argument("--out", help="HTML file to write (default: report.html inside the folder)")
    r.set_defaults(func=cmd_report)

    cp = sub.add_parser("compare", help="compare runs of one dataset: curves, and names and recall per class "
                                        "where the label files differ")
    cp.add_argument("runs", nargs="+", metavar="RUN", help="run directories; the first is the reference")
    cp.add_argument("--backbone", help="backbone for the per-class recall (default: the first both runs have)")
    cp.add_argument("--level", type=int, help="level for the per-class recall (default: the highest both scored)")
    cp.add_argument("--all-classes", action="store_true", help="list every class, not only those whose names changed")
    cp.add_argument("--out", help="CSV file for the per-class names comparison (with a run column)")
    cp.set_defaults(func=cmd_compare)
    st = sub.add_parser("study", help="run a study file (datasets x backbones, one protocol); resumable")
    st.add_argument("study", help="study file (TOML): protocol keys, [[backbones]] and [[datasets]] tables")
    st.add_argument("--out", required=True, help="study folder: runs/<dataset>/ and the summary files")
    st.add_argument("--overwrite", action="store_true", help="re-run every dataset, also completed ones")
    st.add_argument("--rerun", action="append", metavar="NAME", help="re-run this dataset (repeatable)")
    st.add_argument("--engine", choices=("local", "ray"), default="local",
                    help="ray: encode each dataset's images into embedding stores on a Ray cluster first")
    st.add_argument("--address", help="Ray cluster address (ray engine; default: start Ray here)")
    st.add_argument("--workers", type=int, default=None, help="DataLoader worker processes (default: auto)")
    stc = st.add_mutually_exclusive_group()
    stc.add_argument("--cache-dir", help="embedding cache folder shared by all datasets (default: the user cache)")
    stc.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    st.add_argument("--quiet", "-q", action="store_true")
    st.set_defaults(func=cmd_study)

    ds = sub.add_parser("demo-study", help="write a small offline demo study (three datasets, both demo backbones)")
    ds.add_argument("--out", required=True)
    ds.add_argument("--per-class", type=int, default=8)
    ds.set_defaults(func=cmd_demo_study)

    v = sub.add_parser("validate", help="check a dataset (and labels file) and print a report", parents=[paths])
    v.add_argument("--dataset", required=True, help=DATASET_HELP)
    add_dataset_options(v)
    v.add_argument("--labels")
    v.add_argument("--quick", action="store_true", help="do not open every image")
    v.set_defaults(func=cmd_validate)

    m = sub.add_parser("models", help="list open_clip architectures and pretrained tags")
    m.add_argument("filter", nargs="?", help="only architectures containing this text")
    m.set_defaults(func=cmd_models)

    d = sub.add_parser("demo-data", help="write the generated demo dataset (ImageFolder + labels + frequencies)")
    d.add_argument("--out", required=True)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--per-class", type=int, default=30)
    d.set_defaults(func=cmd_demo_data)

    g = sub.add_parser("suggest", help="add ranked synonyms per class (WordNet or embedding neighbours) to a labels file",
                       parents=[weights, templates, hardware, cache, quiet])
    gi = g.add_mutually_exclusive_group(required=True)
    gi.add_argument("--labels", help="labels file to extend (CSV class,synonym[,source] or JSON)")
    gi.add_argument("--classes", help="class list: imagenet|cifar10|cifar100, clip_benchmark:NAME, a text file (one per "
                                      "line), CSV, JSON, or a dataset folder")
    g.add_argument("--data-root", help="torchvision datasets folder, for clip_benchmark:NAME presets whose names are "
                                       "torchvision's (e.g. food101)")
    g.add_argument("--source", action="append", metavar="wordnet|neighbours",
                   help="where names come from (repeat or comma-separate to combine, in order; default wordnet)")
    g.add_argument("--per-class", type=int, required=True, help="names per class to reach (existing names included)")
    g.add_argument("--wordnet", help="WordNet database folder, or 'bundled' (default: $SEMSCALE_WORDNET, nltk data, "
                        "/usr/share/wordnet, then the noun lexicon bundled with semscale)")
    g.add_argument("--related", action="store_true", help="also use hypernyms and hyponyms one step away")
    g.add_argument("--senses", type=int, default=1, help="WordNet senses per class name to draw synonyms from (0 = all)")
    g.add_argument("--model", help="backbone for --source neighbours (open_clip name, demo-vit, hf-hub:ID, config .json)")
    g.add_argument("--vocabulary", help="word list for neighbours, one per line (default: WordNet noun lemmas)")
    g.add_argument("--max-vocabulary", type=int, default=3000, help="vocabulary size limit (text encoding is slow on CPU)")
    g.add_argument("--min-similarity", type=float, default=None, help="drop neighbours below this cosine similarity")
    g.add_argument("--keep-collisions", action="store_true",
                   help="keep names that belong to another class too (flagged in the source column)")
    g.add_argument("--out", required=True, help="labels file to write (CSV keeps the source column)")
    g.set_defaults(func=cmd_suggest)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug is accepted anywhere on the line (before or after the command)
    debug = "--debug" in argv or bool(os.environ.get("SEMSCALE_DEBUG"))
    args = parser.parse_args([a for a in argv if a != "--debug"])
    try:
        return args.func(args)
    except InputError as e:
        print(f"semscale: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except WeightsUnavailable as e:
        print(f"semscale: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except RemoteFailure as e:  # a server failed mid-run: an expected failure with a clear message, no traceback
        print(f"semscale: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as e:
        print("interrupted", file=sys.stderr)
        return _stop_code([None], e)
    except Exception as e:
        from core.util.files import disk_full_error, is_disk_full

        if is_disk_full(e):  # a store, a study summary, a labels file: one line naming the folder
            where = Path(e.filename).parent if getattr(e, "filename", None) else Path.cwd()
            print(f"semscale: error: {disk_full_error(e, where, 'a file there')}", file=sys.stderr)
            return EXIT_INPUT
        print(f"semscale: unexpected error: {type(e).__name__}: {e}", file=sys.stderr)
        if debug:
            raise
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
