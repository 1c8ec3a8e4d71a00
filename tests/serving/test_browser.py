"""The page in headless Chromium: open it, pick a user, like an item, see the list change; the docs load offline.

Runs wherever Debian's `chromium` and `chromium-driver` are installed (`.ci/run` installs them) and skips
elsewhere. Selenium drives the system's chromedriver: nothing is downloaded. `recsys serve` runs as a child
process over the session's local stack and the tiny production model.
"""

from __future__ import annotations

import shutil

import pytest

from tests.serving.api_process import serve_api

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT_S = 30

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="Debian's chromium and chromium-driver are not installed"
)


@pytest.fixture(scope="module")
def api_url(local_stack, tiny_world):
    """`recsys serve` on a free port over the session's local stack (the tiny model in production)."""
    with serve_api() as url:
        yield url + "/"


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1800"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _rows(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.get_attribute("data-video") for e in driver.find_elements(By.CSS_SELECTOR, "#recs-list li")]


def _console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_pick_a_user_like_an_item_and_see_the_list_change(browser, api_url, tiny_world, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S)
    browser.get(api_url)
    wait.until(lambda d: tiny_world.version in d.find_element(By.ID, "model-badge").text)
    user = tiny_world.user_ids[4]
    chip = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'#example-users [data-user="{user}"]'))
    chip[0].click()
    wait.until(lambda d: f"User {user}" in d.find_element(By.ID, "recs-status").text and _rows(d))
    before = _rows(browser)
    assert len(before) == 10
    first_card = browser.find_element(By.CSS_SELECTOR, "#recs-list li")
    assert "score" in first_card.text and "source" in first_card.text
    assert tiny_world.category_of[before[0]] in first_card.text  # the category is shown

    liked = before[1]
    browser.find_element(
        By.CSS_SELECTOR, f'#recs-list li[data-video="{liked}"] button[data-event="like"]'
    ).click()
    wait.until(lambda d: "after “like" in d.find_element(By.ID, "recs-status").text)
    after = _rows(browser)
    assert liked not in after and after != before  # the liked video left the list; the list was recomputed
    assert browser.find_element(By.ID, "activity-count").text == "1"
    shot = tmp_path / "page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    assert not _console_errors(browser)


def test_browse_and_search_the_catalogue(browser, api_url, tiny_world):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S)
    browser.get(api_url)
    wait.until(lambda d: "videos" in d.find_element(By.ID, "catalog-status").text)
    box = browser.find_element(By.ID, "catalog-q")
    box.send_keys("music")
    browser.find_element(By.CSS_SELECTOR, "#catalog-form button[type=submit]").click()
    expected = sum(1 for c in tiny_world.category_of.values() if c == "music")
    wait.until(lambda d: f"of {expected} videos" in d.find_element(By.ID, "catalog-status").text)
    cells = browser.find_elements(By.CSS_SELECTOR, "#catalog-table tbody td:nth-child(2)")
    assert cells and {c.text for c in cells} == {"music"}
    assert not _console_errors(browser)


def test_api_docs_render_offline(browser, api_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(api_url + "docs")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"))
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/recommendations/{user_id}", "/interactions", "/model", "/catalog"} <= paths
    assert not _console_errors(browser)
