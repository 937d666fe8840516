// vitals trends: one chart per check from GET /api/history (the history table plus the
// buckets not written yet), with a time range switch (1 h / 24 h / 7 d / 30 d). Charts
// are drawn with uPlot (vendored, served by vitals: the desk may be offline).
(() => {
  "use strict";
  const REDRAW_MS = 60000;
  const LEVEL = { ok: 0, warning: 1, unknown: 2, critical: 3 };
  let range = 3600;
  const plots = new Map();

  function data(points) {
    const xs = points.map((p) => Date.parse(p.t) / 1000);
    const hasValues = points.some((p) => p.value_last !== null);
    if (hasValues) {
      // With the status as a band behind the values (an IB connection's round-trip
      // time over its connected / disconnected periods).
      return {
        hasValues,
        series: [
          xs,
          points.map((p) => p.value_last),
          points.map((p) => p.value_max),
          points.map((p) => LEVEL[p.status] ?? 2),
        ],
      };
    }
    // No value (a connection, say): its status as a band, 0 ok … 3 critical.
    return { hasValues, series: [xs, points.map((p) => LEVEL[p.status] ?? 2)] };
  }

  // Alert fired (red) and resolved (green) markers, from the alerts table (GET
  // /api/alert-events: the check's events only, as JSON), when there is one.
  async function markers(check, from, to) {
    try {
      const hours = Math.ceil(range / 3600);
      const r = await fetch(`/api/alert-events?check=${encodeURIComponent(check)}&hours=${hours}`, { cache: "no-store" });
      if (!r.ok) return [];
      const body = await r.json();
      return (body.events || []).map((e) => ({ state: e.state, t: Date.parse(e.event_at) / 1000 }))
        .filter((m) => m.t >= from && m.t <= to);
    } catch (e) {
      return [];
    }
  }

  function drawMarkers(u) {
    const ms = u.vitalsMarkers || [];
    const ctx = u.ctx;
    ctx.save();
    ctx.lineWidth = 2;
    for (const m of ms) {
      const x = Math.round(u.valToPos(m.t, "x", true));
      ctx.strokeStyle = m.state === "firing" ? "#cf222e" : "#1a7f37";
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
    }
    ctx.restore();
  }

  function options(fig, hasValues, width) {
    const unit = fig.dataset.unit || "";
    const series = hasValues
      ? [
          {},
          { label: `last ${unit}`, stroke: "#1f6feb", width: 1.5 },
          { label: `max ${unit}`, stroke: "#d29922", width: 1, dash: [4, 4] },
          {
            label: "status", scale: "status", stroke: "rgba(207,34,46,0.5)", width: 0,
            fill: "rgba(207,34,46,0.10)", paths: uPlot.paths.stepped({ align: 1 }),
          },
        ]
      : [{}, { label: "status (0 ok … 3 critical)", stroke: "#cf222e", fill: "rgba(207,34,46,0.15)", paths: uPlot.paths.stepped({ align: 1 }) }];
    return {
      width, height: 160, series, axes: [{}, { size: 50 }], legend: { live: false },
      scales: {
        status: { range: [0, 3] },
        // The chosen window, whatever the data spans (also after a resize).
        x: { time: true, range: (u, min, max) => (u.vitalsWindow ? [u.vitalsWindow.min, u.vitalsWindow.max] : [min, max]) },
      },
      hooks: { draw: [drawMarkers] },
    };
  }

  async function draw(fig) {
    const check = fig.dataset.check;
    const to = new Date();
    const from = new Date(to.getTime() - range * 1000);
    const url = `/api/history?check=${encodeURIComponent(check)}&from=${from.toISOString()}&to=${to.toISOString()}`;
    let body;
    try {
      const r = await fetch(url, { cache: "no-store" });
      body = await r.json();
      if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
    } catch (e) {
      fig.querySelector(".note").textContent = `no history: ${e.message}`;
      return;
    }
    fig.querySelector(".note").textContent = body.points.length ? "" : "no history in this range yet";
    const { hasValues, series } = data(body.points);
    const marks = await markers(check, from.getTime() / 1000, to.getTime() / 1000);
    // Said once the chart shows them (tests wait for these).
    const done = () => {
      fig.dataset.step = String(body.step_s);
      fig.dataset.points = String(body.points.length);
      fig.dataset.markers = String(marks.length);
    };
    const box = fig.querySelector(".plot");
    const width = Math.max(240, box.clientWidth || 600);
    const old = plots.get(check);
    // The whole range on the x axis, however much of it has data.
    const window = { min: from.getTime() / 1000, max: to.getTime() / 1000 };
    if (old && old.hasValues === hasValues) {
      old.plot.vitalsMarkers = marks;
      old.plot.vitalsWindow = window;
      old.plot.setData(series);
      done();
      return;
    }
    if (old) old.plot.destroy();
    const plot = new uPlot(options(fig, hasValues, width), series, box);
    plot.vitalsMarkers = marks;
    plot.vitalsWindow = window;
    plot.setData(series);
    plots.set(check, { hasValues, plot });
    done();
  }

  function drawAll() {
    document.querySelectorAll("#trends figure.trend").forEach(draw);
  }

  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("#trends button[data-range]");
    if (!b) return;
    range = Number(b.dataset.range);
    document.querySelectorAll("#trends button[data-range]").forEach((x) => {
      x.setAttribute("aria-pressed", String(x === b));
    });
    drawAll();
  });
  window.addEventListener("resize", () => {
    plots.forEach(({ plot }, check) => {
      const box = document.querySelector(`#trends figure[data-check="${CSS.escape(check)}"] .plot`);
      if (box) plot.setSize({ width: Math.max(240, box.clientWidth), height: 160 });
    });
  });
  document.addEventListener("DOMContentLoaded", () => {
    if (!document.getElementById("trends")) return;
    drawAll();
    setInterval(drawAll, REDRAW_MS);
  });
})();
