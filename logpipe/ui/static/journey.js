// Journey: one user's (or session's, or request's) path as a timeline (as `logpipe query
// journey`): sessions -> requests -> records along one UTC time axis; a request is a bar from its
// first to its last record, its records are marks coloured by level; a click on a request lists
// its records, a click on a record (mark or line) shows it, with a link to its request in Discover.
// With no subject chosen, the box and the range's most active users (records with their user_id).
//
// URL state: view=journey, q, from, to (shared; q narrows the user list only), one of user /
// session / request (the subject), open = the request whose records are listed, rec = the
// selected record's position in the journey, zoom = the session the time axis is zoomed to.
// The DOM carries what tests read: #journey-users li[data-user][data-records],
// #journey-summary[data-count][data-sessions][data-requests], .j-session[data-session][data-count],
// .j-request[data-request][data-count][data-status], .j-mark[data-index][data-level],
// .j-record[data-index], #journey-record[data-index], the time axis .j-axis[data-start][data-end]
// [data-step] (epoch ms) with its .tick[data-ms] labels and #journey-axis-start[data-ms].

import { counted, filterValue, nothing, recordDetail, utc } from "/static/errors.js";

const SUBJECTS = ["user", "session", "request"];

// A Discover range that covers the record's request: its first to last record in this journey
// (ctx.rangeAround adds a margin for its records outside the journey's range).
function requestRange(answer, record, ctx) {
  for (const s of answer.sessions) {
    const q = s.requests.find((x) => x.request_id === record.request_id);
    if (q) return ctx.rangeAround(q.first, q.last);
  }
  return ctx.rangeAround(record.ts);
}

function subjectOf(state) {
  const kind = SUBJECTS.find((k) => state[k]);
  return kind ? { kind, value: state[kind] } : null;
}

function picker(ctx, subject) {
  const kind = ctx.el("select", { id: "journey-kind", title: "follow a" },
    SUBJECTS.map((k) => ctx.el("option", { value: k, selected: subject && subject.kind === k ? true : undefined }, k)));
  const box = ctx.el("input", { id: "journey-subject", type: "search", spellcheck: "false", placeholder: "user_id, session_id or request_id",
    value: subject ? subject.value : "" });
  return ctx.el("form", { id: "journey-pick", class: "inline", onsubmit: (e) => {
    e.preventDefault();
    const value = box.value.trim();
    ctx.set({ user: "", session: "", request: "", open: "", rec: "", zoom: "", [kind.value]: value });
  } }, kind, box, ctx.el("button", { type: "submit" }, "Follow"));
}

async function usersList(el, state, ctx) {
  const answer = await ctx.api("journey/users", { ...ctx.common(state), limit: 20 });
  if (!ctx.isCurrent()) return;
  el.append(ctx.el("h3", {}, "Most active users in this range and search"));
  if (!answer.users.length) {
    el.append(nothing(ctx, "Nothing here: no records with a user_id in this time range and search."));
    return;
  }
  el.append(ctx.el("ul", { id: "journey-users", class: "users" }, answer.users.map((u) => ctx.el("li", {
    dataset: { user: u.user_id, records: u.records }, class: "clickable",
    onclick: () => ctx.set({ user: u.user_id, session: "", request: "", open: "", rec: "", zoom: "" }),
  }, ctx.el("span", { class: "mono" }, u.user_id), ctx.el("span", { class: "num" }, u.records.toLocaleString("en-US")),
  ctx.el("span", { class: "muted" }, `${utc(u.first).slice(5, 19)} – ${utc(u.last).slice(5, 19)}`)))));
}

function ms(iso) {
  return Date.parse(iso);
}

// Round tick steps (ms): the smallest that leaves at most MOST_TICKS ticks on the axis.
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 2 * DAY, 7 * DAY, 14 * DAY];
const MOST_TICKS = 8;

