"""The board in a real headless chromium, against a real `newsmon run`: a story published to
the feed appears without a reload, a hostile headline stays text, the token is asked for, and
at a phone's width nothing scrolls sideways while a failing subscription says why and when it
is tried next, and stories and subscriptions open to their pages. One browser for the module
(the `browser` fixture). With BOARD_SCREENSHOTS set to a folder, the board is saved there at
both widths (board-390.png, board-1400.png)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.helpers import RSS, load, run_config
from tests.stories import FILM, ROUND_ONE_LIVEBLOG, SITE, Item, rss

VIEW_TOKEN = "view-secret-0123456789-0123456789"

RAIL = Item(
    "rail-link",
    "lb-901",
    "Kyiv and Chisinau open a direct night train",
    "The first sleeper service between the two capitals left on Tuesday evening.",
    f"{SITE}#post-901",
)
# Entities in the feed's HTML title: the headline the workers keep is this markup, as text.
HOSTILE = Item(
    "hostile",
    "lb-902",
    "&lt;script&gt;window.pwned = 1&lt;/script&gt;"
    "&lt;img src=x onerror=&quot;window.pwned = 2&quot;&gt; Grain corridor reopens",
    "Ships left Odesa under the renewed arrangement, port officials said.",
    f"{SITE}#post-902",
)


@pytest.fixture
def board_url(tmp_path, http_server, start_process, redis_url, serve_url):
    """A `newsmon run` (poller and a worker) on the test's Redis, polling the live blog every
    second, and the board served on it; returns the board's URL."""
    directory = run_config(tmp_path, http_server)
    start_process("run", "--config", str(directory), "--workers", "1", env={"REDIS_URL": redis_url})
    return serve_url(load(directory)) + "/"


def texts(browser, selector: str) -> list[str]:
    """The text of every element `selector` finds, read in one go: the page redraws its
    tables as it polls, so a reference held across calls can go stale."""
    script = "return Array.from(document.querySelectorAll(arguments[0]), e => e.textContent)"
    return browser.execute_script(script, selector)


def headlines(browser) -> list[str]:
    return texts(browser, "#stories td.headline a:first-child")


def wait_for(browser, condition, timeout: float = 60) -> None:
    try:
        WebDriverWait(browser, timeout, poll_frequency=0.2).until(lambda _: condition())
    except TimeoutException:
        raise AssertionError(
            f"timed out at {browser.current_url}: headlines {headlines(browser)}, status "
            f"{texts(browser, '#status')}, console {browser.get_log('browser')}"
        ) from None


def publish(http_server, *items: Item) -> None:
    http_server.route("/blog.xml", (200, RSS, rss([*ROUND_ONE_LIVEBLOG, *items])))


def test_a_published_story_appears_without_a_reload(browser, board_url, http_server):
    browser.get(board_url)
    # The stories arrive as the workers record them; the page was loaded before or during.
    wait_for(browser, lambda: len(headlines(browser)) == len(ROUND_ONE_LIVEBLOG))
    browser.execute_script("window.sameDocument = true")

    publish(http_server, RAIL)
    wait_for(browser, lambda: RAIL.title in headlines(browser))
    assert headlines(browser)[0] == RAIL.title  # newest first
    assert browser.execute_script("return window.sameDocument") is True  # never reloaded
    assert texts(browser, "#stories td.outlets")[0] == "blog"
    links = "return Array.from(document.querySelectorAll('#stories td.headline a'), a => a.href)"
    assert browser.execute_script(links)[1] == RAIL.link  # the first opens the story's page
    assert texts(browser, "#status")[0].startswith("updated")

    # The topic filter applies without a reload too.
    browser.find_element(By.CSS_SELECTOR, "#topic option[value='culture']").click()
    wait_for(browser, lambda: headlines(browser) == [FILM.title])
    assert browser.current_url.endswith("/?topic=culture")
    assert browser.execute_script("return window.sameDocument") is True


