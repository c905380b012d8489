// Discover: the volume histogram, field facets and the record list of one search.
//
// URL state keys (besides the shared q, from, to; `from`/`to` are epoch ms after a zoom):
//   view=discover   this view (the default one)
//   open=EVENT_ID   the expanded record (shown above the list when it is not on the first page)
//   context=EVENT_ID  show the records around that one in its source and the rest of its request
//   facets=F1,F2    extra facet fields asked for by name (attrs.KEY, trace_id, duration_ms, ...)
//   columns=F1,F2   the record list's columns after the time, in order (any field of a record, or
//                   attrs.KEY.KEY); without it: level, service, message
//   live=1          refresh the results every LIVE_EVERY_MS, paused while the list is scrolled
//                   down, a record is open, more pages are loaded or the search box is being edited
//   span=all        all time; without it and without from/to the view shows the latest hour of
//                   the records (the hour ending at the newest record, as the API's latest=1h), the
//                   way Kibana opens on "last 15 minutes": facets and histogram over every record of
//                   a large archive take seconds, one hour of it a fraction of one.
// API: /api/search, /api/histogram, /api/facets, /api/record, /api/context (logpipe/ui/discover.py).
// Every time on the page is UTC.

const LEVEL_ORDER = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const PAGE = 100;
const LATEST = "1h"; // the default range: the last hour of the records
const LATEST_TEXT = "last hour of the records";
const HIST_HEIGHT = 110;
const SVG = "http://www.w3.org/2000/svg";

// --- small helpers -------------------------------------------------------------------------------

export function shortTs(iso) {
  // "2026-12-03T16:49:11.181747Z" -> "2026-12-03 16:49:11.181"
  if (!iso) return "";
  const [day, rest = ""] = iso.replace("Z", "").split("T");
  const [hms, frac = ""] = rest.split(".");
  return `${day} ${hms}.${(frac + "000").slice(0, 3)}`;
}

