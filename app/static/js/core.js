// Shared helpers: translations, formatting, the JSON API client, DOM building, icons.

const boot = JSON.parse(document.getElementById("boot")?.textContent || "{}");
export const ME = boot.me || null;
export const LANG = document.documentElement.lang || "en";
export const RTL = document.documentElement.dir === "rtl";
const STRINGS = boot.strings || {};
const CHANNELS = boot.channels || {}; // channel name -> what it can do (the server's adapters)
const NO_CAPS = { window: null };

/**
 * Translate a UI string; `{name}` placeholders are filled from `vars`. When a value is a node
 * (`{ name: h("bdi", name) }`, a name kept apart from the sentence's direction), the result
 * is a list of nodes and strings for h().
 */
export function t(text, vars) {
  const out = STRINGS[text] || text;
  if (!vars) return out;
  const fill = (m, k) => (k in vars ? vars[k] : m);
  if (!Object.values(vars).some((v) => v instanceof Node)) return out.replace(/\{(\w+)\}/g, (m, k) => String(fill(m, k)));
  return out.split(/(\{\w+\})/).map((part, i) => (i % 2 ? fill(part, part.slice(1, -1)) : part)).filter((p) => p !== "");
}

/**
 * The key a shortcut means: the typed character on Latin layouts (AZERTY's "a" is "a"), and
 * on others (Arabic, Persian, Russian...) the key's place on a US keyboard (`e.code`), so
 * "j" is the key that types "ت". Named keys (Enter, Escape, arrows) stay as they are.
 */
export function shortcutKey(e) {
  if (e.key.length === 1 && e.key <= "~") return e.key;
  const m = /^(?:Key([A-Z])|Digit(\d))$/.exec(e.code);
  if (m) return m[1] ? (e.shiftKey ? m[1] : m[1].toLowerCase()) : m[2];
  if (e.code === "Slash") return e.shiftKey ? "?" : "/";
  return e.key;
}

/** What a channel can do: `caps(conv)`, `caps(inbox)` or `caps("name")`. Unknown: nothing. */
export function caps(of) {
  const name = typeof of === "string" ? of : of && (of.inbox ? of.inbox.channel : of.channel);
  return CHANNELS[name] || NO_CAPS;
}

/** Every channel's capabilities. */
export function allCaps() {
  return Object.values(CHANNELS);
}

/** A channel's name in the agent's language. */
export function channelName(channel) {
  const c = CHANNELS[channel];
  return c ? t(c.short_label || c.label) : channel;
}

// ------------------------------------------------------------------ time

let skewMs = 0; // server time minus browser time, from the Date header

/** Now, on the server's clock (timers are counted against it). */
export function serverNow() {
  return Date.now() + skewMs;
}

const rtf = new Intl.RelativeTimeFormat(LANG, { numeric: "auto", style: "narrow" });
// narrow units ("9h") read well in most languages; Persian's narrow form keeps Latin letters
const UNIT_DISPLAY = LANG.startsWith("fa") ? "short" : "narrow";
const nf = (unit) => new Intl.NumberFormat(LANG, { style: "unit", unit, unitDisplay: UNIT_DISPLAY });
const unitFmt = { day: nf("day"), hour: nf("hour"), minute: nf("minute"), second: nf("second") };

/** "3 min ago", "yesterday", localised. */
export function relTime(iso) {
  if (!iso) return "";
  const diff = (Date.parse(iso) - serverNow()) / 1000;
  const abs = Math.abs(diff);
  if (abs < 45) return t("now");
  if (abs < 3600) return rtf.format(Math.round(diff / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(diff / 3600), "hour");
  if (abs < 86400 * 7) return rtf.format(Math.round(diff / 86400), "day");
  return shortDate(iso);
}

/** Compact list time: 14:05 today, "Mon", or "12 Mar". */
export function listTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const now = new Date(serverNow());
  if (d.toDateString() === now.toDateString()) return timeOfDay(iso);
  if (now - d < 6 * 86400e3) return d.toLocaleDateString(LANG, { weekday: "short" });
  return shortDate(iso);
}

