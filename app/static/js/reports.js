// The Reports page for leads and admins: filters kept in the URL, headline numbers against the
// previous period, charts (charts.js), the agents table and the platforms' badges, each report
// also as a CSV download with the same filters.

import { LANG, api, channelIcon, channelName, duration, h, qs, t, toast } from "./core.js";
import { barChart, empty, heatMap, lineChart } from "./charts.js";
import { initShell, on } from "./shell.js";

const form = document.getElementById("report-filters");
const FILTERS = ["from", "to", "tz", "inbox", "channel", "agent"];
const DAY_MS = 86400e3;
const pct = new Intl.NumberFormat(LANG, { style: "percent", maximumFractionDigits: 0 });
const num = new Intl.NumberFormat(LANG);
const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
let loading = 0; // the latest load; answers of older ones are dropped

// ------------------------------------------------------------------ filters

/** Today's date (YYYY-MM-DD) in a time zone. */
function today(tz) {
  try {
    return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
  } catch {
    return new Date().toISOString().slice(0, 10);
  }
}

const addDays = (iso, n) => new Date(Date.parse(iso + "T00:00:00Z") + n * DAY_MS).toISOString().slice(0, 10);

/** The filters: the URL's, else the last 30 days in the browser's time zone. */
function filters() {
  const url = new URLSearchParams(location.search);
  const tz = url.get("tz") || browserZone();
  const to = url.get("to") || today(tz);
  return { from: url.get("from") || addDays(to, -29), to, tz,
    inbox: url.get("inbox") || "", channel: url.get("channel") || "", agent: url.get("agent") || "" };
}

function fillForm(f) {
  for (const name of FILTERS) {
    const field = form.elements[name];
    if (field.tagName === "SELECT" && f[name] && ![...field.options].some((o) => o.value === f[name])) {
      field.append(h("option", { value: f[name] }, f[name])); // a value the lists do not have (yet)
    }
    field.value = f[name];
  }
}

function readForm() {
  return Object.fromEntries(FILTERS.map((name) => [name, form.elements[name].value]));
}

async function fillChoices() {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const tzSelect = form.elements.tz;
  const here = browserZone();
  tzSelect.replaceChildren(...[...new Set([here, "UTC", ...zones])].map((z) => h("option", { value: z }, z)));
  const [inboxes, users] = await Promise.all([api("/inboxes"), api("/users")]);
  form.elements.inbox.append(...inboxes.items.map((i) => h("option", { value: i.id }, i.name)));
  const channels = [...new Set(inboxes.items.map((i) => i.channel))];
  form.elements.channel.append(...channels.map((c) => h("option", { value: c }, channelName(c))));
  form.elements.agent.append(...users.items.map((u) => h("option", { value: u.id }, u.name)));
}

// ------------------------------------------------------------------ formatting

const dur = (s) => (s === null || s === undefined ? "–" : duration(s));
const dayLabel = (iso, long = false) => new Date(iso + "T00:00:00Z").toLocaleDateString(LANG,
  { timeZone: "UTC", day: "numeric", month: long ? "long" : "short", ...(long ? { year: "numeric" } : {}) });
const weekdays = () => Array.from({ length: 7 }, (_, n) => // Monday first, as the API counts
  new Date(Date.UTC(2024, 0, 1 + n)).toLocaleDateString(LANG, { timeZone: "UTC", weekday: "short" }));
const hourLabel = (hour) => new Date(Date.UTC(2024, 0, 1, hour)).toLocaleTimeString(LANG,
  { timeZone: "UTC", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });

// ------------------------------------------------------------------ headline numbers

/**
 * How a figure moved since the previous period, in words and with an arrow; `better` says
 * which way is good ("up", "down", or null when neither is).
 */
