// Errors: the ERROR and CRITICAL groups of the search and time range (as `logpipe query errors`),
// each with its count, first/last seen, services, endpoints and a trend over the range; a click
// on a group lists exactly that group's records (newest first) with their stack traces.
//
// URL state: view=errors, q, from, to (shared), group = the selected group's key.
// The DOM carries what tests read: #error-summary[data-total][data-groups], tr.error-group
// [data-key][data-count][data-trend], #error-samples[data-key][data-count], li.error-sample
// [data-event-id].
//
// The small helpers below (utc, sparkline, filterValue, recordDetail) are shared with the
// patterns and journey views.

import { counted } from "/static/charts.js";

export { counted };

export function utc(iso) {
  return iso ? String(iso).replace(/Z$/, "").slice(0, 23).replace("T", " ") : "";
}

export function pct(share) {
  return `${(share * 100).toFixed(share >= 0.1 ? 0 : 1)}%`;
}

// A filter-language value: bare when it can be, else quoted with \" and \\ escaped.
export function filterValue(value) {
  const text = String(value);
  if (/^[^\s"]+$/.test(text)) return text;
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

// An inline SVG line of counts per equal time slice (the trend of a group over the range).
export function sparkline(counts, { width = 120, height = 22 } = {}) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "spark");
  svg.dataset.trend = counts.join(",");
  const max = Math.max(1, ...counts);
  const step = counts.length > 1 ? width / (counts.length - 1) : width;
  const points = counts.map((n, i) => `${(i * step).toFixed(1)},${(height - 2 - (n / max) * (height - 4)).toFixed(1)}`);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", counts.length > 1 ? points.join(" ") : `0,${height - 2} ${width},${height - 2}`);
  svg.append(line);
  const title = document.createElementNS(ns, "title");
  title.textContent = `per slice: ${counts.join(" ")}`;
  svg.append(title);
  return svg;
}

export function nothing(ctx, text) {
  return ctx.el("div", { class: "empty" }, text);
}

// One record, every field that is set, the stack trace last (a closed <details> when asked).
export function recordDetail(ctx, record, { open = true } = {}) {
  const skip = new Set(["error", "message"]);
  const rows = Object.entries(record).filter(([k, v]) => !skip.has(k) && v !== null && v !== undefined && v !== "" && k !== "index");
  const fields = ctx.el("table", { class: "fields" },
    rows.map(([k, v]) => ctx.el("tr", {}, ctx.el("th", {}, k),
      ctx.el("td", { class: "mono" }, k === "ts" ? `${utc(v)} UTC` : typeof v === "object" ? JSON.stringify(v) : String(v)))));
  const parts = [ctx.el("div", { class: "mono message" }, record.message || "")];
  parts.push(fields);
  if (record.error) {
    parts.push(ctx.el("details", { open: open || undefined, class: "stack" },
      ctx.el("summary", {}, "stack trace"), ctx.el("pre", { class: "mono" }, record.error)));
  }
  return parts;
}

const FIRST_SAMPLES = 20;
const MORE_SAMPLES = 100;

function sampleItem(ctx, r) {
  return ctx.el("li", { class: "error-sample", dataset: { eventId: r.event_id } },
    ctx.el("div", { class: "line" },
      ctx.el("span", { class: "mono" }, utc(r.ts)), " ", ctx.el("span", { class: `lv-${r.level}` }, r.level), " ",
      ctx.el("span", { class: "muted" }, [r.service, r.endpoint || r.path].filter(Boolean).join(" ")),
      r.request_id ? ctx.el("button", { type: "button", class: "link", title: "this record's request in Discover",
        onclick: () => ctx.set({ view: "discover", q: `request_id=${filterValue(r.request_id)}`, group: "", ...ctx.rangeAround(r.ts) }) }, "request in Discover") : ""),
    ctx.el("details", {}, ctx.el("summary", { class: "mono" }, r.message || ""), recordDetail(ctx, r)));
}

// Draw a drill-down's records into `list`, and a button that asks for more of them (in place:
// how many are listed is not part of the URL) until every record of the group is there.
export function moreButton(ctx, panel, list, shown, first, fetchMore, item) {
  let current = first;
  const button = ctx.el("button", { type: "button", class: "more" });
  const draw = () => {
    list.replaceChildren(...current.records.map(item));
    const left = current.count - current.records.length;
    shown.textContent = left > 0 ? ` (newest ${current.records.length} shown)` : "";
    button.hidden = left <= 0;
    button.textContent = `show ${Math.min(left, MORE_SAMPLES)} more`;
    list.dataset.shown = String(current.records.length);
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const next = await fetchMore(Math.min(current.records.length + MORE_SAMPLES, 10000));
      if (!ctx.isCurrent()) return;
      current = next;
      draw();
    } catch (err) {
      ctx.showError(err.message);
    } finally {
      button.disabled = false;
    }
  });
  panel.append(button);
  draw();
}