export function shortDate(iso) {
  const d = new Date(iso);
  const sameYear = d.getFullYear() === new Date(serverNow()).getFullYear();
  return d.toLocaleDateString(LANG, sameYear ? { day: "numeric", month: "short" }
    : { day: "numeric", month: "short", year: "numeric" });
}

export function timeOfDay(iso, timeZone) {
  return new Date(iso).toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit", ...(timeZone ? { timeZone } : {}) });
}

export function fullDateTime(iso) {
  return new Date(iso).toLocaleString(LANG, { dateStyle: "full", timeStyle: "short" });
}

/** Day heading in the thread: Today, Yesterday, or the date. */
export function dayLabel(iso) {
  const d = new Date(iso);
  const today = new Date(serverNow());
  const yesterday = new Date(today - 86400e3);
  if (d.toDateString() === today.toDateString()) return t("Today");
  if (d.toDateString() === yesterday.toDateString()) return t("Yesterday");
  return d.toLocaleDateString(LANG, { weekday: "long", day: "numeric", month: "long",
    ...(d.getFullYear() !== today.getFullYear() ? { year: "numeric" } : {}) });
}

/** A duration in two units at most: "23 h 12 min", "4 d 3 h", "12 min". */
export function duration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const parts = [];
  if (d) parts.push(unitFmt.day.format(d));
  if (h && parts.length < 2) parts.push(unitFmt.hour.format(h));
  if (!d && (m || !parts.length) && parts.length < 2) parts.push(unitFmt.minute.format(seconds < 60 ? 1 : m));
  return parts.join(" ");
}

/** Seconds from (server) now until `iso` (negative when passed). */
export function secondsUntil(iso) {
  return iso ? (Date.parse(iso) - serverNow()) / 1000 : null;
}

// ------------------------------------------------------------------ API

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http_" + status;
    this.details = err;
  }
}

/** Call the JSON API; throws ApiError with the server's code and message. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch("/api/v1" + path, {
      method, headers, signal, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { error: { code: "network", message: t("Cannot reach the server. Check your connection.") } });
  }
  const date = resp.headers.get("Date");
  if (date) {
    const server = Date.parse(date);
    if (!Number.isNaN(server)) skewMs = Math.abs(server - Date.now()) > 2000 ? server - Date.now() : 0;
  }
  if (resp.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.hash);
    throw new ApiError(401, {});
  }
  if (resp.status === 204) return null;
  let data = null;
  try { data = await resp.json(); } catch { /* not JSON */ }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const one of Array.isArray(v) ? v : [v]) if (one !== null && one !== undefined && one !== "") u.append(k, one); // a list: repeated
  }
  const s = u.toString();
  return s ? "?" + s : "";
}

// ------------------------------------------------------------------ DOM

/** Build an element: h("button.btn.primary", {onclick, "aria-label": ...}, "Text", child). */
export function h(spec, attrs, ...children) {
  const [head, ...classes] = spec.split(".");
  const [tag, id] = head.split("#");
  const el = document.createElement(tag || "div");
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className += (el.className ? " " : "") + v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "html") el.innerHTML = v; // trusted markup only (icons)
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function icon(name, cls = "") {
  const span = document.createElement("span");
  span.className = "i " + cls;
  span.setAttribute("aria-hidden", "true");
  span.innerHTML = ICONS[name] || "";
  return span;
}

export function initials(name) {
  const text = String(name || "").trim();
  if (!/\p{L}/u.test(text)) return text.replace(/\D/g, "").slice(-2) || "?"; // a phone number
  const parts = text.split(/[\s@._-]+/).map((p) => (p.match(/\p{L}/u) || [""])[0]).filter(Boolean);
  if (text.includes("@")) return parts[0].toUpperCase(); // an email address
  return (parts[0] + (parts.length > 1 ? parts[parts.length - 1] : "")).toUpperCase();
}

