// The page's shell: state in the query string, the search box, the tabs, and one view at a time.
//
// Every view module exports {name, label, render(el, state, ctx)}; render draws the view for a
// state (a plain object of the URL's parameters) and may call ctx.set(patch) to change it. The
// URL is the whole state, so a copied address opens the same view, search and time range.

const VIEWS = [
  // One line per view module: the tab's name in the URL, its label, the module.
  { name: "discover", label: "Discover", module: "/static/discover.js" },
  { name: "errors", label: "Errors", module: "/static/errors.js" },
  { name: "patterns", label: "Patterns", module: "/static/patterns.js" },
  { name: "journey", label: "Journey", module: "/static/journey.js" },
  { name: "slow", label: "Slow endpoints", module: "/static/slow.js" },
  { name: "traffic", label: "Traffic", module: "/static/traffic.js" },
];

const DEFAULT_VIEW = () => (VIEWS[0] ? VIEWS[0].name : "");
// Views that, with no from/to in the URL, show the latest hour of the records (span=all: all time).
const LATEST_VIEWS = new Set(["discover"]);

export function readState() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

export function urlOf(state) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  }
  const query = params.toString();
  return query ? `/?${query}` : "/";
}

// GET /api/<path> with the given parameters; rejects with the server's one-sentence error.
export async function api(path, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") query.set(k, String(v));
  }
  const response = await fetch(`/api/${path}?${query}`);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// The parameters every view's API calls share: the search box and the time range.
export function common(state) {
  return { q: state.q, from: state.from, to: state.to };
}

// The range a link into Discover carries: the view's own from/to, or all time when the view has
// none (Discover alone opens on the latest hour of the records, which would hide older matches).
export function rangeOf(state) {
  return state.from || state.to ? { from: state.from || "", to: state.to || "", span: "" } : { from: "", to: "", span: "all" };
}

// A range (epoch ms, as a zoom sets) that covers a request whose records run from `first` to
// `last` (ISO times), with a margin either side for its records not in view: a request lasts
// seconds, so an hour on each side holds all of it, whatever the range it was found in.
const REQUEST_MARGIN_MS = 3600000;
export function rangeAround(first, last = first) {
  const start = Date.parse(first);
  const end = Date.parse(last || first);
  if (Number.isNaN(start) || Number.isNaN(end)) return { from: "", to: "", span: "all" };
  return { from: String(start - REQUEST_MARGIN_MS), to: String(end + REQUEST_MARGIN_MS + 1), span: "" };
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    // Through the DOM, not a style="" attribute: the Content-Security-Policy allows no inline style.
    else if (k === "style") node.style.cssText = String(v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message || "";
  box.hidden = !message;
}

const modules = new Map();
let renderCount = 0;

async function viewModule(name) {
  const entry = VIEWS.find((v) => v.name === name) || VIEWS[0];
  if (!entry) return null;
  if (!modules.has(entry.name)) modules.set(entry.name, (await import(entry.module)).default);
  return modules.get(entry.name);
}

export function set(patch, { replace = false } = {}) {
  const state = { ...readState(), ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined || v === null || v === "") delete state[k];
  const url = urlOf(state);
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
}

function syncHeader(state) {
  document.getElementById("q").value = state.q || "";
  const range = document.getElementById("range");
  const relative = state.from && !state.to && /^\d+[smhdw]$/.test(state.from) ? state.from : "";
  const custom = range.querySelector('option[value="custom"]');
  custom.hidden = !(state.from || state.to) || Boolean(relative);
  const current = state.view || DEFAULT_VIEW();
  const latest = range.querySelector('option[value="latest"]');
  latest.hidden = !LATEST_VIEWS.has(current);
  const unranged = !latest.hidden && state.span !== "all" ? "latest" : "";
  range.value = relative || (state.from || state.to ? "custom" : unranged);
  const tabs = document.getElementById("tabs");
  for (const a of tabs.querySelectorAll("a")) a.classList.toggle("active", a.dataset.view === current);
}

// The previous answer stays on screen while the next one loads (a new search, a zoom, a live
// refresh): the view draws into a page of its own, swapped in once it has drawn, so the page never
// blanks between two answers; #busy says one is on its way. A different view (or the first one)
// is drawn in place, as its answers arrive. An answer for a request a newer one replaced is dropped.
function busy(on) {
  const main = document.getElementById("view");
  if (on) main.dataset.loading = "1";
  else delete main.dataset.loading;
  document.getElementById("busy").hidden = !on;
}

export async function render() {
  const state = readState();
  syncHeader(state);
  const mine = ++renderCount;
  const main = document.getElementById("view");
  showError("");
  busy(true);
  let module;
  try {
    module = await viewModule(state.view || DEFAULT_VIEW());
  } catch (err) {
    if (mine === renderCount) {
      showError(`cannot load this view: ${err.message}`);
      busy(false);
    }
    return;
  }
  if (mine !== renderCount) return; // a newer render started while this one loaded
  const name = module ? module.name : "";
  const page = el("div", { class: "view-page" });
  const inPlace = main.dataset.view !== name || !main.firstChild;
  if (inPlace) {
    main.replaceChildren(page);
    main.dataset.view = name;
  }
  let failure = null;
  let keep = false; // the view asked to leave the previous page on screen (see keepPrevious)
  if (module) {
    // keepPrevious(): a refresh nobody asked for (live mode) whose answer came while the person
    // started reading the page on screen (opened a record, scrolled) is dropped, not swapped in.
    const ctx = { api, set, el, common, showError, urlOf, rangeOf, rangeAround, isCurrent: () => mine === renderCount,
      keepPrevious: () => { keep = !inPlace; } };
    try {
      await module.render(page, state, ctx);
    } catch (err) {
      failure = err;
    }
  }
  if (mine !== renderCount) return; // a newer request's answer, not this one's, is shown
  if (!inPlace && !keep) main.replaceChildren(page);
  if (failure) showError(failure.message);
  main.dataset.rendered = String(mine);
  busy(false);
}

async function loadSummary() {
  const node = document.getElementById("summary");
  try {
    const s = await api("summary");
    node.dataset.total = String(s.total);
    node.textContent = s.total
      ? `${s.source}: ${s.total.toLocaleString("en-US")} ${s.total === 1 ? "record" : "records"}, ${s.first.slice(0, 16).replace("T", " ")} to ${s.last.slice(0, 16).replace("T", " ")} UTC`
      : `${s.source}: no records yet`;
  } catch (err) {
    node.textContent = "";
    showError(err.message);
  }
}

function setup() {
  const tabs = document.getElementById("tabs");
  for (const v of VIEWS) {
    tabs.append(el("a", { href: urlOf({ ...readState(), view: v.name }), dataset: { view: v.name }, text: v.label,
      onclick: (e) => { e.preventDefault(); set({ view: v.name }); } }));
  }
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    set({ q: document.getElementById("q").value.trim() });
  });
  document.getElementById("range").addEventListener("change", (e) => {
    const value = e.target.value;
    if (value === "custom") return;
    if (value === "latest") set({ from: "", to: "", span: "" });
    else if (value === "") set({ from: "", to: "", span: "all" });
    else set({ from: value, to: "", span: "" });
  });
  window.addEventListener("popstate", () => render());
  loadSummary();
  render();
}

setup();
