"""Headless Chromium through selenium, for tests that open a page the way a reader does."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium_paths() -> tuple[Optional[str], Optional[str]]:
    """(chromium, chromedriver) found on this machine, either None when absent."""
    chromium = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                     if p and Path(p).exists()), None)
    driver = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and Path(p).exists()), None)
    return chromium, driver


def why_no_browser() -> str:
    """Empty when a headless Chromium can be driven here, else the reason."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install 'semscale[test]')"
    chromium, driver = chromium_paths()
    if chromium is None:
        return "no chromium on this machine (Debian: apt-get install chromium)"
    if driver is None:
        return "no chromedriver on this machine (Debian: apt-get install chromium-driver)"
    return ""


@contextmanager
def chromium(width: int = 1280, height: int = 1600) -> Iterator:
    """A headless Chromium (fresh profile) that records the browser console."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium_paths()
    profile = tempfile.mkdtemp(prefix="semscale-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
