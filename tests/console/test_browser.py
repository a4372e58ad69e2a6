"""The console in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by Selenium;
installed with apt-get when missing): log in by keyboard, see the reliability diagram load, release a
version, release a stale one (refused by the cascade, then waived by its owner) and find both in the
audit log, see a release refused with the gate's reason, revoke a key. Screenshots of each page land in
build/console-screenshots/<backend>/."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from console import create_app
from tests.console.conftest import PASSWORD, ensure_debian, settings_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _ensure_chromium() -> None:
    """The test set-up installs Debian's chromium and chromium-driver when they are missing."""
    ensure_debian(CHROMIUM, "chromium", "chromium-driver")
    ensure_debian(DRIVER, "chromium", "chromium-driver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(world) -> Iterator[str]:
    port = _free_port()
    app = create_app(settings_for(world.url))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the console did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    app.state.console.close()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    _ensure_chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ]:
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def _shots(request: pytest.FixtureRequest) -> Path:
    backend = request.node.callspec.params.get("fresh_registry_url", "sqlite")
    out = ROOT / "build" / "console-screenshots" / backend
    out.mkdir(parents=True, exist_ok=True)
    return out


def _text_when(driver: webdriver.Chrome, element_id: str, ok) -> str:
    """The text of ``#element_id`` once ``ok(text)`` holds (pages load after a form is sent)."""

    def probe(d: webdriver.Chrome) -> str | bool:
        text = d.find_element(By.ID, element_id).text
        return text if ok(text) else False

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, 15, ignored_exceptions=ignored).until(probe)


def _accessible(driver: webdriver.Chrome) -> None:
    """Every visible input has a label; every image has alt text."""
    for field in driver.find_elements(By.CSS_SELECTOR, "input:not([type=hidden])"):
        fid = field.get_attribute("id")
        assert fid and driver.find_elements(By.CSS_SELECTOR, f"label[for='{fid}']"), field.get_attribute(
            "name"
        )
    for img in driver.find_elements(By.TAG_NAME, "img"):
        assert (img.get_attribute("alt") or "").strip(), img.get_attribute("src")


def _tab_to(driver: webdriver.Chrome, element_id: str, limit: int = 60) -> None:
    """Reach ``element_id`` with the Tab key alone (keyboard navigation of forms)."""
    body = driver.find_element(By.TAG_NAME, "body")
    body.click()
    for _ in range(limit):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        if driver.switch_to.active_element.get_attribute("id") == element_id:
            return
    pytest.fail(f"#{element_id} cannot be reached with the Tab key")


def test_console_in_chromium(server: str, browser: webdriver.Chrome, world, request) -> None:
    shots = _shots(request)
    world.register_stale_candidate()
    b = browser
    b.get(server + "/login")
    _accessible(b)
    b.save_screenshot(str(shots / "login.png"))
    _tab_to(b, "name")
    b.switch_to.active_element.send_keys("alice", Keys.TAB)
    b.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)  # keyboard only
    assert "alice (operator)" in b.find_element(By.TAG_NAME, "header").text
    _accessible(b)
    b.save_screenshot(str(shots / "models.png"))

    b.find_element(By.LINK_TEXT, "churn").click()
    b.find_element(By.LINK_TEXT, "v2").click()
    img = b.find_element(By.ID, "img-reliability-png")
    loaded = b.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
    assert loaded and loaded > 0, "the reliability diagram did not load"
    _accessible(b)
    _tab_to(b, "release-button")
    b.save_screenshot(str(shots / "version.png"))

    b.switch_to.active_element.send_keys(Keys.ENTER)  # release churn:2: scorer:1 stays on churn:1
    assert _text_when(b, "version-status", lambda t: t == "released")
    b.get(server + "/models/scorer/2")  # trained on churn:1, now stale: the cascade refuses it
    b.find_element(By.ID, "release-button").click()
    assert "Refused" in b.title or "refused" in b.find_element(By.TAG_NAME, "h1").text
    assert "stale" in _text_when(b, "problem", bool)
    b.save_screenshot(str(shots / "refused-cascade.png"))
    b.find_element(By.ID, "waiver").send_keys("scorer revalidated by hand", Keys.ENTER)
    assert _text_when(b, "version-status", lambda t: t == "released")

    b.get(server + "/audit?actor=alice")
    table = b.find_element(By.ID, "audit-table").text
    assert "release churn:2" in table and "release scorer:2" in table
    b.save_screenshot(str(shots / "audit.png"))

    b.get(server + "/models/bad/1")
    b.find_element(By.ID, "release-button").click()
    problem = _text_when(b, "problem", bool)
    assert "failed the safety gate" in problem and "quality" in problem
    b.save_screenshot(str(shots / "refused-gate.png"))

    b.get(server + "/consumers")
    b.find_element(By.CSS_SELECTOR, f"#key-{world.key_id} button").click()
    row = _text_when(b, f"key-{world.key_id}", lambda t: "Revoke" not in t)
    assert row.count("20") >= 2  # a revoked date now
    b.save_screenshot(str(shots / "consumers.png"))

    b.get(server + "/cascade")
    assert b.find_elements(By.CSS_SELECTOR, ".graph svg")
    b.save_screenshot(str(shots / "cascade.png"))
    b.find_element(By.CSS_SELECTOR, ".graph svg a[*|href='/models/scorer']").click()
    assert b.find_element(By.TAG_NAME, "h1").text == "scorer"
