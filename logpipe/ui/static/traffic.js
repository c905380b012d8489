// Traffic: the error-rate timeline, requests by endpoint, and the user activity heatmap.
//
// URL state (besides q, from, to):
//   tr_top  how many endpoints get their own bar (default 10; the rest is "other")
//   tr_hm   what a heatmap cell counts: "users" (default: distinct user_id) or "records"
// Definitions (see /api/traffic): error rate = ERROR and CRITICAL records / all records of
// the bucket; a request is a record with a status; the heatmap is ISO weekday x hour, UTC.
// Clicks narrow: a timeline bucket sets from/to to it; an endpoint bar adds its terms to q
// (a status segment adds the status class too); a heatmap cell opens Discover on the latest
// hour of that weekday and hour.

import { counted, fmtCount, fmtPct, fmtTime, fmtWidth, lineChart, svg, title, topOf } from "/static/charts.js";

const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const CLASSES = ["2xx", "3xx", "4xx", "5xx", "other"];
const CLASS_TERMS = { "2xx": "status>=200 status<300", "3xx": "status>=300 status<400", "4xx": "status>=400 status<500", "5xx": "status>=500 status<600" };
const HOUR_MS = 3_600_000;

function joinQ(...parts) {
  return parts.map((p) => (p || "").trim()).filter(Boolean).join(" ");
}

function errorTimeline(t, ctx) {
  const box = ctx.el("section", { class: "panel", id: "tr-errors", dataset: { widthMs: t.width_ms } },
    ctx.el("h3", {}, "Error rate", ctx.el("span", { class: "muted" },
      ` ERROR and CRITICAL records / all records, per ${fmtWidth(t.width_ms)} (UTC); click a bucket to zoom to it`)));
  box.append(lineChart({
    buckets: t.timeline, widthMs: t.width_ms, yFormat: (v) => fmtPct(v), bucketClass: "er-bucket",
    series: [{ name: "error rate", cls: "rate", value: (b) => b.error_rate }],
    data: (b) => ({ startMs: b.start_ms, records: b.records, errors: b.errors, rate: b.error_rate ?? "", requests: b.requests, serverErrors: b.server_errors }),
    label: (b) => `${fmtTime(b.start_ms, t.width_ms)} UTC: ${counted(b.errors, "error")} / ${counted(b.records, "record")}` +
      (b.records ? ` = ${fmtPct(b.error_rate)}` : "") + `; ${counted(b.requests, "request")}, ${fmtCount(b.server_errors)} 5xx`,
    onclick: (b) => ctx.set({ from: String(b.start_ms), to: String(b.start_ms + t.width_ms) }),
  }));
  return box;
}

function endpointBars(e, state, ctx) {
  const rows = [...e.rows];
  if (e.other.count) rows.push({ key: "other", filter: null, count: e.other.count, classes: e.other.classes });
  const box = ctx.el("section", { class: "panel", id: "tr-endpoints", dataset: { requests: e.requests, top: e.top } },
    ctx.el("h3", {}, "Requests by endpoint", ctx.el("span", { class: "muted" },
      ` ${counted(e.requests, "request")} (records with a status), ${topOf(e.top, e.endpoints_total, "endpoint")}; click to narrow the search `),
    ctx.el("label", { class: "muted" }, "top ", ctx.el("select", { id: "tr-top", onchange: (ev) => ctx.set({ tr_top: ev.target.value === "10" ? "" : ev.target.value }) },
      [...new Set([5, 10, 20, 50, e.top])].sort((a, b) => a - b).map((n) => ctx.el("option", { value: n, selected: n === e.top }, String(n)))))));
  if (!rows.length) {
    box.append(ctx.el("p", { class: "empty" }, "Nothing here: no requests (records with a status) in this search and range."));
    return box;
  }
  const rowH = 22;
  const pad = { left: 280, right: 90, top: 4, bottom: 4 };
  const width = 1000;
  const height = pad.top + pad.bottom + rowH * rows.length;
  const max = Math.max(...rows.map((r) => r.count));
  const scale = (n) => (n / max) * (width - pad.left - pad.right);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart bars-chart", role: "img" });
  rows.forEach((r, i) => {
    const y = pad.top + i * rowH;
    const narrow = (extra) => ctx.set({ q: joinQ(state.q, r.filter, extra) });
    const g = svg("g", {
      class: `ep-bar${r.filter ? "" : " other"}`,
      dataset: { key: r.key, filter: r.filter || "", count: r.count, ...Object.fromEntries(CLASSES.map((c) => [`c${c}`, r.classes[c]])) },
      onclick: r.filter ? () => narrow("") : undefined,
    },
    svg("text", { x: pad.left - 8, y: y + 15, "text-anchor": "end", class: "label", text: r.key }),
    svg("text", { x: pad.left + scale(r.count) + 6, y: y + 15, class: "axis", text: fmtCount(r.count) }));
    let x = pad.left;
    for (const c of CLASSES) {
      const n = r.classes[c];
      if (!n) continue;
      g.append(svg("rect", {
        x, y: y + 3, width: Math.max(scale(n), 0.5), height: rowH - 6, class: `ep-seg s${c}`, dataset: { cls: c, count: n },
        onclick: r.filter && CLASS_TERMS[c] ? (ev) => { ev.stopPropagation(); narrow(CLASS_TERMS[c]); } : undefined,
      }, title(`${r.key}: ${fmtCount(n)} ${c} of ${counted(r.count, "request")}`)));
      x += scale(n);
    }
    root.append(g);
  });
  box.append(ctx.el("div", { class: "chart-legend" }, CLASSES.map((c) =>
    ctx.el("span", { class: "legend-item" }, ctx.el("span", { class: `swatch s${c}` }), c))), root);
  return box;
}

