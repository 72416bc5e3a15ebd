// The run page, enhanced: live progress from the console's API, and the gate forms
// submitted to the API.  Without this script the page works as it is: the forms post
// to the console's pages (the same code on the server) and a reload shows progress.
//
// Everything from the API is data: it reaches the page through textContent and text
// nodes only, never as HTML.  The session cookie authenticates the calls; a POST also
// carries the session's CSRF token in the X-CSRF-Token header.
(function () {
  "use strict";
  const live = document.getElementById("live");
  if (!live || !live.dataset.api) { return; }
  const tokenTag = document.querySelector('meta[name="csrf-token"]');
  const csrf = tokenTag ? tokenTag.content : "";
  const runId = live.dataset.run;
  const mayDecide = live.dataset.mayDecide === "yes";
  const mayVote = live.dataset.mayVote === "yes";
  let shownGates = null;
  let shownSteps = Array.from(document.querySelectorAll("#gates .gate"), function (g) {
    return g.id.slice("gate-".length);
  }).join("\n");
  let busy = false;
  let signedOut = false;

  // -- building elements from data ------------------------------------------------------
  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (name === "text") {
        node.textContent = value;
      } else if (name === "className") {
        node.className = value;
      } else {
        node.setAttribute(name, value);
      }
    }
    for (const child of children || []) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function stepPath(step) {
    return "/runs/" + encodeURIComponent(runId) + "/steps/" + encodeURIComponent(step);
  }

  function actForm(step, kind) {
    const vote = kind === "approval";
    const form = el("form", {
      className: "act",
      "data-step": step,
      method: "post",
      enctype: "multipart/form-data",
      action: stepPath(step) + (vote ? "/vote" : "/decide"),
    });
    form.append(el("input", { type: "hidden", name: "csrf", value: csrf }));
    form.append(el("label", {}, [vote ? "Comment " : "Note (the reason, to skip) ",
      el("input", { name: "note" })]));
    form.append(el("label", {}, ["Attachments ",
      el("input", { type: "file", name: "attachments", multiple: "" })]));
    const buttons = vote
      ? [["approve", "Approve"], ["reject", "Reject"]]
      : [["confirm", "Confirm: done as shown"], ["skip", "Skip"], ["abort", "Abort the run"]];
    for (const [value, label] of buttons) {
      form.append(el("button", { type: "submit", name: "decision", value: value, text: label }));
    }
    return form;
  }

  function gateBox(gate) {
    const box = el("div", { className: "gate", id: "gate-" + gate.step });
    box.append(el("h2", {}, ["Waiting at " + gate.step + " ",
      el("small", { text: "(" + gate.kind + "; " + gate.hosts.join(", ") + ")" })]));
    if (gate.instructions) {
      box.append(el("pre", { className: "instructions", text: gate.instructions }));
    }
    for (const d of gate.decided || []) {
      box.append(el("p", { className: "decided",
        text: d.decision + " by " + d.by + ", waiting for the run to continue" }));
    }
    if (gate.kind === "approval" && gate.approval) {
      const a = gate.approval;
      box.append(el("p", { className: "count",
        text: a.approved_by.length + " approval(s) recorded; " + a.required +
          " needed from " + a.approvers.join(", ") + "." }));
      box.append(el("ul", { className: "votes" }, a.votes.map(function (v) {
        return el("li", { text: v.decision + " by " + v.by + (v.note ? ": " + v.note : "") });
      })));
      if (mayVote) { box.append(actForm(gate.step, "approval")); }
    } else if (mayDecide && !(gate.decided || []).length) {
      box.append(actForm(gate.step, "manual"));
    }
    return box;
  }

  // -- showing a run ----------------------------------------------------------------------
  function editing() {
    const gates = document.getElementById("gates");
    const active = document.activeElement;
    if (active && gates.contains(active) && active.tagName === "INPUT" && active.value) {
      return true;
    }
    for (const input of gates.querySelectorAll("input")) {
      if ((input.type === "file" && input.files.length) || (input.name === "note" && input.value)) {
        return true;
      }
    }
    return false;
  }

  function show(run) {
    const status = document.getElementById("run-status");
    status.textContent = run.word;
    status.className = "status " + run.word;
    live.querySelector(".state").dataset.finished = run.finished ? "yes" : "no";
    // A gate's form is left alone while a person fills it in, unless the gate is gone.
    const key = JSON.stringify(run.gates);
    const steps = run.gates.map(function (g) { return g.step; }).join("\n");
    if (key !== shownGates && (!editing() || steps !== shownSteps)) {
      document.getElementById("gates").replaceChildren(...run.gates.map(gateBox));
      shownGates = key;
      shownSteps = steps;
    }
    document.getElementById("steps").replaceChildren(...run.steps.map(function (s) {
      return el("tr", {}, [el("td", { text: s.step }), el("td", { text: s.host }),
        el("td", { className: "status " + s.status, text: s.status }),
        el("td", { text: s.reason || "" })]);
    }));
    const outputs = [];
    if (run.outputs.length) { outputs.push(el("h2", { text: "Output (last lines)" })); }
    for (const o of run.outputs) {
      outputs.push(el("h3", { text: o.name }), el("pre", { className: "output", text: o.text }));
    }
    document.getElementById("outputs").replaceChildren(...outputs);
    live.dataset.shown = "api";
    document.getElementById("events").replaceChildren(...run.events.map(function (e) {
      const item = el("li", {}, [el("code", { text: e.event }),
        " " + (e.time || "").slice(0, 19).replace("T", " ") +
        (e.step ? " " + e.step : "") + (e.by ? " by " + e.by : "")]);
      if (e.authenticated) {
        item.append(" ", el("span", { className: "auth",
          text: "authenticated (" + e.auth_method + ")" }));
      }
      return item;
    }));
  }

  function say(text) {
    const message = document.getElementById("message");
    message.textContent = text;
    message.hidden = false;
  }

  async function refresh() {
    if (busy) { return null; }
    busy = true;
    try {
      const response = await fetch(live.dataset.api, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      if (response.status === 401) {
        say("Your session has ended: sign in again to follow the run.");
        signedOut = true;
        return null;
      }
      if (!response.ok) { return null; }
      const run = await response.json();
      show(run);
      return run;
    } catch (problem) {
      return null;  // the server restarts or the network drops: the next poll retries
    } finally {
      busy = false;
    }
  }

  async function poll() {
    const run = await refresh();
    if (!signedOut && (!run || !run.finished)) { setTimeout(poll, 2000); }
  }

  // -- acting through the API ---------------------------------------------------------
  document.addEventListener("submit", async function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("act")) { return; }
    const verb = event.submitter && event.submitter.value;
    if (!verb) { return; }  // no button: let the browser post the form
    event.preventDefault();
    const body = new FormData(form);
    body.delete("csrf");
    body.delete("decision");
    for (const button of form.querySelectorAll("button")) { button.disabled = true; }
    let text;
    try {
      const response = await fetch("/api/v1" + stepPath(form.dataset.step) + "/" + verb, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
        body: body,
      });
      let answer = {};
      try { answer = await response.json(); } catch (problem) { answer = {}; }
      text = response.ok
        ? answer.message
        : (answer.error || "refused") + " (HTTP " + response.status + ")";
      if (response.ok) { form.reset(); }
    } catch (problem) {
      text = "The console cannot be reached; try again.";
    }
    for (const button of form.querySelectorAll("button")) { button.disabled = false; }
    say(text);
    await refresh();
  });

  if (live.querySelector(".state").dataset.finished !== "yes") { setTimeout(poll, 2000); }
}());
