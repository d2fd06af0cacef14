"""Run the app's ``--self-test`` many times in a row and count clean exits.

A clean exit is exit status 0, "self-test passed" printed, and nothing on stderr that
says the interpreter or Qt died on the way out (``Fatal Python error``, a segfault, an
abort). The app leaves through ordinary Qt/Python shutdown, so a crash while plots,
threads or the QApplication are torn down shows up here as a non-zero status or signal.

    python -m benchmarks.selftest_repeat --runs 50             # off-screen, one after another
    python -m benchmarks.selftest_repeat --runs 50 --parallel 3 # three at a time
    xvfb-run -a python -m benchmarks.selftest_repeat --runs 10 --platform xcb

Writes one line per run and a summary; ``--json FILE`` also saves the counts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
CRASH_MARKERS = ("Fatal Python error", "Segmentation fault", "core dumped", "Aborted", "QThread: Destroyed while",
                 "QObject::~QObject: Timers cannot be stopped", "Traceback (most recent call last)")


@dataclass
class Outcome:
    returncode: int
    passed: bool
    crash_lines: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return self.returncode == 0 and self.passed and not self.crash_lines


def run_once(timeout_s: float = 300.0, platform: Optional[str] = None) -> Outcome:
    """One ``python -m semscale_gui.app --self-test`` in a fresh process."""
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(ROOT))
    env["QT_QPA_PLATFORM"] = platform or env.get("QT_QPA_PLATFORM") or "offscreen"
    env["PYTHONFAULTHANDLER"] = "1"  # a crash prints where it happened
    t0 = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-m", "semscale_gui.app", "--self-test", "--timeout", str(int(timeout_s))],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s + 60)
    except subprocess.TimeoutExpired:
        return Outcome(-999, False, [f"did not exit within {timeout_s + 60:.0f} s"], time.monotonic() - t0)
    out = p.stdout + p.stderr
    crash = [ln for ln in out.splitlines() if any(m in ln for m in CRASH_MARKERS)]
    lines = out.splitlines()
    fatal = next((i for i, ln in enumerate(lines) if ln.startswith("Fatal Python error")), None)
    if fatal is not None:  # faulthandler's stack: where it died
        crash += [ln.strip() for ln in lines[fatal + 1:fatal + 12] if ln.strip().startswith("File")]
    passed = any(ln.startswith("self-test passed:") for ln in p.stdout.splitlines())
    if p.returncode < 0:
        crash.append(f"killed by signal {-p.returncode}")
    return Outcome(p.returncode, passed, crash, time.monotonic() - t0)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--platform", help="Qt platform (default: offscreen, or QT_QPA_PLATFORM)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds one self-test may take")
    ap.add_argument("--parallel", type=int, default=1, help="self-tests running side by side")
    ap.add_argument("--json", help="write the counts to this file")
    args = ap.parse_args(argv)
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as ex:
        for o in ex.map(lambda _i: run_once(args.timeout, args.platform), range(args.runs)):
            outcomes.append(o)
            n_clean = sum(x.clean for x in outcomes)
            detail = "" if o.clean else f"  rc={o.returncode} {' | '.join(o.crash_lines[:3])}"
            print(f"run {len(outcomes)}/{args.runs}: {'clean' if o.clean else 'FAILED'} in {o.seconds:.1f} s "
                  f"({n_clean} clean so far){detail}", flush=True)
    n_clean = sum(o.clean for o in outcomes)
    platform = args.platform or os.environ.get("QT_QPA_PLATFORM") or "offscreen"
    print(f"{n_clean}/{len(outcomes)} self-tests exited cleanly (platform {platform})")
    if args.json:
        Path(args.json).write_text(json.dumps({"platform": platform, "runs": len(outcomes), "clean": n_clean,
                                               "outcomes": [asdict(o) for o in outcomes]}, indent=1))
    return 0 if n_clean == len(outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
