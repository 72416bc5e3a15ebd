/* The runbook library site: filter the index by text and tags; open the step index beside
   a guide on wide screens.  Plain JavaScript, no libraries, nothing loaded from the network.
   The filter's state lives in the URL fragment (#tag=a,b&q=words), so a tag link on a
   runbook page (index.html#tag=x) opens the index already filtered, from the file system too. */
(function () {
  "use strict";

  function readHash() {
    var state = { tags: [], q: "" };
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var eq = part.indexOf("=");
      if (eq < 0) { return; }
      var key = part.slice(0, eq);
      var value;
      try { value = decodeURIComponent(part.slice(eq + 1).replace(/\+/g, " ")); }
      catch (e) { return; }
      if (key === "tag") {
        state.tags = value.split(",").filter(function (t) { return t !== ""; });
      } else if (key === "q") {
        state.q = value;
      }
    });
    return state;
  }

  function writeHash(state) {
    var parts = [];
    if (state.tags.length) {
      parts.push("tag=" + state.tags.map(encodeURIComponent).join(","));
    }
    if (state.q.trim()) { parts.push("q=" + encodeURIComponent(state.q)); }
    var hash = parts.length ? "#" + parts.join("&") : "";
    if (hash !== location.hash) {
      history.replaceState(null, "", hash || location.pathname + location.search);
    }
  }

  function cardTags(card) {
    return Array.prototype.map.call(card.querySelectorAll(".tags .tag"), function (a) {
      return a.getAttribute("data-tag");
    });
  }

  function setupIndex() {
    var form = document.getElementById("filter");
    var list = document.getElementById("runbooks");
    if (!form || !list) { return; }
    var input = document.getElementById("filter-text");
    var status = document.getElementById("filter-status");
    var clear = document.getElementById("filter-clear");
    var noMatch = document.getElementById("no-match");
    var buttons = form.querySelectorAll(".tag-bar .tag");
    var cards = list.querySelectorAll(".runbook");
    var state = readHash();

    function apply() {
      var words = state.q.toLowerCase().split(/\s+/).filter(function (w) { return w !== ""; });
      var shown = 0;
      Array.prototype.forEach.call(cards, function (card) {
        var text = card.getAttribute("data-text") || "";
        var tags = cardTags(card);
        var ok = words.every(function (w) { return text.indexOf(w) >= 0; }) &&
                 state.tags.every(function (t) { return tags.indexOf(t) >= 0; });
        card.hidden = !ok;
        if (ok) { shown += 1; }
      });
      Array.prototype.forEach.call(buttons, function (b) {
        var on = state.tags.indexOf(b.getAttribute("data-tag")) >= 0;
        b.setAttribute("aria-pressed", on ? "true" : "false");
      });
      if (input.value !== state.q) { input.value = state.q; }
      var filtered = words.length > 0 || state.tags.length > 0;
      status.textContent = filtered
        ? "Showing " + shown + " of " + cards.length + " runbooks"
        : cards.length + " runbooks";
      clear.hidden = !filtered;
      noMatch.hidden = shown !== 0;
      writeHash(state);
    }

    input.addEventListener("input", function () { state.q = input.value; apply(); });
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    Array.prototype.forEach.call(buttons, function (b) {
      b.addEventListener("click", function () {
        var tag = b.getAttribute("data-tag");
        var at = state.tags.indexOf(tag);
        if (at >= 0) { state.tags.splice(at, 1); } else { state.tags.push(tag); }
        apply();
      });
    });
    clear.addEventListener("click", function () {
      state = { tags: [], q: "" };
      apply();
      input.focus();
    });
    window.addEventListener("hashchange", function () { state = readHash(); apply(); });
    form.hidden = false;
    apply();
  }

  function setupStepIndex() {
    var details = document.getElementById("step-index");
    if (!details || !window.matchMedia) { return; }
    var wide = window.matchMedia("(min-width: 72rem)");
    if (wide.matches) { details.open = true; }
    details.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a") : null;
      if (link && !wide.matches) { details.open = false; }
    });
  }

  setupIndex();
  setupStepIndex();
}());
