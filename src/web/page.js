// vitals status page: refresh the data sections every 5 s without a full reload,
// count ages up between refreshes, filter and sort the tables, keep open what the
// operator opened, post actions with the token (asked in the page's own dialog).
(() => {
  "use strict";
  const REFRESH_MS = 5000;
  const TOKEN_KEY = "vitals-token";
  let lastOk = new Date();
  // How each sortable table is sorted: table key -> [column, direction].
  const sorts = new Map();

  const fmt = (s) => {
    s = Math.max(0, Math.round(s));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  };

  // A time as the desk reads it: in the server's zone (data-tz), with its abbreviation.
  function deskTime(d) {
    const tz = document.body.dataset.tz || undefined;
    try {
      return d.toLocaleTimeString("en-GB", { timeZone: tz, timeZoneName: "short", hour12: false });
    } catch (e) {
      return d.toISOString();
    }
  }

  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-since]").forEach((el) => {
      const t = Date.parse(el.dataset.since);
      if (!Number.isNaN(t)) el.textContent = fmt((now - t) / 1000);
    });
  }

  function applyFilter() {
    const input = document.getElementById("symbol-filter");
    const q = input ? input.value.trim().toUpperCase() : "";
    document.querySelectorAll(".registry-rows").forEach((body) => {
      const rows = [...body.querySelectorAll("tr")];
      let shown = 0;
      rows.forEach((tr) => {
        tr.hidden = q !== "" && !(tr.dataset.symbol || "").toUpperCase().includes(q);
        if (!tr.hidden) shown += 1;
      });
      const count = body.closest("details")?.querySelector(".filter-count");
      if (count) count.textContent = q === "" ? "" : `· ${shown} of ${rows.length} shown`;
      // Filtering opens the list: the matches are what the operator wants to see.
      if (q !== "") body.closest("details")?.setAttribute("open", "");
    });
  }

  // Sortable tables: a click on a heading sorts by that column (again: the other way).
  function cellKey(tr, col) {
    const td = tr.children[col];
    if (!td) return "";
    const raw = td.dataset.sort ?? td.textContent.trim();
    const n = Number(raw);
    return raw !== "" && !Number.isNaN(n) ? n : raw.toLowerCase();
  }

  function sortTable(table) {
    const how = sorts.get(table.dataset.table);
    if (!how) return;
    const [col, dir] = how;
    const body = table.tBodies[0];
    if (!body) return;
    const rows = [...body.rows];
    rows.sort((a, b) => {
      const x = cellKey(a, col), y = cellKey(b, col);
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    rows.forEach((r) => body.appendChild(r));
    table.querySelectorAll("th").forEach((th, i) => {
      th.setAttribute("aria-sort", i === col ? (dir > 0 ? "ascending" : "descending") : "none");
    });
  }

  function sortAll() {
    document.querySelectorAll("table.sortable[data-table]").forEach(sortTable);
  }

  function offline(why) {
    document.body.classList.add("offline");
    const b = document.getElementById("offline");
    b.hidden = false;
    b.textContent = `✖ vitals cannot be reached (${why}) since ${deskTime(lastOk)}: ` +
      "what is shown below is from then and is NOT current.";
  }

  async function refresh() {
    let html;
    try {
      const r = await fetch(location.pathname + location.search, { cache: "no-store", headers: { Accept: "text/html" } });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      html = await r.text();
    } catch (e) {
      offline(e.message || "no answer");
      return;
    }
    const doc = new DOMParser().parseFromString(html, "text/html");
    // What the operator opened stays open across the refresh.
    const open = new Set([...document.querySelectorAll("details[data-keep][open]")].map((d) => d.dataset.keep));
    document.querySelectorAll("[data-swap]").forEach((el) => {
      const fresh = doc.querySelector(`[data-swap="${el.dataset.swap}"]`);
      if (fresh && fresh.innerHTML !== el.innerHTML) el.innerHTML = fresh.innerHTML;
    });
    document.querySelectorAll("details[data-keep]").forEach((d) => {
      if (open.has(d.dataset.keep)) d.setAttribute("open", "");
    });
    lastOk = new Date();
    document.body.classList.remove("offline");
    document.getElementById("offline").hidden = true;
    applyFilter();
    sortAll();
    tick();
    document.dispatchEvent(new CustomEvent("vitals:refreshed"));
  }

  function toast(text) {
    const t = document.getElementById("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 12000);
  }

  // The token, asked in the page's own dialog (a password field), kept for this tab.
  function askToken() {
    const dialog = document.getElementById("token-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(null);
    const input = dialog.querySelector("input[name=token]");
    input.value = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        resolve(dialog.returnValue === "ok" && input.value ? input.value : null);
      }, { once: true });
      dialog.returnValue = "";
      dialog.showModal();
      input.focus();
    });
  }

  async function post(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    let token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      token = await askToken();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
    }
    button.disabled = true;
    toast(`${button.textContent.trim()}: running…`);
    try {
      const r = await fetch(button.dataset.post, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      const body = await r.json().catch(() => ({}));
      if (r.status === 401) sessionStorage.removeItem(TOKEN_KEY);
      const what = body.message || body.error || `HTTP ${r.status}`;
      toast(`${button.textContent.trim()}: ${r.ok ? "✔" : "✖"} ${what}`);
    } catch (e) {
      toast(`${button.textContent.trim()}: ✖ vitals cannot be reached (${e.message})`);
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  // A link to a check: scroll to it (a row or a card) and mark it for a moment.
  function goto(id) {
    const el = document.querySelector(`[data-check="${CSS.escape(id)}"]`);
    if (!el) return false;
    el.closest("details")?.setAttribute("open", "");
    el.scrollIntoView({ block: "center" });
    el.classList.add("pointed");
    setTimeout(() => el.classList.remove("pointed"), 2000);
    return true;
  }

  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-post]");
    if (b) { post(b); return; }
    const a = ev.target.closest("a[data-goto]");
    if (a && goto(a.dataset.goto)) { ev.preventDefault(); return; }
    const th = ev.target.closest("table.sortable[data-table] th");
    if (th) {
      const table = th.closest("table");
      const col = [...th.parentNode.children].indexOf(th);
      const was = sorts.get(table.dataset.table);
      sorts.set(table.dataset.table, [col, was && was[0] === col ? -was[1] : 1]);
      sortTable(table);
    }
  });
  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("symbol-filter")?.addEventListener("input", applyFilter);
    applyFilter();
    tick();
    if (location.hash.startsWith("#check-")) goto(decodeURIComponent(location.hash.slice(7)));
    setInterval(tick, 1000);
    // Only a page with live parts refreshes (the alerts history is read on request).
    if (document.querySelector("[data-swap]")) setInterval(refresh, REFRESH_MS);
  });
})();
