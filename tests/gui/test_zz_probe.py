import time
from PySide6.QtCore import QTimer

def test_probe(qtbot, loaded_window):
    w = loaded_window
    qtbot.waitUntil(lambda: w.engine_info is not None, timeout=60000)
    t0 = time.perf_counter()
    marks = []
    import semscale_gui.results_panel as rp
    orig = rp.ResultsPanel.refresh
    def refresh(self):
        a = time.perf_counter(); orig(self); marks.append(("refresh", a - t0, time.perf_counter() - a))
    rp.ResultsPanel.refresh = refresh
    for name in ("progress", "log", "level_finished", "finished"):
        getattr(w.controller, name).connect(lambda *a, name=name: marks.append((name, time.perf_counter() - t0, getattr(a[0], 'stage', '') if a else '')))
    gaps = []
    last = [time.perf_counter()]
    def tick():
        now = time.perf_counter(); gaps.append((now - last[0], last[0] - t0)); last[0] = now
    timer = QTimer(); timer.setInterval(10); timer.timeout.connect(tick)
    w.run_panel.levels.setText("1,2,3,4")
    timer.start()
    import threading, sys, traceback
    main_id = threading.get_ident()
    stop = [False]
    dumps = []
    def watch():
        while not stop[0]:
            time.sleep(0.02)
            if time.perf_counter() - last[0] > 0.06:
                fr = sys._current_frames().get(main_id)
                dumps.append((time.perf_counter() - t0, "".join(traceback.format_stack(fr, limit=12)[-8:])))
    th = threading.Thread(target=watch, daemon=True); th.start()
    with qtbot.waitSignal(w.controller.finished, timeout=180000):
        import cProfile, pstats
        pr = cProfile.Profile(); pr.enable()
        a = time.perf_counter(); w.start_sweep(); marks.append(("start_sweep", a - t0, time.perf_counter() - a))
        pr.disable()
    qtbot.wait(300)
    timer.stop()
    stop[0] = True
    seen = set()
    for at, st in dumps:
        key = st.splitlines()[-2] if st else ""
        print(f"--- {at:.3f}\n{st}")
    rp.ResultsPanel.refresh = orig
    for g, at in sorted(gaps, reverse=True)[:6]:
        print(f"gap {g*1000:.0f} ms starting at {at:.3f}")
    for m in marks: print(m)