const HUES = [210, 262, 330, 20, 160, 190, 290, 40, 120, 0];
export function avatar(name, { size = "", title, presence } = {}) {
  let hash = 0;
  for (const ch of String(name || "")) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  const el = h("span.avatar" + (size ? "." + size : ""), { title: title || name, "aria-hidden": "true" }, initials(name));
  el.style.setProperty("--hue", HUES[hash % HUES.length]);
  if (presence) el.append(h("span.presence-dot." + presence));
  return el;
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/** Run at most once per `ms`, trailing call included. */
export function throttle(fn, ms) {
  let last = 0, timer = null;
  return (...args) => {
    const wait = last + ms - Date.now();
    if (wait <= 0) { last = Date.now(); fn(...args); }
    else if (!timer) timer = setTimeout(() => { timer = null; last = Date.now(); fn(...args); }, wait);
  };
}

// ------------------------------------------------------------------ toasts & dialogs

export function toast(message, kind = "info", { action, timeout = 5000 } = {}) {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div#toasts.toasts", { role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const el = h("div.toast." + kind, h("span", message),
    action ? h("button.btn.link", { type: "button", onclick: () => { action.run(); el.remove(); } }, action.label) : null,
    h("button.icon-btn.sm", { type: "button", "aria-label": t("Dismiss"), onclick: () => el.remove() }, icon("x")));
  box.append(el);
  if (timeout) setTimeout(() => el.remove(), timeout);
  return el;
}

/** A modal dialog; resolves with the value of the button pressed (or null). */
export function dialog({ title, body, buttons, wide = false }) {
  return new Promise((resolve) => {
    const dlg = h("dialog.modal" + (wide ? ".wide" : ""), { "aria-labelledby": "dlg-title" });
    const close = (value) => { dlg.close(); dlg.remove(); resolve(value); };
    dlg.append(
      h("header.modal-head", h("h2#dlg-title", title),
        h("button.icon-btn", { type: "button", "aria-label": t("Close"), onclick: () => close(null) }, icon("x"))),
      h("div.modal-body", body),
      h("footer.modal-foot", (buttons || [{ label: t("OK"), value: true, kind: "primary" }]).map((b) =>
        h("button.btn" + (b.kind ? "." + b.kind : ""), { type: "button", onclick: () => close(b.value), autofocus: b.autofocus || null }, b.label))),
    );
    dlg.addEventListener("cancel", (e) => { e.preventDefault(); close(null); });
    if (!dlg.querySelector("[autofocus]")) dlg.querySelector(".modal-foot .btn.primary")?.setAttribute("autofocus", "");
    document.body.append(dlg);
    dlg.showModal();
  });
}

// ------------------------------------------------------------------ icons (inline SVG, 20x20 grid)

const S = (body, vb = "0 0 20 20") =>
  `<svg viewBox="${vb}" width="1em" height="1em" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round">${body}</svg>`;
const F = (body, vb = "0 0 20 20") => `<svg viewBox="${vb}" width="1em" height="1em" fill="currentColor">${body}</svg>`;

