// What the inbox page knows: filters, the list, the open thread, presence, teammates.

import { ME, allCaps, caps, secondsUntil, t } from "./core.js";

const saved = JSON.parse(localStorage.getItem("switchboard.filter." + (ME && ME.id)) || "{}");

export const S = {
  filter: Object.assign({ status: "open", assignee: "any", inbox: null, channel: null, labels: [], q: "", sort: "last_activity", automated: "show" }, saved, { q: "" }),
  items: [], // conversations in list order
  convs: new Map(), // id -> latest conversation object seen (list, thread, events)
  counts: { mine: null, unassigned: null, all: null },
  nextCursor: null,
  loading: false,
  openId: null,
  cursorId: null, // keyboard cursor in the list
  checked: new Set(),
  presence: new Map(), // conversation id -> [{id, name, state}]
  typing: new Map(), // conversation id -> timestamp the contact last typed
  inboxes: new Map(),
  users: [],
};

export function saveFilter() {
  const { q, ...rest } = S.filter;
  localStorage.setItem("switchboard.filter." + (ME && ME.id), JSON.stringify(rest));
}

/** Remember the newest copy of a conversation and return the one to show: answers and live
 * events can arrive out of order (a request's answer read before an event's change, say). */
export function remember(conv) {
  if (conv.contact && conv.contact.erased) conv.contact.name = t("Erased contact");
  const old = S.convs.get(conv.id);
  if (old && older(conv, old)) return old;
  S.convs.set(conv.id, conv);
  return conv;
}

/** Was `conv` read before `than`? By when the server read each (`as_of`, to the millisecond). */
function older(conv, than) {
  if (conv.as_of && than.as_of) return Date.parse(conv.as_of) < Date.parse(than.as_of);
  return !!(than.last_activity_at && conv.last_activity_at && than.last_activity_at > conv.last_activity_at
    && than.status === conv.status && (than.assignee && than.assignee.id) === (conv.assignee && conv.assignee.id));
}

/** Does `conv` belong in the list under the current filter? */
export function matches(conv) {
  const f = S.filter;
  if (f.status !== "all" && conv.status !== f.status) return false;
  if (f.assignee === "me" && !(conv.assignee && conv.assignee.id === ME.id)) return false;
  if (f.assignee === "unassigned" && conv.assignee) return false;
  if (f.inbox && conv.inbox.id !== Number(f.inbox)) return false;
  if (f.channel && conv.inbox.channel !== f.channel) return false;
  if (f.automated === "hide" && conv.automated) return false;
  if (f.labels && f.labels.length) { // every chosen label (labels.js)
    const have = new Set((conv.labels || []).map(labelKey));
    if (!f.labels.every((n) => have.has(labelKey(n)))) return false;
  }
  // a search reads every message, so only the server knows: a listed hit stays while it fits
  if (f.q && !S.items.some((c) => c.id === conv.id)) return false;
  return true;
}

/** What label names are matched by, as the server does: one space between words, any case. */
export const labelKey = (name) => String(name || "").replace(/\s+/g, " ").trim().toLowerCase();

const far = "9999";
/** Sort key comparator for the current sort. */
export function compare(a, b) {
  switch (S.filter.sort) {
    case "waiting_longest":
      return (a.waiting_since || far).localeCompare(b.waiting_since || far) || a.id - b.id;
    case "window_expiring":
      return windowOrder(a, b);
    case "created":
      return b.id - a.id;
    default:
      return (b.last_activity_at || "").localeCompare(a.last_activity_at || "") || b.id - a.id;
  }
}

const WINDOW_GROUP = { open: 0, human_agent: 1, closed: 2, none: 3 };

/** "Window closing soonest", as the server sorts: open windows by time left, then human
 * agent ones, then closed ones (the most recently closed first), then those without. */
function windowOrder(a, b) {
  const wa = liveWindow(a.reply_window);
  const wb = liveWindow(b.reply_window);
  const ga = WINDOW_GROUP[wa.state] ?? 3;
  const gb = WINDOW_GROUP[wb.state] ?? 3;
  if (ga !== gb) return ga - gb;
  const ea = wa.expires_at || far;
  const eb = wb.expires_at || far;
  return ga === 2 ? eb.localeCompare(ea) || b.id - a.id : ea.localeCompare(eb) || a.id - b.id;
}

/** The reply window as it stands now on the (server) clock, even between refreshes. */
export function liveWindow(w) {
  if (!w || w.state === "none") return { state: "none" };
  let { state, expires_at: expires, final_expires_at: final } = w;
  if ((state === "open" || state === "human_agent") && expires && secondsUntil(expires) <= 0) {
    if (state === "open" && final && secondsUntil(final) > 0) {
      state = "human_agent";
      expires = final;
    } else {
      state = "closed";
    }
  }
  return { state, expires_at: expires, seconds: expires ? secondsUntil(expires) : null, rule: w.rule };
}

/** Translated name of the channel's window rule in `state` (the server's English as a fallback). */
export function ruleName(conv, state) {
  const w = caps(conv).window;
  const label = w && (state === "human_agent" && w.human_label ? w.human_label : w.standard_label);
  return label ? t(label) : conv.reply_window.rule || "";
}

// the names a contact has before we know theirs: "Messenger user 123" (the channels' identity labels)
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const placeholders = allCaps().map((c) => c.identity_label).filter(Boolean).map(escapeRe);
const PLACEHOLDER = placeholders.length ? new RegExp("^(" + placeholders.join("|") + ")\\b") : /$^/;

export function firstName(name) {
  const n = String(name || "").trim();
  if (!n || /^[+\d(]/.test(n) || n.includes("@") || PLACEHOLDER.test(n) || /^Contact #/.test(n)) return "";
  return n.split(/\s+/)[0];
}

export function presenceOthers(convId) {
  return (S.presence.get(convId) || []).filter((u) => u.id !== ME.id);
}

/** May I assign to others: leads and admins always; agents in `conv`'s inbox unless it says no. */
export function canAssignOthers(conv) {
  if (ME.role === "lead" || ME.role === "admin") return true;
  const inbox = conv && S.inboxes.get(conv.inbox.id);
  return !!(inbox && inbox.settings && inbox.settings.agents_assign_others);
}

/** People who can be assigned a conversation of `inboxId`. */
export function assignable(inboxId) {
  const inbox = S.inboxes.get(inboxId);
  const members = inbox && inbox.member_ids ? new Set(inbox.member_ids) : null;
  return S.users.filter((u) => u.role !== "agent" || !members || members.has(u.id));
}
