"""The report in a real browser: headless Chromium renders it with no console error, draws
every figure, fetches nothing, and the screenshot shows the page (not a blank one)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.browser import chromium, why_no_browser
from tests.report_html import parse_report

pytestmark = pytest.mark.skipif(bool(why_no_browser()), reason=why_no_browser() or "browser available")


def _open(driver, path: Path) -> list[dict]:
    driver.get(path.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    return driver.get_log("browser")


def test_report_renders_in_chromium_without_console_errors(two_backbone_run, tmp_path):
    import core
    from PIL import Image

    out = core.report(two_backbone_run, out=tmp_path / "report.html")
    page = parse_report(out.read_text(encoding="utf-8"))
    with chromium(1280, 1800) as driver:
        logs = _open(driver, out)
        assert [e for e in logs if e["level"] == "SEVERE"] == []
        assert driver.title.startswith("semscale report")
        # every figure is laid out at a readable size, and every table of the file is on the page
        boxes = driver.execute_script(
            "return [...document.querySelectorAll('figure svg')].map(s => s.getBoundingClientRect().width)")
        assert len(boxes) >= 3 and min(boxes) > 300
        assert driver.execute_script("return document.querySelectorAll('table').length") == len(page.tables)
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
        target = os.environ.get("SEMSCALE_REPORT_SCREENSHOT")
        if target:  # keep the screenshot to look at
            shutil.copy(shot, target)
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 1800) or img.size[0] == 1280
    colours = img.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # text, lines and bands, not a blank or one-colour page
    # the top figure's area holds the curves' colours (blue and red lines of the two backbones)
    assert any(r < 80 and g < 150 and b > 150 for _, (r, g, b) in colours)


def test_a_page_with_a_console_error_is_caught(tmp_path):
    """The check above can fail: a script error on a page shows as a SEVERE browser log entry."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>console.error('broken figure')</script></body></html>")
    with chromium(400, 300) as driver:
        logs = _open(driver, bad)
    assert any(e["level"] == "SEVERE" and "broken figure" in e["message"] for e in logs)


def test_sample_report_in_the_docs_renders(tmp_path):
    """docs/sample-report.html (the demo run's report, linked from the docs) stays small and clean."""
    sample = Path(__file__).resolve().parents[2] / "docs" / "sample-report.html"
    assert sample.stat().st_size < 1.5 * 2**20
    page = parse_report(sample.read_text(encoding="utf-8"))
    assert {"table-levels", "table-threshold", "table-names-harmful", "table-backbones", "table-checkpoints"} \
        <= set(page.tables)
    with chromium(1280, 900) as driver:
        logs = _open(driver, sample)
        assert [e for e in logs if e["level"] == "SEVERE"] == []
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
