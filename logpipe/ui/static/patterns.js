// Patterns: Drain templates of the records the search and time range select (as `logpipe
// patterns`; every level unless the search says e.g. level>=WARNING), with counts that add up to
// the total, share, examples, first/last seen and a trend; a click on a pattern lists exactly its
// records (the server mines again and answers the records of that template).
//
// Only the newest `bound` matching records are mined (the server's LOGPIPE_UI_PATTERN_RECORDS,
// 100,000 by default); when the search and range select more, #pattern-bound says so.
//
// URL state: view=patterns, q, from, to (shared), pattern = the selected pattern's id.
// The DOM carries what tests read: #pattern-summary[data-total][data-patterns][data-others],
// #pattern-bound[data-mined][data-matching][data-since] (only when not every record was mined),
// tr.pattern[data-id][data-count][data-template], #pattern-records[data-id][data-count],
// li.pattern-record[data-event-id].

import { counted, moreButton, nothing, pct, recordDetail, sparkline, utc } from "/static/errors.js";

export default {
  name: "patterns",
  label: "Patterns",
  async render(el, state, ctx) {
    const answer = await ctx.api("patterns", ctx.common(state));
    if (!ctx.isCurrent()) return;
    const n = answer.patterns.length;
    el.append(ctx.el("div", { id: "pattern-summary", class: "view-summary",
      dataset: { total: answer.total, patterns: n, others: answer.others } },
    n ? `${counted(answer.total, "record")} in ${counted(n, "pattern")}${answer.others ? ` (and ${counted(answer.others, "record")} in smaller ones)` : ""}, ${utc(answer.from)} to ${utc(answer.to)} UTC` : ""));
    if (answer.matching > answer.total) {
      const num = (x) => x.toLocaleString("en-US");
      el.append(ctx.el("p", { id: "pattern-bound", class: "bound",
        dataset: { mined: answer.total, matching: answer.matching, since: answer.from } },
      `Patterns of the newest ${num(answer.total)} of ${num(answer.matching)} matching records (since ${utc(answer.from)} UTC) — narrow the range or the search to mine them all.`));
    }
    if (!n) {
      el.append(nothing(ctx, "Nothing here: no records in this time range and search."));
      return;
    }
    const head = ctx.el("tr", {}, ["count", "share", "template and examples", "first seen", "last seen", "trend"].map(
      (h, i) => ctx.el("th", { class: i < 2 ? "num" : undefined }, h)));
    const rows = answer.patterns.map((p) => ctx.el("tr", {
      class: `pattern clickable${p.id === state.pattern ? " selected" : ""}`,
      dataset: { id: p.id, count: p.count, template: p.template },
      title: "show this pattern's records",
      onclick: () => ctx.set({ pattern: p.id === state.pattern ? "" : p.id }),
    },
    ctx.el("td", { class: "num" }, p.count.toLocaleString("en-US")),
    ctx.el("td", { class: "num" }, pct(p.share)),
    ctx.el("td", {}, ctx.el("div", { class: "mono template" }, p.template),
      p.examples.map((x) => ctx.el("div", { class: "mono muted example" }, x))),
    ctx.el("td", { class: "mono nowrap" }, utc(p.first_seen)),
    ctx.el("td", { class: "mono nowrap" }, utc(p.last_seen)),
    ctx.el("td", {}, sparkline(p.trend))));
    el.append(ctx.el("table", { id: "patterns", class: "wide" }, ctx.el("thead", {}, head), ctx.el("tbody", {}, rows)));
    if (state.pattern === undefined) return;
    const panel = ctx.el("section", { id: "pattern-records", class: "drill", dataset: { id: state.pattern } });
    el.append(panel);
    let drill;
    try {
      drill = await ctx.api("patterns/records", { ...ctx.common(state), id: state.pattern, limit: 20 });
    } catch (err) {
      if (!ctx.isCurrent()) return;
      panel.dataset.count = "0";
      panel.append(nothing(ctx, `Nothing here: ${err.message}`));
      return;
    }
    if (!ctx.isCurrent()) return;
    panel.dataset.count = String(drill.count);
    const shown = ctx.el("span", { class: "muted" });
    const list = ctx.el("ol", { class: "samples" });
    panel.append(
      ctx.el("h3", {}, ctx.el("span", { class: "mono" }, drill.template), ` · ${counted(drill.count, "record")}`, shown),
      ctx.el("button", { type: "button", class: "close", onclick: () => ctx.set({ pattern: "" }) }, "close"),
      list);
    moreButton(ctx, panel, list, shown, drill, (limit) => ctx.api("patterns/records", { ...ctx.common(state), id: state.pattern, limit }),
      (r) => ctx.el("li", { class: "pattern-record", dataset: { eventId: r.event_id } },
        ctx.el("details", {}, ctx.el("summary", {}, ctx.el("span", { class: "mono" }, utc(r.ts)), " ",
          ctx.el("span", { class: `lv-${r.level}` }, r.level), " ", ctx.el("span", { class: "mono" }, r.message || "")),
        recordDetail(ctx, r, { open: false }))));
  },
};
