// newsmon's live board: polls /board/data.json and redraws the tables the server rendered.
// Feed text is only ever set with textContent (through `el`), never parsed as HTML.
"use strict";

(() => {
  const refreshMs = Number(document.body.dataset.refreshMs) || 3000;
  const select = document.getElementById("topic");
  const form = document.getElementById("filter");
  const status = document.getElementById("status");
  const COUNTS = ["delivered", "retried", "failed", "dead"];
  let timer = null;
  let shown = null; // ids of the stories on screen, to mark the ones that arrive
  const drawn = {}; // the JSON each table was last drawn from

  // An element; strings among `children` become text nodes.
  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function cell(text, className) {
    return el("td", className, String(text));
  }

  // UTC; the date too unless it is today (board.py: _clock).
  function clock(unixTime, now) {
    if (unixTime === null || unixTime === undefined) return "-";
    const iso = new Date(unixTime * 1000).toISOString();
    const today = new Date(now * 1000).toISOString().slice(0, 10);
    return iso.slice(0, 10) === today ? iso.slice(11, 19) : iso.slice(0, 10) + " " + iso.slice(11, 16);
  }

  // board.py: _duration
  function duration(seconds) {
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 90 * 60) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  // board.py: _next_poll
  function nextPoll(seconds) {
    if (seconds === null || seconds === undefined) return "-";
    return seconds < 1 ? "now" : "in " + duration(seconds);
  }

  function badge(state) {
    return el("span", "badge " + state, state.replace("_", " "));
  }

  // board.py: safe_link (a prefix test, nothing parsed)
  function safeLink(url) {
    return /^https?:\/\//i.test(url) ? url : null;
  }

  function storyRow(story, now) {
    const title = story.title || "(no headline)";
    const link = safeLink(story.link);
    let headline = title;
    if (link) {
      headline = el("a", "", title);
      headline.href = link;
      headline.rel = "noopener noreferrer";
      headline.target = "_blank";
    }
    const topics = story.topics.length
      ? el("td", "topics", ...story.topics.map((t) => el("span", "topic", t)))
      : el("td", "topics", "-");
    const row = el(
      "tr",
      shown && !shown.has(story.id) ? "fresh" : "",
      cell(clock(story.first_seen, now), "time"),
      cell(clock(story.last_seen, now), "time"),
      el("td", "headline", headline),
      cell(story.outlets.join(", "), "outlets"),
      topics,
    );
    row.dataset.story = story.id;
    return row;
  }

  function feedRow(feed, now) {
    return el(
      "tr",
      "",
      cell(feed.feed),
      el("td", "", badge(feed.health)),
      cell(feed.last_status || "-"),
      cell(feed.last_fetched ? clock(Date.parse(feed.last_fetched) / 1000, now) : "-", "time"),
      cell(nextPoll(feed.next_due_in_seconds), "time"),
      cell(feed.errors, "number"),
      cell(feed.last_error || "", "error"),
    );
  }

  function subscriptionRow(sub, now) {
    const state = el("td", "", badge(sub.status));
    if (sub.disabled_reason) state.append(" " + sub.disabled_reason);
    return el(
      "tr",
      "",
      cell(sub.id),
      state,
      ...COUNTS.map((name) => cell(sub.last_hour[name], "number")),
      cell(sub.dead_letters, "number"),
      cell(clock(sub.failing_since, now), "time"),
    );
  }

  function card(label, figure, note) {
    return el("div", "card", el("div", "label", label), el("div", "figure", figure), el("div", "note", note));
  }

  function glance(board) {
    const beat = board.poller_heartbeat_age_seconds;
    const rates = board.per_minute;
    const cards = [
      card("pollers", String(board.pollers), beat === null ? "none beat in the last minute" : "last beat " + duration(beat) + " ago"),
      card("workers", String(board.workers), "registered"),
    ];
    for (const [queue, depths] of Object.entries(board.queues)) {
      cards.push(
        card(queue, depths.queued + " queued", `${depths.started} started · ${depths.scheduled} scheduled · ${depths.failed} failed`),
      );
    }
    cards.push(
      card(
        "per minute",
        rates.entries_processed + " entries",
        `${rates.entries_duplicate} duplicates · ${rates.alerts_delivered} delivered · ${rates.alerts_dead} dead`,
      ),
    );
    return cards;
  }

  function empty(columns, text) {
    const td = el("td", "", text);
    td.colSpan = columns;
    return el("tr", "empty", td);
  }

  // Redraws a table body only when its data changed, so a row being read does not flicker.
  function redraw(name, target, data, rows) {
    const json = JSON.stringify(data);
    if (drawn[name] === json) return;
    drawn[name] = json;
    target.replaceChildren(...rows());
  }

  function draw(board) {
    const now = board.generated_at;
    const body = (id) => document.querySelector(`#${id} tbody`);
    redraw("stories", body("stories"), board.stories, () =>
      board.stories.length ? board.stories.map((s) => storyRow(s, now)) : [empty(5, "no stories yet")],
    );
    shown = new Set(board.stories.map((s) => s.id));
    redraw("feeds", body("feeds"), board.feeds, () =>
      board.feeds.length ? board.feeds.map((f) => feedRow(f, now)) : [empty(7, "no feeds in feeds.toml")],
    );
    redraw("subscriptions", body("subscriptions"), board.subscriptions, () =>
      board.subscriptions.length
        ? board.subscriptions.map((s) => subscriptionRow(s, now))
        : [empty(8, "no subscriptions, in subscriptions.toml or made over the API")],
    );
    document.getElementById("glance").replaceChildren(...glance(board));
    const warning = document.getElementById("redis-warning");
    warning.textContent = board.redis_warning || "";
    warning.hidden = !board.redis_warning;
    status.textContent = "live · updated " + clock(now, now) + " UTC";
    status.className = "";
  }

  async function refresh() {
    clearTimeout(timer);
    if (document.hidden) {
      timer = setTimeout(refresh, refreshMs); // nobody is looking: no need to ask
      return;
    }
    const topic = select.value;
    const url = "/board/data.json" + (topic ? "?topic=" + encodeURIComponent(topic) : "");
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        // Signed out (a new token, an expired cookie): asking again would not help.
        status.textContent = "stopped: " + (await response.text()).trim();
        status.className = "stale";
        return;
      }
      if (!response.ok) throw new Error((await response.text()).trim() || "HTTP " + response.status);
      draw(await response.json());
    } catch (error) {
      status.textContent = "not updating (" + error.message + "); retrying";
      status.className = "stale";
    }
    timer = setTimeout(refresh, refreshMs);
  }

  function choose(event) {
    if (event) event.preventDefault();
    const topic = select.value;
    history.replaceState(null, "", topic ? "/?topic=" + encodeURIComponent(topic) : "/");
    shown = null; // a new filter: nothing on it is news
    refresh();
  }

  const address = new URL(location.href);
  if (address.searchParams.has("token")) {
    // The server has set its cookie: the token leaves the address bar and the history.
    address.searchParams.delete("token");
    history.replaceState(null, "", address.pathname + address.search);
  }
  form.querySelector("button").hidden = true; // the select applies itself
  select.addEventListener("change", choose);
  form.addEventListener("submit", choose);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  shown = new Set(Array.from(document.querySelectorAll("#stories tbody tr[data-story]"), (r) => r.dataset.story));
  timer = setTimeout(refresh, refreshMs);
})();