// White to deep blue, by the cell's share of the largest cell.
function shade(value, max) {
  if (!value) return "#f3f4f6";
  const t = Math.sqrt(value / max);
  const light = 92 - t * 60;
  return `hsl(217, 80%, ${light.toFixed(1)}%)`;
}

function heatmap(h, state, ctx) {
  const metric = state.tr_hm === "records" ? "records" : "users";
  const max = metric === "users" ? h.max_users : h.max_records;
  const what = metric === "users" ? "distinct users" : "records";
  const box = ctx.el("section", { class: "panel", id: "tr-heatmap", dataset: { metric, max } },
    ctx.el("h3", {}, "Activity by hour and weekday", ctx.el("span", { class: "muted" },
      ` ${what} per hour of day × day of week (UTC); click a cell for its latest hour in Discover `),
    ctx.el("span", { class: "switch" }, ["users", "records"].map((m) => ctx.el("button", {
      type: "button", id: `tr-hm-${m}`, class: m === metric ? "on" : "", onclick: () => ctx.set({ tr_hm: m === "users" ? "" : m }),
    }, m === "users" ? "distinct users" : "records")))));
  const cell = 34;
  const pad = { left: 44, top: 18 };
  const width = pad.left + 24 * cell + 4;
  const height = pad.top + 7 * cell + 4;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart heatmap", role: "img" });
  for (let hour = 0; hour < 24; hour++) {
    root.append(svg("text", { x: pad.left + hour * cell + cell / 2, y: 12, class: "axis", "text-anchor": "middle", text: String(hour).padStart(2, "0") }));
  }
  DAYS.forEach((d, i) => root.append(svg("text", { x: pad.left - 6, y: pad.top + i * cell + cell / 2 + 4, class: "axis", "text-anchor": "end", text: d })));
  for (const c of h.cells) {
    const value = c[metric];
    const lastMs = c.last ? Date.parse(c.last) : null;
    root.append(svg("rect", {
      x: pad.left + c.hour * cell + 1, y: pad.top + (c.dow - 1) * cell + 1, width: cell - 2, height: cell - 2, rx: 3,
      fill: shade(value, max), class: `hm-cell${lastMs !== null ? " live" : ""}`,
      dataset: { dow: c.dow, hour: c.hour, records: c.records, users: c.users, value, last: lastMs ?? "" },
      onclick: lastMs !== null ? () => ctx.set({ view: "discover", from: String(lastMs), to: String(lastMs + HOUR_MS) }) : undefined,
    }, title(`${DAYS[c.dow - 1]} ${String(c.hour).padStart(2, "0")}:00–${String(c.hour).padStart(2, "0")}:59 UTC: ` +
      `${counted(c.users, "distinct user")}, ${counted(c.records, "record")}`)));
  }
  // The legend: five steps of the scale with the values they stand for.
  const steps = [0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(f * max));
  box.append(root, ctx.el("div", { class: "chart-legend hm-legend", id: "tr-hm-legend" },
    `${what}: `, [...new Set(steps)].map((v) => ctx.el("span", { class: "legend-item" },
      ctx.el("span", { class: "swatch", style: `background:${shade(v, max || 1)}` }), fmtCount(v)))));
  return box;
}

export default {
  name: "traffic",
  label: "Traffic",
  async render(el, state, ctx) {
    const t = await ctx.api("traffic", { ...ctx.common(state), top: state.tr_top });
    if (!ctx.isCurrent()) return;
    const records = t.timeline.reduce((n, b) => n + b.records, 0);
    if (!records) {
      el.append(ctx.el("p", { class: "empty", id: "tr-empty" }, "Nothing here: no records match this search and range."));
      return;
    }
    el.append(ctx.el("p", { class: "muted", id: "tr-summary", dataset: { records } },
      `${counted(records, "record")} from ${t.from.slice(0, 16).replace("T", " ")} to ${t.to.slice(0, 16).replace("T", " ")} UTC.`));
    el.append(errorTimeline(t, ctx), endpointBars(t.endpoints, state, ctx), heatmap(t.heatmap, state, ctx));
  },
};
