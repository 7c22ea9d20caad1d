"""The report opened from disk in a real browser (headless Chromium through Selenium).

Every picture decodes, every audio element loads its metadata, the console stays free of errors and a
screenshot is not blank. Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium``
package; ``.ci/run`` installs them. Without them the test skips and says how to install them, unless
``NST_REQUIRE_BROWSER=1`` (set by ``.ci/run``), where it fails instead.
"""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser


def _need(what: str) -> None:
    msg = (f"{what} not found: install the browser with `apt-get install chromium chromium-driver` and "
           "`pip install selenium` (tests/run.sh does both)")
    if os.environ.get("NST_REQUIRE_BROWSER") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _need("selenium")
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None:
        _need("chromium")
    if driver_path is None:
        _need("chromedriver")
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--no-first-run", "--window-size=1300,1000"):
        opts.add_argument(arg)
    opts.binary_location = binary
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, script: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _problems(driver, index) -> list[str]:
    """What is wrong with the page as the browser sees it: undecoded pictures, unloaded sounds, console errors."""
    driver.get_log("browser")  # drop messages from earlier pages
    driver.get(index.resolve().as_uri())
    assert _wait(driver, "return document.readyState === 'complete'")
    problems = []
    images = driver.execute_script(
        "return Array.from(document.images).map(i => ({alt: i.alt, ok: i.complete, w: i.naturalWidth}))")
    problems += [f"picture not decoded: {img['alt']}" for img in images if not (img["ok"] and img["w"] > 0)]
    _wait(driver, "return Array.from(document.querySelectorAll('audio')).every(a => a.error || a.readyState >= 1)")
    audio = driver.execute_script(
        "return Array.from(document.querySelectorAll('audio')).map(a => "
        "({state: a.readyState, duration: a.duration, error: a.error && a.error.code}))")
    problems += [f"sound not loaded: {a}" for a in audio if a["error"] is not None or not a["duration"] > 0]
    problems += [f"console: {e['message']}" for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    return problems, images, audio


def test_report_opens_from_disk_with_every_picture_and_sound_loaded(browser, tiny_report, tmp_path):
    problems, images, audio = _problems(browser, tiny_report / "index.html")
    assert problems == []
    assert len(images) == 7 and len(audio) == 6
    # The clips are 1.5 s long: the browser decoded real durations, not placeholders.
    assert all(abs(a["duration"] - 1.5) < 0.05 for a in audio), audio

    height = browser.execute_script("return document.documentElement.scrollHeight")
    assert height > 1500  # the page laid out its sections, not an error stub
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert pixels.shape[0] > 500 and pixels.shape[1] > 500
    assert pixels.std() > 20  # not a blank page
    assert len(np.unique(pixels.reshape(-1, 3).astype(np.uint8), axis=0)) > 200  # pictures, not flat colour


def test_the_checks_catch_a_broken_picture_and_a_broken_sound(browser, report_copy):
    """Control: the same checks on a damaged copy of the page report the damage."""
    index = report_copy / "index.html"
    html = index.read_text()
    html = html.replace('src="data:image/png;base64,', 'src="data:image/png;base64,AAAA', 1)
    html = html.replace('src="data:audio/flac;base64,', 'src="data:audio/flac;base64,AAAA', 1)
    index.write_text(html)
    problems, _, _ = _problems(browser, index)
    assert any(p.startswith("picture not decoded") for p in problems), problems
    assert any(p.startswith("sound not loaded") for p in problems), problems
