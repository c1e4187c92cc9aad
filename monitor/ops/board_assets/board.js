// newsmon's live board: every few seconds, asks /board/live for the parts of the page that
// change and swaps each one that did. The server renders them (board_render.py), feed text
// escaped; this script renders nothing itself.
"use strict";

(() => {
  const board = document.getElementById("board");
  const refreshMs = Number(board.dataset.refreshMs) || 3000;
  const select = document.getElementById("topic");
  const form = document.getElementById("filter");
  let timer = null;
  let shown = storiesOn(document); // the stories on screen, to mark the ones that arrive

  function storiesOn(root) {
    return new Set(Array.from(root.querySelectorAll("#stories tr[data-story]"), (r) => r.dataset.story));
  }

  function showProblem(text) {
    const status = document.getElementById("status");
    status.textContent = text;
    status.className = "stale";
  }

  // Each part of `html` replaces the element of its id, unless it is unchanged, so a row
  // being read does not flicker.
  function swap(html) {
    const parts = new DOMParser().parseFromString(html, "text/html").body.children;
    for (const part of Array.from(parts)) {
      const old = document.getElementById(part.id);
      if (!old || old.outerHTML === part.outerHTML) continue;
      if (part.id === "stories" && shown) {
        for (const row of part.querySelectorAll("tr[data-story]")) {
          if (!shown.has(row.dataset.story)) row.classList.add("fresh");
        }
      }
      old.replaceWith(document.adoptNode(part));
    }
    shown = storiesOn(document);
  }

  async function refresh() {
    clearTimeout(timer);
    if (document.hidden) {
      timer = setTimeout(refresh, refreshMs); // nobody is looking: no need to ask
      return;
    }
    const topic = select.value;
    const url = "/board/live" + (topic ? "?topic=" + encodeURIComponent(topic) : "");
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      const text = await response.text();
      if (response.status === 401 || response.status === 403) {
        // Signed out (a new token, an expired cookie): asking again would not help.
        showProblem("stopped: " + text.trim());
        return;
      }
      if (!response.ok) throw new Error(text.trim() || "HTTP " + response.status);
      swap(text);
    } catch (error) {
      showProblem("not updating (" + error.message + "); retrying");
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
  timer = setTimeout(refresh, refreshMs);
})();