export const ICONS = {
  inbox: S('<path d="M2.8 11.5h4.4l1 2h3.6l1-2h4.4"/><path d="M4.6 4.5h10.8l2.4 7v4a1.5 1.5 0 0 1-1.5 1.5h-12A1.5 1.5 0 0 1 2.2 15.5v-4l2.4-7Z"/>'),
  user: S('<circle cx="10" cy="6.8" r="3.3"/><path d="M3.8 17c.8-3.2 3.3-5 6.2-5s5.4 1.8 6.2 5"/>'),
  users: S('<circle cx="7.5" cy="7" r="3"/><path d="M2.5 16.5c.6-2.8 2.6-4.3 5-4.3s4.4 1.5 5 4.3"/><path d="M13 4.3a3 3 0 0 1 0 5.5M14.6 12.4c1.4.5 2.5 1.8 2.9 4.1"/>'),
  question: S('<circle cx="10" cy="10" r="7.5"/><path d="M8 8a2 2 0 1 1 2.8 1.8c-.5.3-.8.7-.8 1.3v.4"/><circle cx="10" cy="14" r=".4" fill="currentColor"/>'),
  all: S('<path d="M3 5h14M3 10h14M3 15h14"/>'),
  search: S('<circle cx="8.8" cy="8.8" r="5.3"/><path d="m13 13 4 4"/>'),
  bell: S('<path d="M5 8.2a5 5 0 0 1 10 0c0 4.3 1.8 5.8 1.8 5.8H3.2S5 12.5 5 8.2Z"/><path d="M8.3 16.5a1.8 1.8 0 0 0 3.4 0"/>'),
  check: S('<path d="m4 10.5 4 4 8-9"/>'),
  checks: S('<path d="m1.8 10.5 4 4 8-9"/><path d="m9.8 14 .6.5 8-9"/>'),
  clock: S('<circle cx="10" cy="10" r="7.3"/><path d="M10 5.8V10l2.8 1.8"/>'),
  alert: S('<circle cx="10" cy="10" r="7.5"/><path d="M10 6v4.6"/><circle cx="10" cy="13.6" r=".5" fill="currentColor"/>'),
  lock: S('<rect x="4" y="8.5" width="12" height="9" rx="2"/><path d="M6.8 8.5V6.3a3.2 3.2 0 0 1 6.4 0v2.2"/>'),
  note: S('<path d="M4.5 2.8h8l3 3v11.4H4.5z"/><path d="M7.5 9h5M7.5 12h5M7.5 6h2"/>'),
  reply: S('<path d="M8 5 3.5 9.5 8 14"/><path d="M3.8 9.5H12a4.5 4.5 0 0 1 4.5 4.5v1.5"/>'),
  send: S('<path d="M3 10 17 3.2l-3.4 13.6-4.2-5.2z"/><path d="m9.4 11.6 3-3"/>'),
  x: S('<path d="m5 5 10 10M15 5 5 15"/>'),
  chevron: S('<path d="m6 8 4 4 4-4"/>'),
  back: S('<path d="M12.5 4.5 7 10l5.5 5.5"/>'),
  snooze: S('<circle cx="10" cy="11" r="6.3"/><path d="M10 8v3.2l2 1.3M4 3.5 2.5 5M16 3.5 17.5 5"/>'),
  pending: S('<circle cx="10" cy="10" r="7.3"/><circle cx="6.8" cy="10" r=".7" fill="currentColor"/><circle cx="10" cy="10" r=".7" fill="currentColor"/><circle cx="13.2" cy="10" r=".7" fill="currentColor"/>'),
  closed: S('<circle cx="10" cy="10" r="7.3"/><path d="m6.8 10.2 2.2 2.2 4.2-4.6"/>'),
  reopen: S('<path d="M3.5 10a6.5 6.5 0 1 0 2-4.7"/><path d="M3.3 2.8v3.4h3.4"/>'),
  panel: S('<rect x="2.5" y="3.5" width="15" height="13" rx="2"/><path d="M12.5 3.5v13"/>'),
  eye: S('<path d="M1.8 10S5 4.5 10 4.5 18.2 10 18.2 10 15 15.5 10 15.5 1.8 10 1.8 10Z"/><circle cx="10" cy="10" r="2.5"/>'),
  pen: S('<path d="m12.8 3.8 3.4 3.4-9 9H3.8v-3.4z"/>'),
  image: S('<rect x="2.5" y="3.5" width="15" height="13" rx="2"/><circle cx="7" cy="8" r="1.5"/><path d="m3 15 4.5-4.5 3 3 2.5-2.5 4.5 4.5"/>'),
  file: S('<path d="M5 2.5h6.5l3.5 3.5v11.5H5z"/><path d="M11.5 2.5V6H15"/>'),
  clip: S('<path d="m16.2 9.6-6.1 6.1a3.9 3.9 0 0 1-5.5-5.5l6.6-6.6a2.6 2.6 0 0 1 3.7 3.7l-6.6 6.6a1.3 1.3 0 0 1-1.8-1.8l6-6"/>'),
  download: S('<path d="M10 3v10M5.8 9 10 13.2 14.2 9M3.5 16.5h13"/>'),
  retry: S('<path d="M16.5 10a6.5 6.5 0 1 1-2-4.7"/><path d="M16.7 2.8v3.4h-3.4"/>'),
  timer: S('<circle cx="10" cy="11" r="6.5"/><path d="M10 7.5V11M8 2.5h4"/>'),
  settings: S('<circle cx="10" cy="10" r="2.6"/><path d="M10 1.8v2.3M10 15.9v2.3M18.2 10h-2.3M4.1 10H1.8M15.8 4.2l-1.6 1.6M5.8 14.2l-1.6 1.6M15.8 15.8l-1.6-1.6M5.8 5.8 4.2 4.2"/>'),
  team: S('<path d="M3 16.5V9.5M8 16.5V4M13 16.5v-5M18 16.5V7"/>'),
  keyboard: S('<rect x="1.8" y="5" width="16.4" height="10" rx="2"/><path d="M5 8.2h.01M8 8.2h.01M11 8.2h.01M14 8.2h.01M6 11.8h8"/>'),
  globe: S('<circle cx="10" cy="10" r="7.5"/><path d="M2.5 10h15M10 2.5c2 2.2 3 4.7 3 7.5s-1 5.3-3 7.5c-2-2.2-3-4.7-3-7.5s1-5.3 3-7.5Z"/>'),
  logout: S('<path d="M8 3.5H4.5v13H8M12.5 6.5 16 10l-3.5 3.5M16 10H7.5"/>'),
  sound: S('<path d="M3 7.5h3l4-3.5v12l-4-3.5H3z"/><path d="M13.5 7a4 4 0 0 1 0 6M15.5 5a7 7 0 0 1 0 10"/>'),
  desktop: S('<rect x="2" y="3" width="16" height="11" rx="1.8"/><path d="M7 17h6M10 14v3"/>'),
  copy: S('<rect x="6.5" y="6.5" width="10" height="10" rx="1.8"/><path d="M13.5 6.5V4.8A1.8 1.8 0 0 0 11.7 3H4.8A1.8 1.8 0 0 0 3 4.8v6.9a1.8 1.8 0 0 0 1.8 1.8h1.7"/>'),
  plus: S('<path d="M10 4v12M4 10h12"/>'),
  trash: S('<path d="M3.5 5.5h13M8 5.5V3.5h4v2M5 5.5l.8 11h8.4l.8-11"/>'),
  slash: S('<rect x="2.5" y="2.5" width="15" height="15" rx="3"/><path d="m12 6-4 8"/>'),
  dots: F('<circle cx="4.5" cy="10" r="1.5"/><circle cx="10" cy="10" r="1.5"/><circle cx="15.5" cy="10" r="1.5"/>'),
  shield: S('<path d="M10 2.5 16 5v4.5c0 3.8-2.6 6.8-6 8-3.4-1.2-6-4.2-6-8V5z"/>'),
  moon: S('<path d="M15.5 12.5A6.5 6.5 0 0 1 7.5 4.5a6.5 6.5 0 1 0 8 8Z"/>'),
  tag: S('<path d="M2.8 3.8v5.3l8 8 6.3-6.3-8-8H3.8a1 1 0 0 0-1 1Z"/><circle cx="6.5" cy="6.5" r="1.2"/>'),
  flag: S('<path d="M4.5 17.5v-14M4.5 3.5h10l-2 3.5 2 3.5h-10"/>'),
  bot: S('<rect x="4" y="6" width="12" height="9" rx="2.5"/><path d="M10 6V3.5M7.5 10h.01M12.5 10h.01M2 10v2M18 10v2"/>'),
  wifi: S('<path d="M2.5 7.8a11 11 0 0 1 15 0M5 10.6a7.3 7.3 0 0 1 10 0M7.5 13.4a3.6 3.6 0 0 1 5 0"/><circle cx="10" cy="16" r=".6" fill="currentColor"/>'),
};

/** A channel's icon and colour, as its adapter draws them (an inbox icon for an unknown one). */
export function channelIcon(channel) {
  const caps = CHANNELS[channel] || {};
  const el = icon("inbox", "ch ch-" + channel);
  if (caps.icon) el.innerHTML = F(caps.icon);
  if (caps.color) el.style.color = caps.color;
  el.setAttribute("title", channelName(channel));
  return el;
}
