"""The Gradio demo in a real headless browser (Debian's chromium driven by Selenium).

The page is loaded, an audio file is uploaded through the page's own file
input, the form is submitted, and the transcript is read back from the
page's output box, as a user would. A screenshot of the finished page is
kept as a test artefact; its path is printed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "finetune"))
from builders import cut_window  # noqa: E402
from test_finetune_demo import running_demo  # noqa: E402

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium; browsers downloaded from outside cannot run here
CHROMEDRIVER = "/usr/bin/chromedriver"  # Debian's chromium-driver, the same version
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-dev-shm-usage", "--window-size=1280,1000")
TRANSCRIPT_TIMEOUT_S = 180
ARTEFACTS = Path(__file__).resolve().parents[1] / ".pytest_cache" / "artefacts"


def chromium_driver(profile: Path):  # noqa: ANN201 - a selenium WebDriver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")  # a fresh profile every run
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def test_demo_in_a_headless_browser(python: str, tmp_path: Path) -> None:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium and chromium-driver are needed: apt-get install -y chromium chromium-driver "
                    "(.ci/run installs them)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wav = cut_window(0.0, 10.0, tmp_path / "clip.wav")
    driver = None
    with running_demo(python) as url:
        try:
            driver = chromium_driver(tmp_path / "chromium-profile")
            driver.get(url)
            wait = WebDriverWait(driver, TRANSCRIPT_TIMEOUT_S)
            upload = wait.until(expected_conditions.presence_of_element_located(
                (By.CSS_SELECTOR, "input[type=file]")))
            upload.send_keys(str(wav))
            wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "audio")))
            submit = wait.until(expected_conditions.element_to_be_clickable(
                (By.XPATH, "//button[normalize-space()='Submit']")))
            submit.click()
            output = "//label[.//span[normalize-space()='transcript']]//textarea"
            wait.until(lambda d: d.find_element(By.XPATH, output).get_attribute("value").strip())
            text = driver.find_element(By.XPATH, output).get_attribute("value")
            ARTEFACTS.mkdir(parents=True, exist_ok=True)
            screenshot = tmp_path / "demo.png"
            driver.save_screenshot(str(screenshot))
            kept = ARTEFACTS / "finetune-demo-browser.png"
            shutil.copyfile(screenshot, kept)
            print(f"browser transcript: {text!r}; screenshot: {kept}")
        finally:
            if driver is not None:
                driver.quit()
    assert "rivers" in text.lower() and "weather" in text.lower(), text
    assert kept.stat().st_size > 10_000  # a rendered page, not an empty image