function topList(ctx, items) {
  return ctx.el("span", { class: "top" }, items.flatMap((t, i) => [i ? ", " : "", ctx.el("span", { class: "mono" }, t.value), ctx.el("span", { class: "muted", dataset: { count: t.count } }, ` ${t.count}`)]));
}

export default {
  name: "errors",
  label: "Errors",
  async render(el, state, ctx) {
    const answer = await ctx.api("errors", ctx.common(state));
    if (!ctx.isCurrent()) return;
    const summary = ctx.el("div", { id: "error-summary", class: "view-summary", dataset: { total: answer.total, groups: answer.groups.length } },
      answer.groups.length
        ? `${counted(answer.total, "error record")} in ${counted(answer.groups.length, "group")}, ${utc(answer.from)} to ${utc(answer.to)} UTC`
        : "");
    el.append(summary);
    if (!answer.groups.length) {
      el.append(nothing(ctx, "Nothing here: no ERROR or CRITICAL records in this time range and search."));
      return;
    }
    const head = ctx.el("tr", {}, ["count", "group", "services", "endpoints", "first seen", "last seen", "trend"].map(
      (h, i) => ctx.el("th", { class: i === 0 ? "num" : undefined }, h)));
    const body = answer.groups.map((g) => ctx.el("tr", {
      class: `error-group clickable${g.key === state.group ? " selected" : ""}`,
      dataset: { key: g.key, count: g.count },
      title: "show this group's records",
      onclick: () => ctx.set({ group: g.key === state.group ? "" : g.key }),
    },
    ctx.el("td", { class: "num" }, g.count.toLocaleString("en-US")),
    ctx.el("td", {}, ctx.el("div", { class: "mono key" }, g.key), ctx.el("div", { class: "muted" }, g.sample_message || "")),
    ctx.el("td", {}, topList(ctx, g.top_services)),
    ctx.el("td", {}, topList(ctx, g.top_endpoints)),
    ctx.el("td", { class: "mono nowrap" }, utc(g.first_seen)),
    ctx.el("td", { class: "mono nowrap" }, utc(g.last_seen)),
    ctx.el("td", {}, sparkline(g.trend))));
    el.append(ctx.el("table", { id: "error-groups", class: "wide" }, ctx.el("thead", {}, head), ctx.el("tbody", {}, body)));
    if (state.group === undefined) return;
    const group = answer.groups.find((g) => g.key === state.group);
    const panel = ctx.el("section", { id: "error-samples", class: "drill", dataset: { key: state.group } });
    el.append(panel);
    if (!group) {
      panel.dataset.count = "0";
      panel.append(nothing(ctx, "Nothing here: this group has no records in this time range and search."));
      return;
    }
    const samples = await ctx.api("errors/samples", { ...ctx.common(state), key: state.group, limit: FIRST_SAMPLES });
    if (!ctx.isCurrent()) return;
    panel.dataset.count = String(samples.count);
    const shown = ctx.el("span", { class: "muted" });
    panel.append(
      ctx.el("h3", {}, ctx.el("span", { class: "mono" }, samples.key), ` · ${counted(samples.count, "record")}`, shown),
      ctx.el("button", { type: "button", class: "close", onclick: () => ctx.set({ group: "" }) }, "close"));
    if (group.sample_error) {
      panel.append(ctx.el("details", { class: "stack" }, ctx.el("summary", {}, "latest stack trace of the group"),
        ctx.el("pre", { class: "mono" }, group.sample_error)));
    }
    const list = ctx.el("ol", { class: "samples" });
    panel.append(list);
    moreButton(ctx, panel, list, shown, samples, (limit) => ctx.api("errors/samples", { ...ctx.common(state), key: state.group, limit }),
      (r) => sampleItem(ctx, r));
  },
};