// The ticks of the UTC axis [t0, t1] (epoch ms): multiples of a round step (whole UTC days for a
// day or more), labelled as precisely as the step needs, with the date (MM-DD) when the axis
// spans more than one UTC day; the full date is the axis start's label, once.
export function axisTicks(t0, t1) {
  const span = Math.max(t1 - t0, 1);
  const step = STEPS.find((s) => span / s <= MOST_TICKS) ?? Math.ceil(span / MOST_TICKS / DAY) * DAY;
  const days = new Date(t0).toISOString().slice(0, 10) !== new Date(t1).toISOString().slice(0, 10);
  const ticks = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const iso = new Date(t).toISOString();
    const time = step < SECOND ? iso.slice(11, 23) : step < MINUTE ? iso.slice(11, 19) : iso.slice(11, 16);
    ticks.push({ t, label: days ? `${iso.slice(5, 10)} ${time}` : time });
  }
  return { step, days, ticks };
}

export default {
  name: "journey",
  label: "Journey",
  async render(el, state, ctx) {
    const subject = subjectOf(state);
    el.append(picker(ctx, subject));
    if (!subject) {
      await usersList(el, state, ctx);
      return;
    }
    const answer = await ctx.api("journey", { from: state.from, to: state.to, [subject.kind]: subject.value });
    if (!ctx.isCurrent()) return;
    const requests = answer.sessions.reduce((n, s) => n + s.requests.length, 0);
    el.append(ctx.el("div", { id: "journey-summary", class: "view-summary",
      dataset: { count: answer.count, sessions: answer.sessions.length, requests } },
    answer.count ? `${subject.kind} ${subject.value}: ${counted(answer.count, "record")} in ${counted(answer.sessions.length, "session")} and ${counted(requests, "request")}, ${utc(answer.first)} to ${utc(answer.last)} UTC` : "",
    ctx.el("button", { type: "button", class: "link", onclick: () => ctx.set({ user: "", session: "", request: "", open: "", rec: "", zoom: "" }) }, "other users")));
    if (!answer.count) {
      el.append(nothing(ctx, `Nothing here: no records for ${subject.kind} ${subject.value} in this time range.`));
      return;
    }
    // zoom: one session on the whole axis (requests milliseconds apart over hours are one dot).
    const zoomed = answer.sessions.find((x) => state.zoom !== undefined && (x.session_id ?? "") === state.zoom);
    const drawn = zoomed ? [zoomed] : answer.sessions;
    const t0 = ms(zoomed ? zoomed.first : answer.first);
    const span = Math.max(ms(zoomed ? zoomed.last : answer.last) - t0, 1);
    const at = (iso) => `${(((ms(iso) - t0) / span) * 100).toFixed(3)}%`;
    const byIndex = new Map();
    const offset = (r, q) => `+${Math.round((ms(r.ts) - ms(q.first)) * 10) / 10} ms`;
    const scale = axisTicks(t0, t0 + span);
    // A record's time as short as the axis allows: with the date when the journey spans days.
    const clock = (iso) => utc(iso).slice(scale.days ? 5 : 11, 23);
    const axis = ctx.el("div", { class: "j-axis", dataset: { start: t0, end: t0 + span, step: scale.step } });
    for (const { t, label } of scale.ticks) {
      const left = ((t - t0) / span) * 100;
      const edge = left < 6 ? " edge-left" : left > 94 ? " edge-right" : "";
      axis.append(ctx.el("span", { class: `tick mono${edge}`, style: `left:${left.toFixed(3)}%`, dataset: { ms: t } }, label));
    }
    const start = utc(new Date(t0).toISOString());
    const timeline = ctx.el("div", { id: "journey-timeline" },
      ctx.el("div", { class: "j-row j-head" }, ctx.el("div", { class: "j-label muted" }, "UTC, from ",
        ctx.el("span", { id: "journey-axis-start", class: "mono", dataset: { ms: t0 } }, start), " ",
        zoomed ? ctx.el("button", { type: "button", class: "link", id: "journey-unzoom", onclick: () => ctx.set({ zoom: "" }) }, "all sessions") : ""), axis));
    const rec = state.rec === undefined ? null : Number(state.rec);
    for (const s of drawn) {
      timeline.append(ctx.el("div", { class: `j-session${zoomed ? " zoomed" : ""}`, dataset: { session: s.session_id ?? "", count: s.count } },
        ctx.el("div", { class: "j-row clickable", title: zoomed ? "back to all sessions" : "zoom the time axis to this session",
          onclick: () => ctx.set({ zoom: zoomed ? "" : (s.session_id ?? "") }) },
          ctx.el("div", { class: "j-label" }, ctx.el("b", { class: "mono" }, s.session_id ?? "(no session)"),
            ctx.el("span", { class: "muted" }, ` ${s.user_id ?? ""} · ${counted(s.requests.length, "request")} · ${counted(s.count, "record")}`)),
          ctx.el("div", { class: "j-track" }, ctx.el("span", { class: "j-span", style: `left:${at(s.first)};width:calc(${at(s.last)} - ${at(s.first)} + 2px)` })))));
      for (const q of s.requests) {
        for (const r of q.records) byIndex.set(r.index, r);
        const opened = state.open !== undefined && state.open === (q.request_id ?? "");
        const marks = q.records.map((r) => ctx.el("span", {
          class: `j-mark lv-${r.level}${r.index === rec ? " selected" : ""}`, dataset: { index: r.index, level: r.level ?? "" },
          style: `left:${at(r.ts)}`, title: `${utc(r.ts)} ${r.level} ${r.message ?? ""}`,
          onclick: (e) => { e.stopPropagation(); ctx.set({ open: q.request_id ?? "", rec: String(r.index) }); },
        }));
        const label = [q.method, q.endpoint].filter(Boolean).join(" ") || (q.request_id ?? "(no request)");
        const row = ctx.el("div", {
          class: `j-request clickable${opened ? " selected" : ""}`,
          dataset: { request: q.request_id ?? "", count: q.count, status: q.status ?? "" },
          onclick: () => ctx.set({ open: opened ? "" : (q.request_id ?? ""), rec: "" }),
        }, ctx.el("div", { class: "j-row" },
          ctx.el("div", { class: "j-label", title: q.request_id ?? "" },
            ctx.el("span", { class: "mono" }, clock(q.first)), " ",
            ctx.el("span", { class: `lv-${q.worst_level}` }, label), " ",
            q.status !== null ? ctx.el("span", { class: q.status >= 500 ? "lv-ERROR" : q.status >= 400 ? "lv-WARNING" : "muted" }, String(q.status)) : "",
            q.duration_ms !== null ? ctx.el("span", { class: "muted" }, ` ${Math.round(q.duration_ms * 10) / 10} ms`) : ""),
          ctx.el("div", { class: "j-track" },
            ctx.el("span", { class: "j-bar", style: `left:${at(q.first)};width:calc(${at(q.last)} - ${at(q.first)} + 3px)` }), marks)));
        timeline.append(row);
        if (opened) {
          timeline.append(ctx.el("ol", { class: "j-records" }, q.records.map((r) => ctx.el("li", {
            class: `j-record clickable${r.index === rec ? " selected" : ""}`, dataset: { index: r.index },
            onclick: () => ctx.set({ open: q.request_id ?? "", rec: r.index === rec ? "" : String(r.index) }),
          }, ctx.el("span", { class: "mono" }, clock(r.ts)), " ", ctx.el("span", { class: "muted mono" }, offset(r, q)), " ",
          ctx.el("span", { class: `lv-${r.level}` }, r.level), " ",
          ctx.el("span", { class: "muted" }, r.service ?? ""), " ", ctx.el("span", { class: "mono" }, r.message ?? "")))));
        }
      }
    }
    el.append(timeline);
    const chosen = rec === null ? undefined : byIndex.get(rec);
    if (chosen) {
      const detail = ctx.el("section", { id: "journey-record", class: "drill", dataset: { index: chosen.index } },
        ctx.el("h3", {}, `record ${chosen.index + 1} of ${answer.count}`),
        ctx.el("button", { type: "button", class: "close", onclick: () => ctx.set({ rec: "" }) }, "close"),
        recordDetail(ctx, chosen),
        chosen.request_id ? ctx.el("button", { type: "button", id: "journey-discover",
          onclick: () => ctx.set({ view: "discover", q: `request_id=${filterValue(chosen.request_id)}`, user: "", session: "", request: "", open: "", rec: "", zoom: "",
            ...requestRange(answer, chosen, ctx) }) },
        "this request in Discover") : "");
      // Right under the record's request when its records are listed, else under the timeline.
      const list = timeline.querySelector("ol.j-records");
      if (list && list.querySelector(`[data-index="${chosen.index}"]`)) list.after(detail);
      else el.append(detail);
      // Once on screen: the shell shows this page when the view has drawn it.
      setTimeout(() => detail.scrollIntoView({ block: "nearest" }), 0);
    }
  },
};