function change(now, before, better, { points = false } = {}) {
  if (now === null || now === undefined || before === null || before === undefined || (!points && before === 0 && now !== 0)) {
    return h("div.stat-change.none", t("Nothing to compare with in the previous period"));
  }
  const diff = points ? Math.round((now - before) * 100) : before ? (now - before) / before : 0;
  if (Math.abs(diff) < (points ? 1 : 0.005)) return h("div.stat-change.same", h("span.arrow", { "aria-hidden": "true" }, "="), t("Same as the previous period"));
  const up = diff > 0;
  const amount = points ? num.format(Math.abs(diff)) : pct.format(Math.abs(diff));
  let text;
  if (points) text = up ? t("{n} points more than the previous period", { n: amount }) : t("{n} points less than the previous period", { n: amount });
  else text = up ? t("{pct} more than the previous period", { pct: amount }) : t("{pct} less than the previous period", { pct: amount });
  const good = better === null ? null : (better === "up") === up;
  return h("div.stat-change" + (good === null ? "" : good ? ".good" : ".bad"),
    h("span.arrow", { "aria-hidden": "true" }, up ? "▲" : "▼"), text,
    good === null ? null : [" · ", good ? t("better") : t("worse")]);
}

function stat(metric, label, value, changeEl, sub) {
  return h("div.card.stat", { dataset: { metric } },
    h("div.stat-label", label), h("div.stat-value", value), changeEl, sub ? h("div.stat-sub", sub) : null);
}

function headline(r) {
  const p = r.previous;
  const rate = (x) => (x === null || x === undefined ? "–" : pct.format(x));
  return [
    stat("new", t("New conversations"), num.format(r.conversations.new), change(r.conversations.new, p.conversations.new, null),
      t("{n} reopened", { n: num.format(r.conversations.reopened) })),
    stat("closed", t("Closed conversations"), num.format(r.conversations.closed), change(r.conversations.closed, p.conversations.closed, "up")),
    stat("first-response", t("First response (median)"), dur(r.first_response_s.median),
      change(r.first_response_s.median, p.first_response_s.median, "down"),
      t("p90 {time} · {n} answered", { time: dur(r.first_response_s.p90), n: num.format(r.first_response_s.count) })),
    stat("resolution", t("Resolution (median)"), dur(r.resolution_s.median),
      change(r.resolution_s.median, p.resolution_s.median, "down"),
      t("p90 {time} · {n} resolved", { time: dur(r.resolution_s.p90), n: num.format(r.resolution_s.count) })),
    stat("met", t("Response target met"), rate(r.response_met_rate),
      change(r.response_met_rate, p.response_met_rate, "up", { points: true }),
      t("{met} met, {missed} missed", { met: num.format(r.response_met), missed: num.format(r.response_breaches) })),
    stat("missed", t("Missed reply windows"), num.format(r.reply_windows_missed),
      change(r.reply_windows_missed, p.reply_windows_missed, "down"),
      t("Customers still waiting when the platform closed the window")),
  ];
}

// ------------------------------------------------------------------ charts

function volume(r) {
  if (!r.by_day.some((d) => d.new || d.closed)) return empty(t("No conversations in this period."));
  return lineChart({
    title: t("Conversations per day"),
    desc: t("{new} new and {closed} closed conversations from {from} to {to}.", { new: r.conversations.new,
      closed: r.conversations.closed, from: dayLabel(r.period.from, true), to: dayLabel(r.period.to, true) }),
    days: r.by_day.map((d) => ({ label: dayLabel(d.date), values: [d.new, d.closed] })),
    series: [{ label: t("New"), cls: "s-new" }, { label: t("Closed"), cls: "s-closed" }],
  });
}

function heat(r) {
  const total = r.by_hour.flat().reduce((a, b) => a + b, 0);
  if (!total) return empty(t("No conversations in this period."));
  const days = weekdays();
  let best = [0, 0];
  r.by_hour.forEach((row, d) => row.forEach((v, hr) => { if (v > r.by_hour[best[0]][best[1]]) best = [d, hr]; }));
  return heatMap({
    title: t("When customers write"),
    desc: t("New conversations by weekday and hour ({tz}); the busiest hour is {day} {hour}.",
      { tz: r.period.tz, day: days[best[0]], hour: hourLabel(best[1]) }),
    rows: days, cells: r.by_hour, hourLabel,
  });
}

