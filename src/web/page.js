// vitals status page: refresh the data sections every 5 s without a full reload,
// count ages up between refreshes, filter the registry, post actions with the token.
(() => {
  "use strict";
  const REFRESH_MS = 5000;
  const TOKEN_KEY = "vitals-token";
  let lastOk = new Date();

  const fmt = (s) => {
    s = Math.max(0, Math.round(s));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  };

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
    document.querySelectorAll(".registry-rows tr").forEach((tr) => {
      tr.hidden = q !== "" && !(tr.dataset.symbol || "").toUpperCase().includes(q);
    });
  }

  function offline(why) {
    document.body.classList.add("offline");
    const b = document.getElementById("offline");
    b.hidden = false;
    b.textContent = `✖ vitals cannot be reached (${why}) since ${lastOk.toLocaleTimeString()}: ` +
      "what is shown below is from then and is NOT current.";
  }

  async function refresh() {
    let html;
    try {
      const r = await fetch(location.pathname, { cache: "no-store", headers: { Accept: "text/html" } });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      html = await r.text();
    } catch (e) {
      offline(e.message || "no answer");
      return;
    }
    const doc = new DOMParser().parseFromString(html, "text/html");
    document.querySelectorAll("[data-swap]").forEach((el) => {
      const fresh = doc.querySelector(`[data-swap="${el.dataset.swap}"]`);
      if (fresh && fresh.innerHTML !== el.innerHTML) el.innerHTML = fresh.innerHTML;
    });
    lastOk = new Date();
    document.body.classList.remove("offline");
    document.getElementById("offline").hidden = true;
    applyFilter();
    tick();
    document.dispatchEvent(new CustomEvent("vitals:refreshed"));
  }

  function toast(text) {
    const t = document.getElementById("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 8000);
  }

  async function post(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    let token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      token = window.prompt("Token for actions (the value of the server's token variable):");
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

  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-post]");
    if (b) post(b);
  });
  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("symbol-filter")?.addEventListener("input", applyFilter);
    applyFilter();
    tick();
    setInterval(tick, 1000);
    setInterval(refresh, REFRESH_MS);
  });
})();
