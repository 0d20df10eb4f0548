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
  // What the text filter matches: the row's own text, read once per row (rows are
  // replaced, never edited, when they change).
  const texts = new WeakMap();
  function text(tr) {
    let found = texts.get(tr);
    if (found === undefined) {
      found = tr.textContent.toLowerCase().replace(/\s+/g, " ");
      texts.set(tr, found);
    }
    return found;
  }

  function appsFilter() {
    const q = ($("#q").value || "").toLowerCase().trim();
    const state = $("#state").value;
    let shown = 0;
    const rows = document.querySelectorAll("#apps tbody tr");
    for (const tr of rows) {
      const d = tr.dataset;
      const okText = !q || text(tr).includes(q);
      const okState = !state || d.state === state || (state === "drifted" && d.drift === "drifted")
        || (state === "pending" && d.pending === "yes") || (state === "suspended" && d.held === "yes");
      const hide = !(okText && okState);
      if (tr.hidden !== hide) tr.hidden = hide; // untouched rows cost no style work
      if (!hide) shown++;
    }
    $("#shown").textContent = shown === rows.length ? "" : shown + " of " + rows.length + " shown";
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
    while (tbody.rows.length > KEEP) tbody.deleteRow(-1);
  }

  function updateRow(app, html) {
    const tbody = $("#apps tbody");
    if (!tbody) return;
    const tr = fragment(html);
    const old = document.getElementById("app-" + app);
    const changed = !old || old.dataset.state !== tr.dataset.state;
    if (old) old.replaceWith(tr); else tbody.appendChild(tr);
    tr.classList.add("flash");
    if (changed) say(app + ": " + tr.querySelector(".outcome .badge").textContent.trim());
    ages();
    $("#count").textContent = tbody.rows.length;
    appsFilter();
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
    $("#q").addEventListener("input", appsFilter);
    $("#state").addEventListener("change", appsFilter);
    if ($("#q").value || $("#state").value) appsFilter();
  }
  if (page === "events") {
    for (const id of ["#app", "#kind"]) $(id).addEventListener("change", eventsFilter);
    $("#q").addEventListener("input", eventsFilter);
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
