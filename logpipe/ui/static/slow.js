// Slow endpoints: latency percentiles per endpoint (or service), a chart and a table, and the
// latency over time of one selected endpoint.
//
// URL state (besides q, from, to):
//   slow_by   "endpoint" (default: method + endpoint template) or "service"
//   slow_thr  threshold: only groups whose p95 is above it (250ms, 1.5s, a number of ms)
//   slow_sel  the selected group, as its filter terms (e.g. `method=GET endpoint=/api/x`)
// Percentiles: quantile_cont over duration_ms of the records that have one (see /api/slow).
// Clicking a row or a whisker selects the group; "records ≥ p95" opens Discover with the
// group's terms, `duration_ms>=P95` and the same range; clicking a bucket of the latency line zooms to it.

import { counted, fmtCount, fmtMs, fmtPct, fmtTime, fmtWidth, legend, lineChart, svg, ticks, title } from "/static/charts.js";

function joinQ(...parts) {
  return parts.map((p) => (p || "").trim()).filter(Boolean).join(" ");
}

function controls(state, ctx) {
  const by = state.slow_by === "service" ? "service" : "endpoint";
  const form = ctx.el("form", { id: "slow-controls", class: "view-controls", onsubmit: (e) => {
    e.preventDefault();
    ctx.set({ slow_thr: form.querySelector("#slow-threshold").value.trim() });
  } },
  ctx.el("span", { class: "switch" },
    ["endpoint", "service"].map((name) => ctx.el("button", {
      type: "button", class: name === by ? "on" : "", dataset: { by: name }, id: `slow-by-${name}`,
      onclick: () => ctx.set({ slow_by: name === "endpoint" ? "" : name, slow_sel: "" }),
    }, name === "endpoint" ? "by endpoint" : "by service"))),
  ctx.el("label", {}, "p95 above ",
    ctx.el("input", { id: "slow-threshold", name: "threshold", size: 8, placeholder: "e.g. 500ms", value: state.slow_thr || "" })),
  ctx.el("button", { type: "submit", id: "slow-apply" }, "Apply"));
  return form;
}

function whiskers(groups, selected, ctx) {
  const rowH = 22;
  const pad = { left: 280, right: 20, top: 6, bottom: 24 };
  const width = 1000;
  const height = pad.top + pad.bottom + rowH * groups.length;
  const max = Math.max(...groups.map((g) => g.p99_ms), 0);
  const axis = ticks(max);
  const top = axis[axis.length - 1] || 1;
  const x = (v) => pad.left + (v / top) * (width - pad.left - pad.right);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart slow-chart", role: "img" });
  for (const t of axis) {
    root.append(svg("line", { x1: x(t), x2: x(t), y1: pad.top, y2: height - pad.bottom, class: "grid" }),
      svg("text", { x: x(t), y: height - 8, class: "axis", "text-anchor": "middle", text: fmtMs(t) }));
  }
  groups.forEach((g, i) => {
    const cy = pad.top + rowH * i + rowH / 2;
    const row = svg("g", {
      class: `slow-bar${g.filter === selected ? " selected" : ""}`,
      dataset: { key: g.key, filter: g.filter, count: g.count, p50: g.p50_ms, p95: g.p95_ms, p99: g.p99_ms },
      onclick: () => ctx.set({ slow_sel: g.filter === selected ? "" : g.filter }),
    },
    title(`${g.key}: ${counted(g.count, "request")}, p50 ${fmtMs(g.p50_ms)}, p95 ${fmtMs(g.p95_ms)}, p99 ${fmtMs(g.p99_ms)}`),
    svg("rect", { x: 0, y: cy - rowH / 2, width, height: rowH, class: "row-bg" }),
    svg("text", { x: pad.left - 8, y: cy + 4, "text-anchor": "end", class: "label", text: g.key }),
    svg("line", { x1: x(g.p50_ms), x2: x(g.p99_ms), y1: cy, y2: cy, class: "whisker" }),
    svg("line", { x1: x(g.p50_ms), x2: x(g.p50_ms), y1: cy - 6, y2: cy + 6, class: "tick p50" }),
    svg("line", { x1: x(g.p99_ms), x2: x(g.p99_ms), y1: cy - 6, y2: cy + 6, class: "tick p99" }),
    svg("circle", { cx: x(g.p95_ms), cy, r: 5, class: "dot p95" }));
    root.append(row);
  });
  return root;
}

// Discover with the group's terms, `duration_ms>=P95` and this view's range (all time when it has none).
function p95Link(state, g, ctx) {
  return { view: "discover", q: joinQ(state.q, g.filter, `duration_ms>=${atOrBelow(g.p95_ms)}`), ...ctx.rangeOf(state) };
}

