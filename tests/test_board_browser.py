"""The board in a real headless chromium, against a real `newsmon run`: a story published to
the feed appears without a reload, a hostile headline stays text, and the token is asked
for. One browser for the module (the `browser` fixture)."""

from __future__ import annotations

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
    return texts(browser, "#stories td.headline")


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
    links = "return Array.from(document.querySelectorAll('#stories a'), a => a.href)"
    assert browser.execute_script(links)[0] == RAIL.link
    assert texts(browser, "#status")[0].startswith("live")

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
    wait_for(browser, lambda: texts(browser, "#status")[0].startswith("live"))
