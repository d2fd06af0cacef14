"""The app ends through ordinary Qt/Python shutdown, run after run.

Each self-test is a fresh process that runs a sweep, draws its plots and closes; its exit
status must be 0 and nothing may die on the way out (``benchmarks/selftest_repeat.py``
runs the same check 50 times in a row).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

RUNS = 3


def test_self_test_exits_cleanly_run_after_run(gui_env):
    from benchmarks.selftest_repeat import run_once

    with ThreadPoolExecutor(max_workers=RUNS) as ex:  # side by side: quicker, and a busier machine
        outcomes = list(ex.map(lambda _i: run_once(timeout_s=400), range(RUNS)))
    for o in outcomes:
        assert o.returncode == 0, (o.returncode, o.crash_lines)
        assert o.passed and not o.crash_lines, o.crash_lines