function bucketLabel(buckets, n) {
  const upTo = buckets[n].up_to_s;
  if (n === 0) return t("up to {time}", { time: duration(upTo) });
  const from = duration(buckets[n - 1].up_to_s);
  return upTo === null ? t("over {time}", { time: from }) : t("{from} to {to}", { from, to: duration(upTo) });
}

function distribution(r) {
  const buckets = r.first_response_distribution || [];
  if (!buckets.some((b) => b.count)) return empty(t("No first responses in this period."));
  return barChart({
    title: t("First response times"), cls: "s-dist", valueHead: t("Customers"),
    desc: t("How long {n} customers waited for a first reply; median {time}.", { n: r.first_response_s.count, time: dur(r.first_response_s.median) }),
    rows: buckets.map((b, n) => ({ label: bucketLabel(buckets, n), value: b.count, text: num.format(b.count) })),
  });
}

function channels(r) {
  const by = r.breakdown || {};
  const block = (rows, title, cls) => (rows && rows.length ? barChart({
    title, cls, valueHead: t("Median"),
    desc: rows.map((x) => `${channelName(x.channel)}: ${dur(x.median)}`).join(", "),
    rows: rows.map((x) => ({ label: channelName(x.channel), value: x.median, text: dur(x.median) })),
  }) : null);
  const first = block(by.first_response_s && by.first_response_s.channel, t("Median first response by channel"), "s-first");
  const resolution = block(by.resolution_s && by.resolution_s.channel, t("Median resolution by channel"), "s-resolution");
  if (!first && !resolution) return empty(t("No first responses in this period."));
  return [first && h("h3.chart-sub", t("First response")), first, resolution && h("h3.chart-sub", t("Resolution")), resolution];
}

// ------------------------------------------------------------------ agents and badges

function agentRows(rows) {
  if (!rows.length) return [h("tr", h("td.empty-row", { colspan: 6 }, t("No agents yet.")))];
  return rows.map((a) => h("tr", { dataset: { user: a.user.id } },
    h("th", { scope: "row" }, h("bdi", a.user.name)),
    h("td.num", num.format(a.assigned)), h("td.num", num.format(a.closed)), h("td.num", num.format(a.replies)),
    h("td.num", dur(a.first_response_s.median)), h("td.num", dur(a.resolution_s.median))));
}

/** Where an inbox stands with its platform, in words ("Very responsive: yes, 94 % within 15 min"). */
function verdict(b) {
  if (b.kind === "responsiveness") {
    const vars = { pct: b.within_rate === null ? "–" : pct.format(b.within_rate), time: duration(b.within_s) };
    if (!b.customers) return { ok: null, text: t("Very responsive: no customers in the last {days} days", { days: b.period_days }) };
    return b.very_responsive
      ? { ok: true, text: t("Very responsive: yes, {pct} within {time}", vars) }
      : { ok: false, text: t("Very responsive: not yet, {pct} within {time} (needs {need})", { ...vars, need: pct.format(b.min_rate) }) };
  }
  if (b.kind === "estimate") {
    if (b.estimated_response_s === null) return { ok: null, text: t("Estimated response time: no replies in the last {days} days", { days: b.period_days }) };
    return { ok: !b.over_cutoff, text: t("Estimated response time: {time}", { time: duration(b.estimated_response_s) }) };
  }
  return { ok: null, text: t(b.label) };
}

function details(b) {
  if (b.kind === "responsiveness") {
    if (!b.customers) return null;
    return t("{answered} of {customers} customers answered in the last {days} days, median {time}.", {
      answered: num.format(b.answered), customers: num.format(b.customers), days: b.period_days, time: dur(b.median_response_s) });
  }
  if (b.kind === "estimate") {
    const base = t("Counted within business hours over {days} days; recent replies weigh more.", { days: b.period_days });
    return b.over_cutoff
      ? [base, " ", h("strong", t("{n} customers waited more than {time}: the platform may turn messaging off.", { n: num.format(b.over_cutoff), time: duration(b.cutoff_s) }))]
      : base;
  }
  return null;
}