function table(groups, selected, state, ctx) {
  const by = state.slow_by === "service" ? "service" : "endpoint";
  return ctx.el("table", { class: "slow-table" },
    ctx.el("thead", {}, ctx.el("tr", {},
      ctx.el("th", {}, by), ["requests", "p50", "p95", "p99", "max", "5xx"].map((h) => ctx.el("th", { class: "num" }, h)), ctx.el("th", {}, ""))),
    ctx.el("tbody", {}, groups.map((g) => ctx.el("tr", {
      class: `slow-row${g.filter === selected ? " selected" : ""}`,
      dataset: { key: g.key, filter: g.filter, count: g.count, p50: g.p50_ms, p95: g.p95_ms, p99: g.p99_ms, max: g.max_ms, errorRate: g.error_rate },
      onclick: () => ctx.set({ slow_sel: g.filter === selected ? "" : g.filter }),
    },
    ctx.el("td", { class: "mono" }, g.key),
    ctx.el("td", { class: "num" }, fmtCount(g.count)),
    ctx.el("td", { class: "num" }, fmtMs(g.p50_ms)),
    ctx.el("td", { class: "num" }, fmtMs(g.p95_ms)),
    ctx.el("td", { class: "num" }, fmtMs(g.p99_ms)),
    ctx.el("td", { class: "num" }, fmtMs(g.max_ms)),
    ctx.el("td", { class: "num" }, fmtPct(g.error_rate)),
    ctx.el("td", {}, ctx.el("a", {
      href: ctx.urlOf({ ...state, ...p95Link(state, g, ctx) }),
      class: "drill", title: "the requests at or above this group's p95, in Discover (same range)",
      onclick: (e) => { e.preventDefault(); e.stopPropagation(); ctx.set(p95Link(state, g, ctx)); },
    }, "records ≥ p95 →"))))));
}

// The p95 for a search term: cut to a thousandth of a millisecond (1366.6595000000002 -> 1366.659),
// never above the p95 itself, so `duration_ms>=` it still matches every record at or above the p95.
export function atOrBelow(ms) {
  const cut = Math.floor(ms * 1000);
  return cut / 1000 <= ms ? cut / 1000 : (cut - 1) / 1000;
}

async function timeline(el, state, ctx, selected) {
  const t = await ctx.api("slow/timeline", { ...ctx.common(state), q: joinQ(state.q, selected) });
  if (!ctx.isCurrent()) return;
  const box = ctx.el("section", { id: "slow-timeline", class: "panel", dataset: { filter: selected, widthMs: t.width_ms } },
    ctx.el("h3", {}, "Latency over time: ", ctx.el("span", { class: "mono" }, selected),
      ctx.el("span", { class: "muted" }, ` (per ${fmtWidth(t.width_ms)} bucket, UTC; click one to zoom to it)`),
      ctx.el("button", { type: "button", class: "close", onclick: () => ctx.set({ slow_sel: "" }) }, "close")));
  if (!t.buckets.some((b) => b.count)) {
    box.append(ctx.el("p", { class: "empty" }, "Nothing here: no timed records of this group in the range."));
  } else {
    const series = [
      { name: "p50", cls: "p50", value: (b) => b.p50_ms },
      { name: "p95", cls: "p95", value: (b) => b.p95_ms },
      { name: "p99", cls: "p99", value: (b) => b.p99_ms },
    ];
    box.append(legend(ctx.el, series), lineChart({
      buckets: t.buckets, widthMs: t.width_ms, series, yFormat: fmtMs, bucketClass: "lt-bucket",
      data: (b) => ({ startMs: b.start_ms, count: b.count, p50: b.p50_ms ?? "", p95: b.p95_ms ?? "", p99: b.p99_ms ?? "" }),
      onclick: (b) => ctx.set({ from: String(b.start_ms), to: String(b.start_ms + t.width_ms) }),
      label: (b) => `${fmtTime(b.start_ms, t.width_ms)} UTC: ${counted(b.count, "request")}` +
        (b.count ? `, p50 ${fmtMs(b.p50_ms)}, p95 ${fmtMs(b.p95_ms)}, p99 ${fmtMs(b.p99_ms)}` : ""),
    }));
  }
  el.append(box);
}

export default {
  name: "slow",
  label: "Slow endpoints",
  async render(el, state, ctx) {
    const params = { ...ctx.common(state), by: state.slow_by, threshold: state.slow_thr };
    const s = await ctx.api("slow", params);
    if (!ctx.isCurrent()) return;
    el.append(controls(state, ctx));
    const selected = state.slow_sel || "";
    const head = ctx.el("p", { class: "muted", id: "slow-summary", dataset: { requests: s.requests, groups: s.groups_total } },
      `${counted(s.requests, "timed request")}; ${counted(s.groups_total, s.by === "service" ? "service" : "endpoint")}` +
      (s.threshold_ms !== null ? ` with p95 above ${fmtMs(s.threshold_ms)}` : "") +
      (s.groups_total > s.groups.length ? ` (the slowest ${s.groups.length} shown)` : "") +
      ". Sorted by p95; whisker p50 to p99, dot p95. Percentiles: quantile_cont (linear interpolation), exact.");
    el.append(head);
    if (!s.groups.length) {
      el.append(ctx.el("p", { class: "empty", id: "slow-empty" }, s.requests
        ? "Nothing here: no group's p95 is above the threshold."
        : "Nothing here: no records with a duration (access lines) match this search and range."));
    } else {
      el.append(ctx.el("section", { class: "panel" }, whiskers(s.groups, selected, ctx)), table(s.groups, selected, state, ctx));
    }
    if (selected) await timeline(el, state, ctx, selected);
  },
};
