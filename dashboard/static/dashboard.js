// gitops dashboard: live updates, filters and the diff button. Plain JavaScript, no build.
"use strict";
(function () {
  const body = document.body;
  const page = body.dataset.page;
  const $ = (sel) => document.querySelector(sel);

  function say(text) {
    const region = $("#announce");
    if (region) region.textContent = text;
  }

  function fragment(html) {
    const table = document.createElement("table");
    const tbody = document.createElement("tbody");
    table.appendChild(tbody);
    tbody.innerHTML = html.trim();
    return tbody.firstElementChild;
  }

  // "5s ago" stays true without a reload.
  function ages() {
    const now = Date.now();
    for (const el of document.querySelectorAll("time[data-age]")) {
      const s = Math.max(0, Math.round((now - Date.parse(el.getAttribute("datetime"))) / 1000));
      if (isNaN(s)) continue;
      el.title = el.getAttribute("datetime");
      el.textContent = s < 60 ? s + "s ago" : s < 3600 ? Math.floor(s / 60) + "m ago"
        : s < 86400 ? Math.floor(s / 3600) + "h ago" : Math.floor(s / 86400) + "d ago";
    }
  }
  setInterval(ages, 5000);
  for (const form of document.querySelectorAll("form.filters")) {
    form.addEventListener("submit", (event) => event.preventDefault());
  }

  // ------------------------------------------------------------------ filters
  // What the events' text filter matches: the row's own text, read once per row (rows
  // are replaced, never edited, when they change).
  const texts = new WeakMap();
  function text(tr) {
    let found = texts.get(tr);
    if (found === undefined) {
      found = tr.textContent.toLowerCase().replace(/\s+/g, " ");
      texts.set(tr, found);
    }
    return found;
  }

  // The Apps page holds one page of rows at a time: the server filters and sorts all apps
  // (dashboard/listing.py); the same rules here keep rows that live updates replace honest.
  function appMatches(tr) {
    const words = ($("#q").value || "").toLowerCase().split(/\s+/).filter(Boolean);
    const state = $("#state").value;
    const d = tr.dataset;
    const okText = words.every((word) => (d.text || "").includes(word));
    const okState = !state || d.state === state || (state === "drifted" && d.drift === "drifted")
      || (state === "pending" && d.pending === "yes") || (state === "suspended" && d.held === "yes");
    return okText && okState;
  }

  function appsFilter() {
    for (const tr of document.querySelectorAll("#apps tbody tr")) {
      const hide = !appMatches(tr);
      if (tr.hidden !== hide) tr.hidden = hide; // untouched rows cost no style work
    }
  }

  let asked = 0;
  async function appRows(offset) {
    const mine = ++asked;
    const table = $("#apps");
    const query = new URLSearchParams({ q: $("#q").value, state: $("#state").value, offset: String(offset) });
    table.setAttribute("aria-busy", "true");
    try {
      const answer = await fetch("/fragments/apps?" + query, { credentials: "same-origin" });
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      const found = await answer.json();
      if (mine !== asked) return;
      const tbody = table.tBodies[0];
      if (offset === 0) tbody.innerHTML = found.html; else tbody.insertAdjacentHTML("beforeend", found.html);
      table.dataset.next = found.next === null ? "" : String(found.next);
      $("#more").hidden = found.next === null;
      $("#count").textContent = found.total;
      const filtered = $("#q").value.trim() || $("#state").value;
      $("#shown").textContent = filtered ? found.matching + " of " + found.total + " shown" : "";
      $("#loaded").textContent = found.next === null ? "" : tbody.rows.length + " of " + found.matching + " loaded";
      ages();
    } catch (err) {
      $("#loaded").textContent = "Could not load rows: " + String(err);
    } finally {
      if (mine === asked) table.setAttribute("aria-busy", "false");
    }
  }

  let typing = null;
  function appsFilterChanged() {
    appsFilter();
    clearTimeout(typing);
    typing = setTimeout(() => appRows(0), 150);
  }

  function eventMatches(tr) {
    const app = $("#app") ? $("#app").value : "";
    const kind = $("#kind") ? $("#kind").value : "";
    const q = $("#q") ? $("#q").value.toLowerCase().trim() : "";
    const d = tr.dataset;
    const apps = d.apps ? d.apps.split(" ") : [];
    if (body.dataset.app && !apps.includes(body.dataset.app)) return false;
    if (body.dataset.delivery && d.delivery !== body.dataset.delivery) return false;
    return (!app || apps.includes(app)) && (!kind || d.kind === kind) && (!q || text(tr).includes(q));
  }

  function eventsFilter() {
    for (const tr of document.querySelectorAll("#events tbody tr")) tr.hidden = !eventMatches(tr);
  }

  // ------------------------------------------------------------------ live
  const KEEP = 1000; // event rows a page keeps; older ones remain on /events?delivery=…
  let paused = false;
  const held = [];

  function addEvent(html) {
    const tbody = $("#events tbody");
    if (!tbody) return;
    const tr = fragment(html);
    if (!tr || document.getElementById(tr.id)) return;
    tr.hidden = !eventMatches(tr);
    if (tr.hidden && (body.dataset.app || body.dataset.delivery)) return;
    tr.classList.add("flash");
    tbody.insertBefore(tr, tbody.firstChild);
    if (tbody.rows.length > KEEP) {
      while (tbody.rows.length > KEEP) tbody.deleteRow(-1);
      $("#events").dataset.before = tbody.rows[tbody.rows.length - 1].id.slice(3);
      $("#older").hidden = false;
    }
  }

  async function olderEvents() {
    const table = $("#events");
    const query = new URLSearchParams({ before: table.dataset.before, delivery: body.dataset.delivery || "" });
    const button = $("#older");
    button.disabled = true;
    try {
      const answer = await fetch("/fragments/events?" + query, { credentials: "same-origin" });
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      const found = await answer.json();
      const tbody = table.tBodies[0];
      const first = tbody.rows.length;
      tbody.insertAdjacentHTML("beforeend", found.html);
      for (let i = first; i < tbody.rows.length; i++) tbody.rows[i].hidden = !eventMatches(tbody.rows[i]);
      table.dataset.before = found.before === null ? "" : String(found.before);
      button.hidden = found.before === null;
    } catch (err) {
      say("Could not load older events: " + String(err));
    } finally {
      button.disabled = false;
    }
  }

  function updateRow(app, html) {
    const tbody = $("#apps tbody");
    if (!tbody) return;
    const tr = fragment(html);
    const old = document.getElementById("app-" + app);
    if (old) old.replaceWith(tr);
    else if ($("#apps").dataset.next === "" && appMatches(tr)) tbody.appendChild(tr);
    else return; // not on the loaded pages: "Show more" or a filter brings it, sorted
    tr.hidden = !appMatches(tr);
    tr.classList.add("flash");
    if (!old || old.dataset.state !== tr.dataset.state) {
      say(app + ": " + tr.querySelector(".outcome .badge").textContent.trim());
    }
    ages();
  }

  function connect() {
    if (!window.EventSource) return;
    const after = body.dataset.after || "0";
    const source = new EventSource("/stream?after=" + encodeURIComponent(after));
    const live = $("#live");
    source.addEventListener("open", () => { live.innerHTML = '<span aria-hidden="true">●</span> live'; });
    source.addEventListener("error", () => { live.innerHTML = '<span aria-hidden="true">○</span> reconnecting'; });
    source.addEventListener("record", (message) => {
      const data = JSON.parse(message.data);
      body.dataset.after = data.seq;
      if (page === "apps") {
        for (const row of data.rows) updateRow(row.app, row.html);
        if (data.total !== undefined) $("#count").textContent = data.total;
      } else if (page === "events" || page === "app") {
        if (paused) {
          held.push(data.html);
          $("#held").textContent = held.length + " new while paused";
        } else {
          addEvent(data.html);
        }
      }
    });
  }

  // ------------------------------------------------------------------ app page
  async function load(container, url) {
    container.setAttribute("aria-busy", "true");
    try {
      const answer = await fetch(url, { headers: { "X-Fragment": "1" }, credentials: "same-origin" });
      container.innerHTML = await answer.text();
    } catch (err) {
      container.innerHTML = '<p class="error" role="alert">Could not load: ' + String(err) + "</p>";
    } finally {
      container.setAttribute("aria-busy", "false");
    }
  }

  if (page === "apps") {
    $("#q").addEventListener("input", appsFilterChanged);
    $("#state").addEventListener("change", appsFilterChanged);
    $("#more").addEventListener("click", () => appRows(Number($("#apps").dataset.next)));
  }
  if (page === "events") {
    for (const id of ["#app", "#kind"]) $(id).addEventListener("change", eventsFilter);
    $("#q").addEventListener("input", eventsFilter);
    $("#older").addEventListener("click", olderEvents);
    const button = $("#pause");
    button.addEventListener("click", () => {
      paused = !paused;
      button.setAttribute("aria-pressed", String(paused));
      button.textContent = paused ? "Resume" : "Pause";
      if (!paused) {
        while (held.length) addEvent(held.shift());
        $("#held").textContent = "";
      }
    });
    eventsFilter();
  }
  if (page === "app") {
    const objects = $("#objects");
    if (objects && objects.dataset.src && body.dataset.app) load(objects, objects.dataset.src);
    const button = $("#diff-button");
    if (button) {
      button.addEventListener("click", (event) => {
        event.preventDefault();
        const target = $("#diff");
        target.innerHTML = '<p class="muted">Comparing with Git…</p>';
        load(target, button.getAttribute("href"));
      });
    }
  }
  // Clock times are shown first; ages replace them once the page is painted.
  requestAnimationFrame(() => setTimeout(ages, 0));
  if (page === "apps" || page === "events" || page === "app") connect();
})();