// One filter term for `field=value` (or !=), the value quoted when it needs to be.
export function term(field, op, value) {
  const text = String(value);
  const bare = text !== "" && !/[\s"\\]/.test(text);
  return `${field}${op}${bare ? text : `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`}`;
}

export function addTerm(q, t) {
  const current = (q || "").trim();
  if (current.split(/\s+/).includes(t)) return current;
  return current ? `${current} ${t}` : t;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function pad(n, w = 2) {
  return String(n).padStart(w, "0");
}

function axisLabel(ms, stepMs, spanMs) {
  const d = new Date(ms);
  const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  const day = `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  if (stepMs >= 86400000) return day;
  if (spanMs > 86400000) return `${day} ${hm}`;
  if (stepMs < 60000) return `${hm}:${pad(d.getUTCSeconds())}`;
  return hm;
}

const TICK_STEPS = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400, 604800, 2592000].map((s) => s * 1000);

function tickStep(spanMs) {
  return TICK_STEPS.find((s) => spanMs / s <= 8) || TICK_STEPS[TICK_STEPS.length - 1];
}

// --- the histogram -------------------------------------------------------------------------------

// The width the histogram can take: its box's inner width, or, when the view draws off-screen
// (the previous answer still shown), the main area's less the box's padding and border.
function innerWidth(box) {
  const host = box.isConnected ? box : document.getElementById("view");
  const style = getComputedStyle(host);
  const inner = host.clientWidth - parseFloat(style.paddingLeft || "0") - parseFloat(style.paddingRight || "0");
  return Math.floor(box.isConnected ? inner : inner - 18);
}

function drawHistogram(box, hist, ctx) {
  const width = Math.max(innerWidth(box), 200);
  const plotH = HIST_HEIGHT - 18;
  const root = svg("svg", { id: "d-histogram", width, height: HIST_HEIGHT, viewBox: `0 0 ${width} ${HIST_HEIGHT}`, preserveAspectRatio: "none" });
  root.dataset.from = String(hist.from);
  root.dataset.to = String(hist.to);
  root.dataset.step = String(hist.step_ms);
  root.dataset.total = String(hist.total);
  const span = hist.to - hist.from;
  const x = (t) => ((t - hist.from) / span) * width;
  const max = Math.max(1, ...hist.buckets.map((b) => b.n));
  for (const b of hist.buckets) {
    const x0 = Math.max(0, x(b.t));
    const x1 = Math.min(width, x(b.t + hist.step_ms));
    const g = svg("g", { class: "d-bucket" });
    g.dataset.t = String(b.t);
    g.dataset.n = String(b.n);
    g.dataset.levels = JSON.stringify(b.levels);
    const title = svg("title");
    title.textContent = `${new Date(b.t).toISOString().replace("T", " ").slice(0, 19)} UTC: ${b.n.toLocaleString("en-US")}` +
      Object.entries(b.levels).map(([lv, n]) => `\n${lv} ${n}`).join("");
    g.append(title);
    let y = plotH;
    for (const lv of hist.levels) {
      const n = b.levels[lv] || 0;
      if (!n) continue;
      const h = (n / max) * (plotH - 4);
      y -= h;
      g.append(svg("rect", { x: x0, y, width: Math.max(1, x1 - x0 - 1), height: h, class: `h-${lv}` }));
    }
    // A full-height transparent hit area, so the bucket's tooltip shows anywhere in its column.
    g.append(svg("rect", { x: x0, y: 0, width: Math.max(1, x1 - x0), height: plotH, class: "d-hit" }));
    root.append(g);
  }
  const ticks = tickStep(span);
  for (let t = Math.ceil(hist.from / ticks) * ticks; t < hist.to; t += ticks) {
    const tx = x(t);
    if (tx > width - 44) break; // no room for the label at the right edge
    root.append(svg("line", { x1: tx, x2: tx, y1: plotH, y2: plotH + 4, class: "d-tick" }));
    const label = svg("text", { x: tx + 2, y: HIST_HEIGHT - 3, class: "d-tick-label" });
    label.textContent = axisLabel(t, ticks, span);
    root.append(label);
  }
  root.append(svg("line", { x1: 0, x2: width, y1: plotH, y2: plotH, class: "d-axis" }));
  const sel = svg("rect", { x: 0, y: 0, width: 0, height: plotH, class: "d-sel", visibility: "hidden" });
  root.append(sel);

  // Click-drag zooms to the dragged range; a click zooms to the bucket under the pointer.
  let start = null;
  // In the drawing's units: the box may be drawn narrower than measured (max-width: 100%).
  const at = (e) => {
    const rect = root.getBoundingClientRect();
    return Math.min(width, Math.max(0, ((e.clientX - rect.left) * width) / (rect.width || width)));
  };
  const msAt = (px) => Math.round(hist.from + (px / width) * span);
  root.addEventListener("mousedown", (e) => {
    e.preventDefault();
    start = at(e);
    sel.setAttribute("x", start);
    sel.setAttribute("width", 0);
    sel.setAttribute("visibility", "visible");
  });
  root.addEventListener("mousemove", (e) => {
    if (start === null) return;
    const now = at(e);
    sel.setAttribute("x", Math.min(start, now));
    sel.setAttribute("width", Math.abs(now - start));
  });
  const finish = (e) => {
    if (start === null) return;
    const end = at(e);
    const [a, b] = [Math.min(start, end), Math.max(start, end)];
    start = null;
    sel.setAttribute("visibility", "hidden");
    let from, to;
    if (b - a < 3) {
      const t = msAt(a);
      from = Math.floor(t / hist.step_ms) * hist.step_ms;
      to = from + hist.step_ms;
    } else {
      [from, to] = [msAt(a), msAt(b)];
    }
    if (to <= from) return;
    ctx.set({ from: String(from), to: String(to), open: "", context: "" });
  };
  root.addEventListener("mouseup", finish);
  root.addEventListener("mouseleave", (e) => { if (start !== null) finish(e); });
  return root;
}

export function stepText(ms) {
  const units = [[86400000, "d"], [3600000, "h"], [60000, "min"], [1000, "s"]];
  const [size, unit] = units.find(([u]) => ms % u === 0) || [1, "ms"];
  return `${ms / size} ${unit}`;
}

// What the range is, for the legend: the default window, all time, or nothing (the header's
// range select names a relative or zoomed range).
function rangeText(window, state) {
  if (window) return `${LATEST_TEXT} (to ${new Date(window.to).toISOString().slice(0, 16).replace("T", " ")} UTC) · `;
  if (!state.from && !state.to) return "all time · ";
  return "";
}

// The API parameters of a state: the shared ones, and latest=1h when the URL names no range.
export function searchParams(state, common) {
  return !state.from && !state.to && state.span !== "all" ? { ...common, latest: LATEST } : common;
}

function histogramPanel(hist, state, ctx) {
  const box = ctx.el("section", { id: "d-hist", class: "d-hist",
    dataset: { latest: hist.window ? hist.window.latest : "", range: hist.window ? "latest" : (state.from || state.to ? "given" : "all") } });
  const legend = ctx.el("div", { class: "d-legend muted" },
    ctx.el("span", { class: "d-range", text: rangeText(hist.window, state) }),
    hist.step_ms ? `${stepText(hist.step_ms)} buckets, UTC · drag to zoom` : "",
    ...hist.levels.map((lv) => ctx.el("span", { class: `d-key lv-${lv}`, text: `■ ${lv}` })));
  box.append(legend);
  return box;
}

// --- facets --------------------------------------------------------------------------------------

function extraFacets(state) {
  return (state.facets || "").split(",").map((f) => f.trim()).filter(Boolean);
}

function addFacetForm(state, ctx) {
  const input = ctx.el("input", { id: "d-add-facet", type: "text", spellcheck: "false", placeholder: "attrs.KEY or field" });
  return ctx.el("form", { class: "d-add-facet", onsubmit: (e) => {
    e.preventDefault();
    const name = input.value.trim();
    const extra = extraFacets(state);
    if (name && !extra.includes(name)) ctx.set({ facets: [...extra, name].join(",") });
  } }, input, ctx.el("button", { type: "submit", text: "+ facet" }));
}

function facetsPanel(answer, state, ctx) {
  const aside = ctx.el("aside", { id: "d-facets", class: "d-facets" });
  const extra = extraFacets(state);
  for (const f of answer.fields) {
    const list = ctx.el("ul", {});
    for (const v of f.values) {
      const value = String(v.value);
      const pct = answer.total ? Math.round((v.count / answer.total) * 100) : 0;
      list.append(ctx.el("li", { class: "d-fv", dataset: { field: f.field, value, count: String(v.count) } },
        ctx.el("a", { href: ctx.urlOf({ ...state, q: addTerm(state.q, term(f.field, "=", value)), open: "", context: "" }),
          class: "d-include", title: `only ${f.field}=${value}`,
          onclick: (e) => { e.preventDefault(); ctx.set({ q: addTerm(state.q, term(f.field, "=", value)), open: "", context: "" }); } },
          ctx.el("span", { class: f.field === "level" ? `d-fvalue lv-${value}` : "d-fvalue", text: value }),
          ctx.el("span", { class: "d-fcount num", text: v.count.toLocaleString("en-US") }),
          ctx.el("span", { class: "d-fbar", style: `width:${pct}%` })),
        ctx.el("button", { type: "button", class: "d-exclude", title: `exclude ${f.field}=${value}`, text: "−",
          onclick: () => ctx.set({ q: addTerm(state.q, term(f.field, "!=", value)), open: "", context: "" }) })));
    }
    const notes = [];
    if (f.other) notes.push(`${f.other.toLocaleString("en-US")} other`);
    if (f.missing) notes.push(`${f.missing.toLocaleString("en-US")} without`);
    const remove = extra.includes(f.field)
      ? ctx.el("button", { type: "button", class: "d-remove-facet", title: `remove the ${f.field} facet`, text: "×",
        onclick: () => ctx.set({ facets: extra.filter((x) => x !== f.field).join(",") }) })
      : null;
    aside.append(ctx.el("div", { class: "d-facet", dataset: { field: f.field, missing: String(f.missing), other: String(f.other) } },
      ctx.el("h4", {}, f.field, remove, addColumnButton(f.field, state, ctx)), list,
      f.error ? ctx.el("div", { class: "d-panel-error", text: f.error }) : null,
      notes.length ? ctx.el("div", { class: "muted", text: notes.join(", ") }) : null));
  }
  aside.append(addFacetForm(state, ctx));
  return aside;
}

// --- records -------------------------------------------------------------------------------------

const DEFAULT_COLUMNS = ["level", "service", "message"];
// The default columns keep the classes the page and its tests know them by.
const COLUMN_CLASS = { level: "d-level", service: "d-service", message: "d-msg" };
const ATTRS_KEY = /^[A-Za-z0-9_-]+$/; // as the filter language's attrs keys

// The list's columns after the time: the URL's `columns`, or the default ones.
export function columnsOf(state) {
  const chosen = (state.columns || "").split(",").map((c) => c.trim()).filter((c) => c && c !== "ts");
  return chosen.length ? [...new Set(chosen)] : DEFAULT_COLUMNS;
}

// The URL value of a column list: none when it is the default one, so links stay short.
function columnsParam(list) {
  const same = list.length === DEFAULT_COLUMNS.length && list.every((c, i) => c === DEFAULT_COLUMNS[i]);
  return same ? "" : list.join(",");
}

function setColumns(list, ctx) {
  ctx.set({ columns: columnsParam(list) });
}

function addColumnButton(field, state, ctx) {
  const columns = columnsOf(state);
  if (field === "ts" || columns.includes(field)) return null;
  return ctx.el("button", { type: "button", class: "d-add-column", dataset: { field }, title: `show ${field} as a column`,
    text: "+ column", onclick: (e) => { e.stopPropagation(); setColumns([...columns, field], ctx); } });
}

// A record's attrs as an object (the archive answers its JSON text, an engine may answer an object).
function attrsOf(r) {
  if (r.attrs && typeof r.attrs === "object") return r.attrs;
  if (!r.attrs) return null;
  try {
    const parsed = JSON.parse(r.attrs);
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

function shown(v) {
  if (v === undefined || v === null) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

// The text of one column for a record: a field, or attrs.KEY.KEY read from its attrs.
export function columnText(r, column, attrs) {
  if (column.startsWith("attrs.")) {
    let v = attrs;
    for (const key of column.slice("attrs.".length).split(".")) {
      if (v === null || typeof v !== "object" || Array.isArray(v)) return "";
      v = v[key];
    }
    return shown(v);
  }
  return shown(r[column]);
}

// attrs flattened to (attrs.KEY.KEY, value) pairs, nested objects walked (keys a filter can name).
function attrsFields(attrs, prefix = "attrs") {
  const out = [];
  for (const [k, v] of Object.entries(attrs || {})) {
    if (!ATTRS_KEY.test(k)) continue;
    if (v && typeof v === "object" && !Array.isArray(v)) out.push(...attrsFields(v, `${prefix}.${k}`));
    else out.push([`${prefix}.${k}`, v]);
  }
  return out;
}

function recordRow(r, columns, ctx, onToggle) {
  const attrs = columns.some((c) => c.startsWith("attrs.")) ? attrsOf(r) : null;
  const cell = (c) => {
    const text = columnText(r, c, attrs);
    const cls = c === "level" ? `d-level lv-${text}` : COLUMN_CLASS[c] || "d-cell";
    return ctx.el("td", { class: cls, dataset: { column: c }, text });
  };
  return ctx.el("tr", { class: "d-row", dataset: { id: r.event_id, ts: r.ts || "" }, onclick: () => onToggle(r) },
    ctx.el("td", { class: "d-ts mono", text: shortTs(r.ts) }), ...columns.map(cell));
}

// A column's head: its name, and buttons to move it left or right or take it away.
function columnHead(column, i, columns, ctx) {
  const move = (to) => {
    const next = [...columns];
    [next[i], next[to]] = [next[to], next[i]];
    setColumns(next, ctx);
  };
  return ctx.el("th", { dataset: { column } }, ctx.el("span", { class: "d-col-name", text: column }),
    ctx.el("span", { class: "d-col-tools" },
      i > 0 ? ctx.el("button", { type: "button", class: "d-col-left", title: `move ${column} left`, text: "◀", onclick: () => move(i - 1) }) : null,
      i < columns.length - 1 ? ctx.el("button", { type: "button", class: "d-col-right", title: `move ${column} right`, text: "▶", onclick: () => move(i + 1) }) : null,
      columns.length > 1 ? ctx.el("button", { type: "button", class: "d-col-remove", title: `remove the ${column} column`, text: "×",
        onclick: () => setColumns(columns.filter((c) => c !== column), ctx) }) : null));
}

function prettyAttrs(text) {
  if (!text) return "";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text);
  }
}

function detail(r, state, ctx) {
  const fields = ctx.el("table", { class: "d-fields" });
  for (const [k, v] of Object.entries(r)) {
    if (v === null || v === undefined || v === "" || k === "attrs" || k === "error") continue;
    fields.append(ctx.el("tr", { dataset: { field: k } }, ctx.el("th", { text: k }),
      ctx.el("td", { class: "mono d-value", text: String(v) }), ctx.el("td", { class: "d-fadd" }, addColumnButton(k, state, ctx))));
  }
  const attrs = attrsOf(r);
  const attrRows = attrsFields(attrs).map(([k, v]) => ctx.el("tr", { dataset: { field: k } }, ctx.el("th", { text: k }),
    ctx.el("td", { class: "mono d-value", text: shown(v) }), ctx.el("td", { class: "d-fadd" }, addColumnButton(k, state, ctx))));
  const links = ctx.el("div", { class: "d-links" },
    ctx.el("button", { type: "button", class: "d-context", text: "context",
      onclick: () => ctx.set({ context: r.event_id, open: "" }) }),
    r.request_id ? ctx.el("button", { type: "button", class: "d-same-request", text: "same request",
      onclick: () => ctx.set({ q: term("request_id", "=", r.request_id), from: "", to: "", span: "all", open: "", context: "" }) }) : null,
    r.user_id ? ctx.el("button", { type: "button", class: "d-same-user", text: "same user",
      onclick: () => ctx.set({ q: term("user_id", "=", r.user_id), open: "", context: "" }) }) : null);
  return ctx.el("div", { class: "d-detail-body" }, links, fields,
    r.error ? ctx.el("div", {}, ctx.el("h4", { text: "error" }), ctx.el("pre", { class: "d-error mono", text: r.error })) : null,
    attrRows.length ? ctx.el("table", { class: "d-attr-fields" }, attrRows) : null,
    r.attrs ? ctx.el("div", {}, ctx.el("h4", { text: "attrs" }), ctx.el("pre", { class: "d-attrs mono", text: prettyAttrs(r.attrs) })) : null);
}

function recordTable(rows, state, ctx, { self = null } = {}) {
  const columns = columnsOf(state);
  const body = ctx.el("tbody", {});
  const table = ctx.el("table", { class: "d-records", dataset: { columns: columns.join(",") } },
    ctx.el("thead", {}, ctx.el("tr", {}, ctx.el("th", { text: "time (UTC)" }),
      ...columns.map((c, i) => columnHead(c, i, columns, ctx)))), body);
  const toggle = (r, row) => {
    const next = row.nextElementSibling;
    if (next && next.classList.contains("d-detail")) {
      next.remove();
      row.classList.remove("d-open");
      history.replaceState(null, "", ctx.urlOf({ ...Object.fromEntries(new URLSearchParams(location.search)), open: "" }));
      liveResume();
      return;
    }
    for (const other of body.querySelectorAll("tr.d-detail")) other.remove();
    for (const other of body.querySelectorAll("tr.d-open")) other.classList.remove("d-open");
    row.classList.add("d-open");
    row.after(ctx.el("tr", { class: "d-detail", dataset: { id: r.event_id } }, ctx.el("td", { colspan: columns.length + 1 }, detail(r, state, ctx))));
    history.replaceState(null, "", ctx.urlOf({ ...Object.fromEntries(new URLSearchParams(location.search)), open: r.event_id }));
    showLive();
  };
  const add = (list) => {
    for (const r of list) {
      const row = recordRow(r, columns, ctx, () => toggle(r, row));
      if (self && r.event_id === self) row.classList.add("d-self");
      body.append(row);
    }
  };
  add(rows);
  return { table, body, add, toggle };
}

// --- the context of one record -------------------------------------------------------------------

async function renderContext(el, state, ctx) {
  const found = await ctx.api("context", { id: state.context, n: 20 });
  if (!ctx.isCurrent()) return;
  const r = found.record;
  const source = [...found.before, r, ...found.after];
  const near = recordTable(source, state, ctx, { self: r.event_id });
  const rest = recordTable(found.request, state, ctx);
  el.append(ctx.el("section", { id: "d-context", class: "d-context-panel", dataset: { id: r.event_id } },
    ctx.el("div", { class: "d-context-head" },
      ctx.el("button", { type: "button", class: "d-back", text: "← back to the search",
        onclick: () => ctx.set({ context: "", open: r.event_id }) }),
      ctx.el("h3", { text: `Context of ${r.event_id}` })),
    ctx.el("h4", { text: `In its source ${r.source || ""} (${found.before.length} before, ${found.after.length} after)` }),
    ctx.el("div", { id: "d-context-source" }, near.table),
    ctx.el("h4", { text: r.request_id ? `The rest of request ${r.request_id} (${found.request.length})` : "No request id" }),
    ctx.el("div", { id: "d-context-request" }, found.request.length ? rest.table : ctx.el("p", { class: "muted", text: "nothing else" }))));
}

// --- live mode -----------------------------------------------------------------------------------
//
// One timer for the page: each tick refreshes the view (the same URL drawn again, the previous
// answer kept on screen until the new one is in) unless the person is reading: the list scrolled
// down, a record open, more pages loaded, or the search box being edited. Back at the top with
// nothing open, the next tick refreshes again (at once, when ticks were skipped meanwhile).

const LIVE_EVERY_MS = 5000;
const LIVE_TOP_PX = 40; // scrolled less than this is "at the top"
let live = null; // { timer, ctx, missed } of the current Discover render with live=1
let liveTicks = 0; // ticks since the page loaded, on #d-live for whoever watches it

// Why the refresh waits, or "" when it does not.
function liveHold() {
  if (window.scrollY > LIVE_TOP_PX) return "scrolled down";
  if (document.querySelector("#view tr.d-detail")) return "a record is open";
  if (document.querySelector("#d-more[data-loaded]")) return "more records loaded";
  const q = document.getElementById("q");
  if (q && document.activeElement === q && q.value.trim() !== (new URLSearchParams(location.search).get("q") || "").trim()) {
    return "editing the search";
  }
  return "";
}

function showLive() {
  const button = document.getElementById("d-live");
  if (button) paintLive(button, Boolean(live));
}

function paintLive(button, on) {
  button.dataset.ticks = String(liveTicks);
  if (!on) {
    button.dataset.state = "off";
    button.textContent = "live: off";
    button.title = `refresh every ${LIVE_EVERY_MS / 1000} s`;
    return;
  }
  const hold = liveHold();
  button.dataset.state = hold ? "paused" : "live";
  button.textContent = hold ? `❚❚ paused (${hold})` : `● live, every ${LIVE_EVERY_MS / 1000} s`;
  button.title = hold ? "back at the top with no record open, it refreshes again" : "click to stop refreshing";
}

function stopLive() {
  if (live) clearInterval(live.timer);
  live = null;
}

// The address a live refresh redraws: the render of that address is the refresh, not something
// the person asked for (a click of theirs meanwhile changes the address; opening a record does
// too, in place, which is reading, not asking).
let liveRefresh = null;

function liveAddress() {
  const params = new URLSearchParams(location.search);
  params.delete("open");
  return params.toString();
}

function refreshLive(entry) {
  entry.missed = false;
  liveRefresh = liveAddress();
  entry.ctx.set({}, { replace: true });
}

function startLive(ctx) {
  stopLive();
  const entry = { ctx, missed: false, timer: 0 };
  entry.timer = setInterval(() => {
    if (!ctx.isCurrent()) {
      // Another search or view was asked for: its own render decides whether to stay live.
      clearInterval(entry.timer);
      if (live === entry) live = null;
      return;
    }
    liveTicks += 1;
    showLive();
    if (liveHold()) entry.missed = true;
    else refreshLive(entry);
  }, LIVE_EVERY_MS);
  live = entry;
  setTimeout(showLive, 0); // after the shell has put this answer's page on screen
}

// The person stopped reading (back at the top, the record closed): show it, and refresh at once
// when a tick went by meanwhile.
function liveResume() {
  if (!live) return;
  showLive();
  if (live.missed && !liveHold() && live.ctx.isCurrent()) refreshLive(live);
}

window.addEventListener("scroll", liveResume, { passive: true });

// A live range must move with the clock: a zoom (absolute times) becomes the last 15 minutes.
function liveRange(state) {
  const relative = state.from && !state.to && /^\d+[smhdw]$/.test(state.from);
  return (state.from || state.to) && !relative ? { from: "15m", to: "", span: "" } : {};
}

// Under the width breakpoint the facets are a panel opened above the records (CSS); whether it
// is open outlives a refresh.
let facetsOpen = false;

function toolbar(state, ctx, body) {
  const liveButton = ctx.el("button", { type: "button", id: "d-live", class: "d-live", dataset: { state: "off" },
    onclick: () => ctx.set(state.live ? { live: "" } : { live: "1", ...liveRange(state) }, { replace: false }) });
  const facets = ctx.el("button", { type: "button", id: "d-facets-toggle", class: "d-facets-toggle", "aria-expanded": String(facetsOpen),
    text: "facets", onclick: () => {
      facetsOpen = !facetsOpen;
      body.classList.toggle("d-facets-open", facetsOpen);
      facets.setAttribute("aria-expanded", String(facetsOpen));
    } });
  paintLive(liveButton, Boolean(state.live));
  return ctx.el("div", { class: "d-toolbar" }, liveButton, facets);
}

// --- the view ------------------------------------------------------------------------------------

async function renderSearch(el, state, ctx) {
  const common = searchParams(state, ctx.common(state));
  const settle = (p) => p.then((value) => ({ value }), (error) => ({ error }));
  // All three requests start at once; the list is drawn as soon as it arrives (it is what a
  // person reads first), the histogram and facets when theirs do. render resolves when all are.
  const histP = settle(ctx.api("histogram", common));
  const facetsP = settle(ctx.api("facets", { ...common, fields: state.facets }));
  const searched = await ctx.api("search", { ...common, limit: PAGE });
  if (!ctx.isCurrent()) return;

  const histSlot = ctx.el("section", { class: "d-hist d-loading muted", text: "counting…" });
  const facetSlot = ctx.el("aside", { class: "d-facets d-loading muted", text: "counting…" });
  // The rows come uncounted (so the list is read only as far as it shows); the exact total is
  // the histogram's (its buckets add up to every match), or counted on its own when it failed.
  const totalP = histP.then((hist) => (hist.error
    ? ctx.api("search", { ...common, limit: 1, count: 1 }).then((s) => s.total, () => null)
    : hist.value.total));
  const count = ctx.el("div", { id: "d-count", class: "d-count", dataset: { shown: String(searched.rows.length) } });
  const listBox = ctx.el("div", { class: "d-list" }, count);
  const body = ctx.el("div", { class: facetsOpen ? "d-body d-facets-open" : "d-body" }, facetSlot, listBox);
  el.append(ctx.el("div", { class: "d-discover" }, toolbar(state, ctx, body), histSlot, body));
  const histDone = histP.then((hist) => {
    if (!ctx.isCurrent()) return;
    const histBox = hist.error
      ? ctx.el("section", { id: "d-hist", class: "d-hist d-panel-error", text: hist.error.message })
      : histogramPanel(hist.value, state, ctx);
    histSlot.replaceWith(histBox);
    if (!hist.error && hist.value.buckets.length) histBox.prepend(drawHistogram(histBox, hist.value, ctx));
  });
  const facetsDone = facetsP.then((facets) => {
    if (!ctx.isCurrent()) return;
    facetSlot.replaceWith(facets.error
      ? ctx.el("aside", { id: "d-facets", class: "d-facets" }, ctx.el("div", { class: "d-panel-error", text: facets.error.message }),
        state.facets ? ctx.el("button", { type: "button", text: "remove the extra facets", onclick: () => ctx.set({ facets: "" }) }) : null)
      : facetsPanel(facets.value, state, ctx));
  });
  try {
    await drawList(listBox, count, searched, totalP, common, state, ctx);
  } finally {
    await Promise.all([histDone, facetsDone, totalP]);
  }
}

async function drawList(listBox, count, searched, totalP, common, state, ctx) {
  let total; // undefined until counted; null when it cannot be counted
  let shown = searched.rows.length;
  // Later pages stay in the range the first one was answered for (the newest record may move on).
  const w = searched.window;
  const paging = w ? { ...common, from: String(w.from), to: String(w.to), latest: "" } : common;
  const showCount = (now) => {
    shown = now;
    count.dataset.shown = String(shown);
    if (total === undefined) {
      count.textContent = shown ? `newest ${shown.toLocaleString("en-US")} shown, counting…` : "";
      return;
    }
    const all = total === null ? "more than can be counted" : total.toLocaleString("en-US");
    count.textContent = total === 0 ? "" : `${all} ${total === 1 ? "record" : "records"}${shown < (total ?? Infinity) ? `, newest ${shown.toLocaleString("en-US")} shown` : ""}`;
  };
  totalP.then((n) => {
    if (!ctx.isCurrent()) return;
    total = n;
    count.dataset.count = n === null ? "" : String(n);
    showCount(shown);
  });
  if (!searched.rows.length) {
    listBox.append(ctx.el("p", { id: "d-empty", class: "d-empty", text: "No records match this search and time range." }));
    showCount(0);
    return;
  }
  const list = recordTable(searched.rows, state, ctx);
  showCount(shown);
  listBox.append(list.table);
  let next = searched.next;
  const more = ctx.el("button", { type: "button", id: "d-more", text: `load ${PAGE} more`, hidden: !next });
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const page = await ctx.api("search", { ...paging, limit: PAGE, after: next });
      list.add(page.rows);
      shown += page.rows.length;
      showCount(shown);
      next = page.next;
      more.hidden = !next;
    } catch (err) {
      ctx.showError(err.message);
    } finally {
      more.disabled = false;
      more.dataset.loaded = String(shown);
    }
  });
  listBox.append(more);

  if (state.open) {
    const row = [...list.body.querySelectorAll("tr.d-row")].find((tr) => tr.dataset.id === state.open);
    if (row) {
      const r = searched.rows.find((x) => x.event_id === state.open);
      list.toggle(r, row);
    } else {
      // Not on the first page: show it pinned above the list.
      const r = await ctx.api("record", { id: state.open });
      if (!ctx.isCurrent()) return;
      const pinned = recordTable([r], state, ctx);
      listBox.insertBefore(ctx.el("div", { id: "d-pinned" }, pinned.table), count);
      pinned.toggle(r, pinned.body.querySelector("tr.d-row"));
    }
  }
}

export default {
  name: "discover",
  label: "Discover",
  async render(el, state, ctx) {
    const byLive = liveRefresh !== null && liveRefresh === liveAddress();
    liveRefresh = null;
    stopLive();
    if (state.context) return renderContext(el, state, ctx);
    try {
      return await renderSearch(el, state, ctx);
    } finally {
      // The person began reading the page on screen while this refresh loaded: keep that page
      // (the next tick, once they are back at the top, brings the news).
      const held = byLive && ctx.isCurrent() && liveHold() !== "";
      if (held) ctx.keepPrevious();
      // Started once this answer is drawn, so a slow answer is never cut short by the next tick.
      if (state.live && ctx.isCurrent()) {
        startLive(ctx);
        if (held) live.missed = true;
      }
    }
  },
};

export { LEVEL_ORDER };