def test_a_hostile_headline_is_text_and_never_runs(browser, board_url, http_server):
    browser.get(board_url)
    wait_for(browser, lambda: len(headlines(browser)) == len(ROUND_ONE_LIVEBLOG))
    publish(http_server, HOSTILE)
    shown = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> Grain'

    # Drawn by the page's script as the story arrives ...
    wait_for(browser, lambda: any(h.startswith(shown) for h in headlines(browser)))
    # ... and by the server on a fresh load.
    browser.refresh()
    assert headlines(browser)[0].startswith(shown)
    assert browser.find_elements(By.CSS_SELECTOR, "#stories script, #stories img") == []
    assert browser.execute_script("return window.pwned") is None


def test_the_token_is_asked_for(browser, tmp_path, http_server, serve_url, monkeypatch):
    monkeypatch.setenv("NEWSMON_VIEW_TOKEN", VIEW_TOKEN)
    base = serve_url(load(run_config(tmp_path, http_server)))

    browser.delete_all_cookies()
    browser.get(f"{base}/")
    assert "needs NEWSMON_VIEW_TOKEN" in browser.find_element(By.TAG_NAME, "body").text
    browser.get(f"{base}/?token={VIEW_TOKEN}")
    wait_for(browser, lambda: browser.current_url == f"{base}/")  # the token left the address
    (cookie,) = browser.get_cookies()
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""
    # From now on the cookie opens the board, and the page's polling with it.
    browser.get(f"{base}/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "newsmon"
    browser.execute_script("document.getElementById('status').textContent = 'waiting'")
    wait_for(browser, lambda: texts(browser, "#status")[0].startswith("updated"))


def viewport(browser, width: int, height: int) -> None:
    """Chromium as a device of this size (a phone's viewport when narrow)."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 800}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def scrolls_sideways(browser) -> bool:
    script = "return document.documentElement.scrollWidth > window.innerWidth"
    return browser.execute_script(script)


def on_screen(browser, selector: str) -> list[str]:
    """The texts of `selector`'s elements that are shown and lie within the viewport's width."""
    script = """return Array.from(document.querySelectorAll(arguments[0]))
        .filter(e => { const r = e.getBoundingClientRect();
                       return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth; })
        .map(e => e.textContent)"""
    return browser.execute_script(script, selector)


def screenshot(browser, name: str) -> None:
    if folder := os.environ.get("BOARD_SCREENSHOTS"):
        browser.save_screenshot(str(Path(folder) / name))


def open_link(browser, selector: str, path_start: str) -> None:
    browser.find_element(By.CSS_SELECTOR, selector).click()
    wait_for(browser, lambda: path_start in browser.current_url)


def test_at_a_phones_width_a_failing_subscription_says_why(
    browser, private_targets, board_url, http_server
):
    http_server.route("/hook", (500, {}, b"down for maintenance"))
    viewport(browser, 390, 844)
    try:
        browser.get(board_url)
        wait_for(browser, lambda: len(headlines(browser)) == len(ROUND_ONE_LIVEBLOG))
        why = "#subscriptions td[data-label='Why']"
        wait_for(browser, lambda: "HTTP 500" in "".join(texts(browser, why)))
        assert not scrolls_sideways(browser)
        assert on_screen(browser, why)[0].startswith("HTTP 500")
        (next_try,) = on_screen(browser, "#subscriptions td[data-label='Next try']")
        assert next_try == "now" or next_try.startswith("in ")
        browser.execute_script("document.getElementById('subscriptions').scrollIntoView()")
        screenshot(browser, "board-390.png")

        open_link(browser, "#subscriptions td a", "/board/subscription/all")
        wait_for(browser, lambda: "HTTP 500" in "".join(texts(browser, "#messages ol")))
        assert not scrolls_sideways(browser)

        open_link(browser, "#messages td.headline a", "/board/story/")
        assert texts(browser, "#reports td[data-label='Joined']") == ["first report"]
        assert texts(browser, "#alerts td[data-label='Subscription']") == ["all"]
        assert not scrolls_sideways(browser)

        browser.get(board_url)
        open_link(browser, "#stories td.headline a", "/board/story/")
        assert texts(browser, "#reports td[data-label='Outlet']") == ["blog"]
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    viewport(browser, 1400, 900)
    try:
        browser.get(board_url)
        wait_for(browser, lambda: len(headlines(browser)) == len(ROUND_ONE_LIVEBLOG))
        assert not scrolls_sideways(browser)
        screenshot(browser, "board-1400.png")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
