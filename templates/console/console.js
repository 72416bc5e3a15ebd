// Live progress for a run page: fetch its live part every 2 s until the run finishes.
// Progressive enhancement: without this script the page works, reloaded by hand.
(function () {
  "use strict";
  const live = document.getElementById("live");
  if (!live || !live.dataset.live) { return; }
  let busy = false;
  function finished() {
    const state = live.querySelector("[data-finished]");
    return state && state.dataset.finished === "yes";
  }
  function typing() {
    const active = document.activeElement;
    return active && live.contains(active) && (active.tagName === "INPUT" || active.tagName === "TEXTAREA");
  }
  async function refresh() {
    if (busy || typing()) { setTimeout(refresh, 2000); return; }
    busy = true;
    try {
      const response = await fetch(live.dataset.live, { credentials: "same-origin" });
      if (response.ok) {
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        const part = doc.getElementById("live-part");
        if (part) { live.replaceChildren(...part.childNodes); }
      }
    } finally {
      busy = false;
    }
    if (!finished()) { setTimeout(refresh, 2000); }
  }
  if (!finished()) { setTimeout(refresh, 2000); }
}());