function badgeRows(rows) {
  if (!rows.length) return [h("li.empty-row", t("None of these inboxes has a platform badge."))];
  return rows.map((b) => {
    const v = verdict(b);
    return h("li.badge-row", { dataset: { inbox: b.inbox.id } },
      channelIcon(b.inbox.channel),
      h("div.grow", h("div.badge-inbox", h("bdi", b.inbox.name), h("span.muted", " · ", channelName(b.inbox.channel))),
        h("div.badge-detail.muted", details(b))),
      h("div.badge-verdict" + (v.ok === true ? ".good" : v.ok === false ? ".bad" : ""),
        h("span.arrow", { "aria-hidden": "true" }, v.ok === true ? "✓" : v.ok === false ? "✗" : "–"), v.text));
  });
}

// ------------------------------------------------------------------ loading

function csvLinks(f) {
  const query = (extra) => qs({ ...f, ...extra });
  for (const name of ["overview", "agents", "badges"]) {
    document.getElementById("csv-" + name).href = "/api/v1/reports/" + name + query({ format: "csv" });
  }
}

async function load() {
  const f = filters();
  fillForm(f);
  csvLinks(f);
  const mine = ++loading;
  const stats = document.getElementById("report-stats");
  stats.setAttribute("aria-busy", "true");
  try {
    const q = qs(f);
    const [overview, agents, badges] = await Promise.all([
      api("/reports/overview" + q), api("/reports/agents" + q), api("/reports/badges" + q)]);
    if (mine !== loading) return;
    document.getElementById("report-period").textContent = t("{from} to {to} ({tz}), compared with {pfrom} to {pto}", {
      from: dayLabel(overview.period.from, true), to: dayLabel(overview.period.to, true), tz: overview.period.tz,
      pfrom: dayLabel(overview.previous.from, true), pto: dayLabel(overview.previous.to, true) });
    stats.replaceChildren(...headline(overview));
    document.getElementById("chart-volume").replaceChildren(volume(overview));
    document.getElementById("chart-heat").replaceChildren(heat(overview));
    document.getElementById("chart-dist").replaceChildren(distribution(overview));
    document.getElementById("chart-channels").replaceChildren(...[channels(overview)].flat().filter(Boolean));
    document.querySelector("#report-agents tbody").replaceChildren(...agentRows(agents.agents));
    document.getElementById("report-badges").replaceChildren(...badgeRows(badges.inboxes));
    document.body.dataset.report = location.search;
  } catch (e) {
    if (mine === loading) toast(e.message, "error");
  } finally {
    if (mine === loading) {
      stats.setAttribute("aria-busy", "false");
      document.body.dataset.ready = "1";
    }
  }
}

form.addEventListener("change", () => {
  const f = readForm();
  if (f.from && f.to && f.from > f.to) {
    toast(t("The start date is after the end date."), "error");
    return;
  }
  history.pushState(null, "", location.pathname + qs(f));
  load();
});
form.addEventListener("submit", (e) => e.preventDefault());
window.addEventListener("popstate", load);

// Live: while the period includes today, what happens in the inboxes shows within
// LIVE_MS (a busy team changes the figures many times a second: one reload at most)
const LIVE_MS = 10000;
let liveTimer = null;
function changed() {
  const f = filters();
  if (f.to < today(f.tz) || liveTimer || document.hidden) return;
  liveTimer = setTimeout(() => { liveTimer = null; load(); }, LIVE_MS);
}
for (const name of ["conversation.created", "conversation.updated", "message.created", "reconnected"]) on(name, changed);
document.addEventListener("visibilitychange", () => { if (!document.hidden) changed(); });

initShell();
fillChoices().catch((e) => toast(e.message, "error")).finally(load);
