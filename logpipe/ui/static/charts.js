// Small hand-written SVG helpers shared by the Slow endpoints and Traffic views.
//
// Nothing here fetches or keeps state: each function returns an element to append. Hover text
// is an SVG <title> (the browser's own tooltip), so every number shown on hover is also in the
// DOM for tests and screen readers.

const NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "dataset") for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = String(dv);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function title(text) {
  return svg("title", { text });
}

// "0.84 ms", "312 ms", "1.41 s": latencies as people read them.
export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms === 0) return "0 ms";
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(2)} ms`;
}

export function fmtCount(n) {
  return Number(n).toLocaleString("en-US");
}

// A count and its noun in the number that agrees with it: "1 record", "2 records".
export function counted(n, noun, plural = `${noun}s`) {
  return `${fmtCount(n)} ${Number(n) === 1 ? noun : plural}`;
}

// "top 10 of 25 endpoints", or "all 6 endpoints" when the top N holds them all.
export function topOf(top, total, noun, plural = `${noun}s`) {
  if (top >= total) return total === 1 ? `the only ${noun}` : `all ${counted(total, noun, plural)}`;
  return `top ${fmtCount(top)} of ${counted(total, noun, plural)}`;
}

export function fmtPct(rate) {
  if (rate === null || rate === undefined) return "–";
  return `${(rate * 100).toFixed(rate && rate < 0.01 ? 2 : 1)}%`;
}

// A bucket's start in UTC: the date only when buckets are days, the time otherwise.
export function fmtTime(ms, widthMs = 60_000) {
  const iso = new Date(ms).toISOString();
  if (widthMs >= 86_400_000) return iso.slice(0, 10);
  if (widthMs >= 60_000) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  return `${iso.slice(5, 10)} ${iso.slice(11, 19)}`;
}

// Round tick values from 0 to at least `max` (about `count` of them).
export function ticks(max, count = 5) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = 0; v < max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

// A line chart over time buckets. `buckets` are objects with `start_ms`; each series is
// {name, cls, value: (bucket) => number|null}. Every bucket gets an invisible hover column
// (class `bucketClass`, data-* from `data(bucket)`, a <title> from `label(bucket)`) and, when
// `onclick` is given, is clickable.
export function lineChart({ buckets, widthMs, series, yFormat, label, data, bucketClass, onclick, width = 1000, height = 220 }) {
  const pad = { left: 64, right: 12, top: 10, bottom: 26 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  let max = 0;
  for (const b of buckets) for (const s of series) { const v = s.value(b); if (v !== null && v > max) max = v; }
  const yTicks = ticks(max);
  const top = yTicks[yTicks.length - 1] || 1;
  const n = Math.max(buckets.length, 1);
  const x = (i) => pad.left + ((i + 0.5) * w) / n;
  const y = (v) => pad.top + h - (v / top) * h;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart line-chart", role: "img" });
  for (const t of yTicks) {
    root.append(svg("line", { x1: pad.left, x2: pad.left + w, y1: y(t), y2: y(t), class: "grid" }),
      svg("text", { x: pad.left - 6, y: y(t) + 4, class: "axis", "text-anchor": "end", text: yFormat(t) }));
  }
  const every = Math.max(1, Math.ceil(n / 8));
  buckets.forEach((b, i) => {
    // The last labels anchor at their end so that they stay inside the chart.
    const anchor = x(i) > width - pad.right - 40 ? "end" : "middle";
    if (i % every === 0) root.append(svg("text", { x: x(i), y: height - 8, class: "axis", "text-anchor": anchor, text: fmtTime(b.start_ms, widthMs) }));
  });
  for (const s of series) {
    // A null (empty bucket) breaks the line rather than drawing it through zero.
    let d = "";
    let pen = false;
    buckets.forEach((b, i) => {
      const v = s.value(b);
      if (v === null || v === undefined) { pen = false; return; }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    root.append(svg("path", { d, class: `series ${s.cls}` }));
    buckets.forEach((b, i) => {
      const v = s.value(b);
      if (v !== null && v !== undefined) root.append(svg("circle", { cx: x(i), cy: y(v), r: 2.5, class: `dot ${s.cls}` }));
    });
  }
  buckets.forEach((b, i) => {
    root.append(svg("rect", {
      x: pad.left + (i * w) / n, y: pad.top, width: w / n, height: h, class: `hover ${bucketClass}`,
      dataset: data(b), onclick: onclick ? () => onclick(b) : undefined,
    }, title(label(b))));
  });
  return root;
}

// A legend: one swatch per series.
export function legend(el, items) {
  return el("div", { class: "chart-legend" },
    items.map((it) => el("span", { class: "legend-item" }, el("span", { class: `swatch ${it.cls}` }), it.name)));
}

// A bucket width: "30 s", "10 min", "3 h", "1 d".
export function fmtWidth(ms) {
  const s = ms / 1000;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${s / 60} min`;
  if (s < 86400) return `${s / 3600} h`;
  return `${s / 86400} d`;
}
