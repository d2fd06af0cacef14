"""Run every benchmark and write benchmarks/results.md (``make bench``)."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from benchmarks.common import machine

HERE = Path(__file__).resolve().parent


def fmt_results(m: dict, r: dict, seconds: float, only: Optional[Sequence[str]] = None) -> str:
    out = [f"# Benchmark results", "",
           (f"Measured {dt.date.today().isoformat()} by `make bench` in {seconds / 60:.1f} minutes." if not only else
            f"Last updated {dt.date.today().isoformat()} by `python -m benchmarks --only {' '.join(only)}` "
            f"({seconds / 60:.1f} minutes); the other sections keep the figures of earlier runs."), "",
           "| machine | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in m.items()]
    load = float(str(m.get("load average at the end (1/5/15 min)", "0")).split("/")[1])
    if load > (m.get("cores") or 1):
        out += ["", f"Note: other CPU-heavy work shared this machine during the run (5-minute load {load:.1f} "
                f"on {m.get('cores')} cores), so absolute times are inflated; ratios measured within the run "
                "are less affected."]
    a = r.get("amortisation")
    if a:
        out += ["", "## Level amortisation and cache",
                f"{a['model']} (random weights), {a['n_images']} JPEG images 320x240, {a['n_names']} names "
                f"(8 classes x 32), levels {a['levels']}, template `plain`.", "",
                "| measurement | seconds | ratio | target |", "|---|---|---|---|",
                f"| 1-level sweep, cold image cache | {a['t_1level']:.1f} | 1 | |",
                f"| 6-level sweep, cold image cache | {a['t_6level']:.1f} | **{a['ratio_6_vs_1']:.2f}** | ≤ 1.2 |",
                f"| 1-level sweep, everything cold (text too) | {a['t_1level_cold']:.1f} | | |",
                f"| 6-level sweep, everything cold | {a['t_6level_cold']:.1f} | {a['ratio_6_vs_1_cold']:.2f} | (6 levels embed 32x more names) |",
                f"| warm re-run, labels re-ranked (same names) | {a['t_warm_reranked']:.1f} | **{a['ratio_warm_reranked']:.3f}** vs cold 6-level | ≤ 0.1 |",
                f"| warm re-run, 256 new names | {a['t_warm_new_names']:.1f} | {a['ratio_warm_new_names']:.3f} vs cold 6-level | (text of the new names is encoded) |",
                f"| text embeddings of all 256 names | {a['t_text_all_names']:.1f} | | |"]
    t = r.get("text")
    if t:
        out += ["", "## Text side", f"{t['n_prompts']:,} prompts (100 classes x 16 names x 80 templates), "
                f"{t['n_images']} images, backbone {t['model']}.", "",
                "| measurement | value |", "|---|---|",
                f"| total sweep (cold) | {t['t_total']:.1f} s |",
                f"| text encoding | {t['t_text']:.1f} s (**{100 * t['text_share']:.0f}%** of the total) |",
                f"| image encoding | {t['t_images']:.1f} s |",
                f"| re-run, everything cached | {t['t_rerun_cached']:.1f} s |",
                f"| ViT-B-32 text encoder on this CPU | {t['vitb32_prompts_per_s']:.0f} prompts/s → "
                f"{t['vitb32_text_hours_128k']:.1f} h for 128k prompts, once; cached afterwards |"]
    d = r.get("throughput")
    if d and a:
        out += ["", "## Throughput (CPU)", "| measurement | images/s |", "|---|---|",
                f"| decode + preprocess only ({d['workers']} DataLoader workers) | {d['decode_images_per_s']:.0f} |",
                f"| {a['model']} image encoder, whole pipeline | {a['encoder_images_per_s']:.1f} "
                f"(**{100 * a['encoder_images_per_s'] / d['decode_images_per_s']:.0f}%** of the decode-bound limit) |",
                "", "No GPU was available for these measurements; on a GPU the same pipeline runs with pinned "
                "memory and fp16/bf16 autocast (`--precision`)."]
    g = r.get("gui")
    if g:
        out += ["", "## GUI responsiveness", f"Event-loop gaps during a live {g['levels']}-level sweep with plots "
                f"updating ({g['n_images']} images, {g['model']}), sampled by a 5 ms timer.", "",
                "| worst gap | p99 gap | median gap | target |", "|---|---|---|---|",
                f"| {g['worst_ms']:.0f} ms | {g['p99_ms']:.0f} ms | {g['median_ms']:.0f} ms | < 50 ms |"]
    ge = r.get("gui_ensembles")
    if ge:
        w = ge["with"]
        out += ["", "## Ensemble stage: app vs CLI",
                f"The demo sweep ({w['n_images']} images, {' + '.join(w['backbones'])}, levels {w['levels']}, k-shot "
                f"{w['shots']} x {w['splits']} splits, `global` + `nlc`), once in the app's main window (engine on its "
                "worker thread, the GUI thread drawing) and once as `semscale sweep` runs it (the run's own config, a "
                "fresh process). The stage is timed from its first to its last progress event. A k-shot fit is "
                "hundreds of optimiser steps on tensors of a few thousand values; with two intra-op threads every step "
                "waited for a second thread to be scheduled, and with the cores busy (the GUI thread, other "
                "processes) the stage took minutes. Small fits now run on one thread (`core.stats.ensemble.ONE_THREAD_BELOW`).",
                "", "| engine | app (s) | CLI (s) | app / CLI | 1-min load | target |", "|---|---|---|---|---|---|"]
        for label, key in (("small fits on one thread", "with"), ("before: torch's default threads", "without")):
            x = ge.get(key)
            if x:
                out.append(f"| {label} | {min(x['app_s']):.1f} | {min(x['cli_s']):.1f} | **{x['ratio']:.2f}** | "
                           f"{x['load_average']:.1f} on {x['cores']} cores | ≤ 1.5 |")
    gt = r.get("gui_tabs")
    if gt:
        out += ["", "## GUI at ImageNet scale: switching Results tabs",
                f"A generated run of {gt['n_classes']} classes, {gt['n_images']:,} images and "
                f"{len(gt['backbones'])} backbones (`benchmarks/synthetic_run.py`), opened as `semscale-gui RUN_DIR` "
                f"in a 1600x1000 window (opening: {gt['open_s']:.1f} s in the background). Each Results tab is shown "
                "in turn twice (first visit: computed in a background task; second: from the per-run cache), then "
                "\"show all\" (1000 rows) on the heatmap and the confusion matrix. *Drawn*: from the click until its "
                "data is on screen. *Worst gap*: longest event-loop stall (5 ms timer) from the click until 150 ms "
                "after drawing; *GUI CPU*: the most CPU time the GUI thread itself used within one gap (wall-clock "
                f"gaps also contain time other processes held the CPU: 1-minute load {gt['load_average']:.1f} on "
                f"{gt['cores']} cores here).", "",
                "| tab | visit | drawn | worst gap | GUI CPU in that gap |", "|---|---|---|---|---|"]
        out += [f"| {x['tab']} | {x['round']} | {x['drawn_ms']:.0f} ms | {x['worst_gap_ms']:.0f} ms | "
                f"{x['worst_gap_cpu_ms']:.0f} ms |" for x in gt["rows"]]
        out += ["", f"Slowest first draw {gt['slowest_first_draw_ms']:.0f} ms (target: every tab within 1 s of its "
                f"data being loaded); GUI-thread CPU per gap at most {gt['worst_gap_cpu_ms']:.0f} ms (target for "
                f"the gap: 100 ms); wall-clock worst gap {gt['worst_gap_ms']:.0f} ms on this shared machine."]
    ry = r.get("ray")
    if ry:
        out += ["", "## Local vs Ray (this machine)", f"{ry['n_images']} images ({ry['image_size']}), {ry['model']}, "
                f"{ry['cpus']} CPUs, shards of {ry['shard_size']}.", "",
                "| engine | images/s | marginal images/s | notes |", "|---|---|---|---|",
                f"| local | {ry['local_images_per_s']} | {ry['local_marginal_images_per_s']} | |",
                f"| Ray (local instance) | {ry['ray_images_per_s']} | {ry['ray_marginal_images_per_s']} | "
                f"`ray.init` {ry['ray_init_seconds']} s, first run {ry['ray_first_run_seconds']} s |",
                "", f"Same rows: {ry['same_rows']}; largest embedding difference {ry['max_abs_diff']:.1e}. "
                "On one small machine Ray only adds overhead; it pays off when GPU workers on other "
                "machines encode in parallel (docs/scale-out.md)."]
    s = r.get("scaling")
    if s:
        out += ["", "## Scaling", "Tiny random-initialised backbone (32 px), 10 classes x 32 names, `--no-cache`, "
                "one subprocess per row.", "", "| images | levels | seconds | peak memory (MiB) |", "|---|---|---|---|"]
        out += [f"| {x['n_images']:,} | {x['levels']} | {x['seconds']:.1f} | {x['peak_mib']:.0f} |" for x in s["rows"]]
    dd = r.get("drilldown")
    if dd:
        out += ["", "## Drill-down (gallery)", f"Synthetic run: {dd['n_classes']} classes, {dd['n_images']:,} images, "
                f"{dd['n_rows']:,} prediction rows (levels {', '.join(map(str, dd['levels']))}). Selections run on a "
                "pool thread; only handing the rows to the view runs on the GUI thread.", "",
                "| step | seconds | rows |", "|---|---|---|",
                f"| read the run (predictions.csv) | {dd['load_seconds']:.2f} | {dd['n_rows']:,} |",
                f"| every flip between consecutive levels | {dd['all_flips_seconds']:.2f} | {dd['n_flips']:,} |",
                f"| confusion cell | {dd['confusion_cell_seconds']:.3f} | {dd['confusion_cell_rows']} |",
                f"| one class at one level | {dd['class_at_level_seconds']:.3f} | {dd['class_at_level_rows']} |",
                f"| flips between first and last level | {dd['level_flips_seconds']:.3f} | {dd['level_flips_rows']:,} |",
                f"| images only one backbone gets right | {dd['only_one_right_seconds']:.3f} | {dd['only_one_right_rows']:,} |",
                f"| GUI thread: {dd['gui_set_rows_n']:,} rows into the gallery | {dd['gui_set_rows_seconds']:.3f} | "
                f"{dd['gui_rows_handed_to_view']} handed to the view at first |"]
    # sections whose module formats its own figures, in the order they appear in results.md
    for key, module in (("similarity", "bench_similarity"), ("names", "bench_names"),
                        ("namesview", "bench_names_view"), ("pipeline", "bench_pipeline"),
                        ("clipbench", "bench_clipbench"), ("text21k", "bench_text"), ("clipserver", "bench_clip_server"),
                        ("probes", "bench_probes"), ("memory", "bench_memory"), ("perturb", "bench_perturb"),
                        ("vlm", "bench_vlm"), ("whatif", "bench_whatif")):
        if r.get(key):
            text = importlib.import_module(f"benchmarks.{module}").markdown(r[key])
            out += ["", text] if isinstance(text, str) else text
    if NOTES.exists():
        out += ["", NOTES.read_text().strip()]
    return "\n".join(out) + "\n"


# every section `--only` knows, in the order `make bench` runs them
SECTIONS = [
    "amortisation", "text", "throughput", "gui", "gui_tabs", "gui_ensembles", "ray", "scaling", "drilldown",
    "pipeline", "clipbench", "text21k", "memory", "vlm", "clipserver",
    "perturb",
    "similarity",
    "probes",
    "whatif",
    "names",
    "namesview",
]
# measurements made by hand (e.g. against a previous release), kept below the generated sections
NOTES = HERE / "notes.md"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="*", default=None, help=" ".join(SECTIONS))
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run, not for the README)")
    args = ap.parse_args()
    only = set(args.only or SECTIONS)
    from benchmarks import bench_engine

    results: dict = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="semscale-bench-") as tmp:
        tmp = Path(tmp)
        if "amortisation" in only or "throughput" in only:
            print("level amortisation and cache …", flush=True)
            results["amortisation"] = bench_engine.amortisation_and_cache(tmp, n_images=48 if args.quick else 192)
            print(json.dumps(results["amortisation"], indent=1), flush=True)
            if "throughput" in only:
                results["throughput"] = bench_engine.decode_bound(tmp)
                print(json.dumps(results["throughput"]), flush=True)
        if "text" in only:
            print("text side …", flush=True)
            results["text"] = bench_engine.text_share(tmp)
            print(json.dumps(results["text"], indent=1), flush=True)
        if "gui" in only:
            try:
                from benchmarks import bench_gui
            except ImportError as e:
                print(f"GUI benchmark skipped ({e})")
            else:
                print("GUI responsiveness …", flush=True)
                results["gui"] = bench_gui.event_loop_gaps(tmp)
                print(json.dumps(results["gui"]), flush=True)
        if "gui_tabs" in only:
            try:
                from benchmarks import bench_gui
            except ImportError as e:
                print(f"GUI benchmark skipped ({e})")
            else:
                print("GUI tab switching on a 1000-class run …", flush=True)
                results["gui_tabs"] = bench_gui.tab_switch_gaps(tmp, n_images=4000 if args.quick else 20000)
                print(json.dumps(results["gui_tabs"]), flush=True)
        if "gui_ensembles" in only:
            try:
                from benchmarks import bench_gui
            except ImportError as e:
                print(f"GUI benchmark skipped ({e})")
            else:
                print("ensemble stage, app vs CLI …", flush=True)
                results["gui_ensembles"] = {"with": bench_gui.ensemble_stage(tmp / "ens-with")}
                if not args.quick:
                    results["gui_ensembles"]["without"] = bench_gui.ensemble_stage(tmp / "ens-without", one_thread=False)
                print(json.dumps(results["gui_ensembles"]), flush=True)
        if "ray" in only:
            try:
                from benchmarks import bench_ray
            except ImportError as e:
                print(f"Ray benchmark skipped ({e})")
            else:
                print("local vs Ray …", flush=True)
                results["ray"] = bench_ray.ray_vs_local(tmp / "ray", n_images=128 if args.quick else 512)
                print(json.dumps(results["ray"], indent=1), flush=True)
        if "scaling" in only:
            print("scaling …", flush=True)
            sizes = (500, 2_000) if args.quick else (1_000, 10_000, 50_000)
            results["scaling"] = bench_engine.scaling(tmp, sizes)
            print(json.dumps(results["scaling"], indent=1), flush=True)
        if "drilldown" in only:
            try:
                from benchmarks import bench_drilldown
            except ImportError as e:
                print(f"drill-down benchmark skipped ({e})")
            else:
                print("drill-down …", flush=True)
                results["drilldown"] = bench_drilldown.drilldown(tmp, n_images=2_000 if args.quick else 20_000)
                print(json.dumps(results["drilldown"], indent=1), flush=True)
        if "pipeline" in only:
            from benchmarks import bench_pipeline

            results["pipeline"] = bench_pipeline.pipeline(tmp, quick=args.quick)
            print("\n".join(bench_pipeline.markdown(results["pipeline"])), flush=True)
        if "clipbench" in only:
            from benchmarks import bench_clipbench

            print("semscale vs CLIP_benchmark …", flush=True)
            results["clipbench"] = bench_clipbench.clipbench_comparison(
                tmp / "clipbench", n_images=240, repeats=1 if args.quick else 2)
            print(json.dumps(results["clipbench"], indent=1), flush=True)
        if "text21k" in only:
            from benchmarks import bench_text

            print("text side at ImageNet-21k shape …", flush=True)
            results["text21k"] = bench_text.text_21k(tmp / "text21k", n_classes=2_100 if args.quick else 21_000)
            print(json.dumps(results["text21k"], indent=1), flush=True)
        if "memory" in only:
            from benchmarks import bench_memory

            print("memory at ImageNet shape …", flush=True)
            results["memory"] = bench_memory.run(tmp, n_images=4_000 if args.quick else 20_000)
            print(json.dumps(results["memory"], indent=1), flush=True)
        if "vlm" in only:
            from benchmarks import bench_vlm

            print("VLM likelihood and endpoint …", flush=True)
            results["vlm"] = {"likelihood": bench_vlm.likelihood(tmp / "vlm", *((10, 20) if args.quick else (50, 100))),
                              "endpoint": bench_vlm.endpoint(tmp / "vlm", 8 if args.quick else 32)}
            print(json.dumps(results["vlm"], indent=1), flush=True)
        if "clipserver" in only:
            from benchmarks import bench_clip_server

            print("semscale as a clip-as-service client …", flush=True)
            results["clipserver"] = bench_clip_server.clip_server(tmp / "clipserver", n_images=64 if args.quick else 128,
                                                                  repeats=1 if args.quick else 2)
            print(json.dumps(results["clipserver"], indent=1), flush=True)
        if "perturb" in only:
            from benchmarks import bench_perturb

            print("robustness perturbations …", flush=True)
            results["perturb"] = bench_perturb.run(tmp / "perturb")
            print(json.dumps(results["perturb"], indent=1), flush=True)
        if "similarity" in only:
            from benchmarks import bench_similarity

            print("representation similarity …", flush=True)
            results["similarity"] = bench_similarity.similarity(n_images=2_000 if args.quick else 20_000,
                                                                n_classes=100 if args.quick else 1000)
            print(json.dumps(results["similarity"], indent=1), flush=True)
        if "probes" in only:
            from benchmarks import bench_probes

            print("linear probes vs CLIP_benchmark …", flush=True)
            results["probes"] = bench_probes.run(quick=args.quick)
            print(json.dumps(results["probes"], indent=1), flush=True)
        if "whatif" in only:
            from benchmarks import bench_whatif

            print("live what-if …", flush=True)
            results["whatif"] = bench_whatif.whatif(*((5_000, 100) if args.quick else (50_000, 1000)))
            print(json.dumps(results["whatif"], indent=1), flush=True)
        if "names" in only:
            from benchmarks import bench_names

            print("names.csv at ImageNet shape …", flush=True)
            results["names"] = bench_names.run(tmp / "names", quick=args.quick)
            print("\n".join(bench_names.markdown(results["names"])), flush=True)
        if "namesview" in only:
            from benchmarks import bench_names_view

            print("Names tab at 1,000 classes …", flush=True)
            results["namesview"] = bench_names_view.run(tmp / "namesview", quick=args.quick)
            print("\n".join(bench_names_view.markdown(results["namesview"])), flush=True)
    out = HERE / ("results-quick.md" if args.quick else "results.md")
    if args.only and out.with_suffix(".json").exists():  # a partial run keeps the other sections' figures
        results = {**json.loads(out.with_suffix(".json").read_text()), **results}
    text = fmt_results(machine(), results, time.perf_counter() - t0, args.only)
    out.write_text(text)
    (out.with_suffix(".json")).write_text(json.dumps(results, indent=1))
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
