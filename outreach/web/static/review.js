// Keyboard shortcuts for the review queue. j/k move, a approve, e edit, r reject, g regenerate, s snooze,
// z undo, / search, ? help. Every page is a real navigation (no client-side swaps), so the browser's Back
// always shows what the URL names. No inline handlers anywhere: the Content-Security-Policy allows none.
(function () {
  "use strict";

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function page() { var main = document.getElementById("main"); return main ? main.getAttribute("data-page") : ""; }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#queue-table tbody tr[data-draft-id]")); }

  function go(url) { window.location.assign(url); }

  function submit(form) { if (form) { if (form.requestSubmit) form.requestSubmit(); else form.submit(); } }

  // ---- queue page -------------------------------------------------------------------------------------
  var currentKey = "outreach.current";
  function currentIndex() {
    var list = rows();
    for (var i = 0; i < list.length; i++) if (list[i].classList.contains("current")) return i;
    return -1;
  }
  function select(index, focus) {
    var list = rows();
    if (!list.length) return;
    index = Math.max(0, Math.min(list.length - 1, index));
    list.forEach(function (row) { row.classList.remove("current"); row.removeAttribute("aria-current"); });
    var row = list[index];
    row.classList.add("current");
    row.setAttribute("aria-current", "true");
    sessionStorage.setItem(currentKey, row.getAttribute("data-draft-id"));
    if (focus !== false) { var link = row.querySelector("a.rowlink"); if (link) link.focus({ preventScroll: true }); }
    row.scrollIntoView({ block: "nearest" });
  }
  function initQueue() {
    var list = rows();
    if (!list.length) return;
    var remembered = sessionStorage.getItem(currentKey);
    var index = 0;
    list.forEach(function (row, i) { if (row.getAttribute("data-draft-id") === remembered) index = i; });
    select(index, true);
  }
  function currentRow() { var i = currentIndex(); return i >= 0 ? rows()[i] : null; }

  function queueKey(event) {
    var row = currentRow();
    var id = row && row.getAttribute("data-draft-id");
    switch (event.key) {
      case "j": case "ArrowDown": select(currentIndex() + 1); return true;
      case "k": case "ArrowUp": select(currentIndex() - 1); return true;
      case "Enter": case "o": if (id) go("/drafts/" + id); return !!id;
      case "x": if (row) { var box = row.querySelector("input[type=checkbox]"); if (box && !box.disabled) box.checked = !box.checked; } return true;
      case "A": submit(document.getElementById("bulk")); return true;
      case "a": if (id) submit(document.getElementById("approve-" + id)); return !!id;
      case "e": if (id) go("/drafts/" + id + "/edit"); return !!id;
      case "r": if (id) go("/drafts/" + id + "?mode=reject"); return !!id;
      case "g": if (id) go("/drafts/" + id + "?mode=regenerate"); return !!id;
    }
    return false;
  }

  // ---- draft page -------------------------------------------------------------------------------------
  var panels = { edit: "edit-body", reject: "reject-note", regenerate: "regenerate-instructions" };
  function openPanel(name) {
    var panel = document.getElementById("panel-" + name);
    if (!panel) return false;
    Object.keys(panels).forEach(function (other) { var p = document.getElementById("panel-" + other); if (p) p.hidden = other !== name; });
    panel.hidden = false;
    var field = name === "reject" ? panel.querySelector("input[name=reason]:checked") : document.getElementById(panels[name]) || panel.querySelector("input:not([type=hidden]), button[type=submit]");
    if (field) { field.focus(); if (field.setSelectionRange && name !== "reject") { var n = field.value.length; field.setSelectionRange(n, n); } }
    panel.scrollIntoView({ block: "nearest" });
    return true;
  }
  function closePanels() {
    var closed = false;
    Object.keys(panels).forEach(function (name) { var p = document.getElementById("panel-" + name); if (p && !p.hidden) { p.hidden = true; closed = true; } });
    return closed;
  }
  function initDraft() {
    var head = document.querySelector(".draft-head");
    var mode = head && head.getAttribute("data-mode");
    if (mode && panels[mode]) openPanel(mode);
    else { var approve = document.getElementById("approve-button"); if (approve) approve.focus({ preventScroll: true }); }
    updateCount();
  }
  function draftKey(event) {
    switch (event.key) {
      case "a": var form = document.getElementById("approve-form"); if (form) { submit(form); return true; } return false;
      case "e": return openPanel("edit");
      case "r": return openPanel("reject");
      case "g": return openPanel("regenerate");
      case "j": var next = document.getElementById("next-draft"); if (next) { go(next.getAttribute("href")); return true; } return false;
      case "k": var prev = document.getElementById("prev-draft"); if (prev) { go(prev.getAttribute("href")); return true; } return false;
      case "u": var back = document.getElementById("back-to-queue"); if (back) { go(back.getAttribute("href")); return true; } return false;
      case "s": var snooze = document.getElementById("snooze-form"); if (snooze) { submit(snooze); return true; } return false;
    }
    return false;
  }

  // ---- undo: the button in the flash works for a few seconds ----------------------------------------------
  function initUndo() {
    var form = document.getElementById("undo-form");
    if (!form) return;
    var left = parseInt(form.getAttribute("data-expires"), 10) - Date.now();
    if (!(left > 0)) { form.remove(); return; }
    window.setTimeout(function () { if (form.parentNode) form.remove(); }, left);
  }

  function updateCount() {
    var body = document.getElementById("edit-body");
    var out = document.querySelector(".charcount[data-for=edit-body]");
    if (!body || !out) return;
    var limit = parseInt(body.getAttribute("data-limit"), 10);
    out.textContent = body.value.length.toLocaleString() + " characters";
    out.classList.toggle("bad", body.value.length > limit);
  }

  // ---- global -----------------------------------------------------------------------------------------
  function help(open) {
    var dialog = document.getElementById("help");
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal(); else if (!open && dialog.open) dialog.close();
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.metaKey || event.altKey) return;
    var target = event.target;
    if (event.ctrlKey) {
      if (event.key === "Enter" && typing(target) && target.form) { event.preventDefault(); submit(target.form); }
      return;
    }
    if (event.key === "Escape") {
      if (closePanels()) { event.preventDefault(); if (target && target.blur) target.blur(); }
      return;
    }
    if (typing(target)) {
      // In the reject panel, digits pick a reason.
      if (target.name === "reason" && /^[1-6]$/.test(event.key)) {
        var radios = document.querySelectorAll("#panel-reject input[name=reason]");
        var radio = radios[parseInt(event.key, 10) - 1];
        if (radio) { radio.checked = true; radio.focus(); event.preventDefault(); }
      }
      return;
    }
    if (event.key === "?") { help(true); event.preventDefault(); return; }
    if (event.key === "z") { var undo = document.getElementById("undo-form"); if (undo) { submit(undo); event.preventDefault(); return; } }
    if (event.key === "/") { var search = document.getElementById("queue-search"); if (search) { search.focus(); search.select(); event.preventDefault(); return; } }
    var handled = page() === "queue" ? queueKey(event) : page() === "draft" ? draftKey(event) : false;
    if (handled) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var row = target.closest("#queue-table tbody tr[data-draft-id]");
    if (row && !target.closest("a, input, button")) { select(rows().indexOf(row), false); }
    var opener = target.closest("[data-open]");
    if (opener) { openPanel(opener.getAttribute("data-open")); }
    if (target.closest("[data-close]")) { closePanels(); }
    if (target.closest("[data-help-open]")) { help(true); }
  });

  document.addEventListener("input", function (event) { if (event.target && event.target.id === "edit-body") updateCount(); });

  // Selects marked data-autosubmit apply at once (the filters, the admin page's role).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof Element && target.matches("select[data-autosubmit]") && target.form) submit(target.form);
  });

  function init() { initUndo(); if (page() === "queue") initQueue(); else if (page() === "draft") initDraft(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
  // A page restored from the back-forward cache is the page its URL names; re-read its state.
  window.addEventListener("pageshow", function (event) { if (event.persisted) init(); });
})();
