// The open conversation: header with actions, messages grouped by day, contact panel.

import {
  ME, api, avatar, caps, channelIcon, channelName, dayLabel, fullDateTime, h, icon, t,
  timeOfDay, toast, shortDate,
} from "./core.js";
import { popover } from "./shell.js";
import { S, assignable, canAssignOthers, presenceOthers, remember } from "./state.js";
import { dueChip, presenceLabel, windowChip } from "./list.js";
import { renderContact, toggleContact } from "./contact.js";
import { languageChip, spokenCodes } from "./languages.js";
import { withMentions } from "./mentions.js";
import { labelBar } from "./labels.js";

export const T = {
  id: null, // the open conversation's id
  /** The open conversation: always the newest copy in `S.convs`, which every live event updates,
   * so the header, the thread, the composer and the list can never disagree. */
  get conv() {
    return this.id === null ? null : S.convs.get(this.id) || null;
  },
  set conv(conv) {
    this.id = conv ? conv.id : null;
    if (conv && !S.convs.has(conv.id)) remember(conv);
  },
  messages: [],
  hasMore: false,
  seenId: 0, // newest message the agent has looked at (for the send guard)
  menus: {},
};

export function changed(conv) {
  document.dispatchEvent(new CustomEvent("conv-changed", { detail: remember(conv) }));
}

// ------------------------------------------------------------------ header

const STATUS_LABEL = () => ({ open: t("Open"), pending: t("Pending"), snoozed: t("Snoozed"), closed: t("Closed") });

export async function setStatus(conv, status, snoozeUntil) {
  try {
    const body = { status };
    if (snoozeUntil) body.snooze_until = snoozeUntil.toISOString();
    const updated = await api(`/conversations/${conv.id}/status`, { method: "POST", body });
    changed(updated);
    const msg = { closed: t("Conversation closed"), open: t("Conversation reopened"), pending: t("Set to pending"),
      snoozed: t("Snoozed until {time}", { time: snoozeUntil ? snoozeUntil.toLocaleString(document.documentElement.lang, { weekday: "short", hour: "2-digit", minute: "2-digit" }) : "" }) }[status];
    toast(msg, "success", status === "closed" || status === "snoozed" ? { action: { label: t("Undo"), run: () => setStatus(updated, "open") } } : {});
    return updated;
  } catch (e) {
    toast(e.message, "error");
    return null;
  }
}

export async function assign(conv, userId) {
  try {
    const updated = await api(`/conversations/${conv.id}/assign`, { method: "POST", body: { assignee_id: userId } });
    changed(updated);
    return updated;
  } catch (e) {
    toast(e.message, "error");
    return null;
  }
}

function snoozePresets() {
  const now = new Date();
  const at = (d, hh = 9) => { const x = new Date(d); x.setHours(hh, 0, 0, 0); return x; };
  const tomorrow = at(new Date(now.getTime() + 86400e3));
  const monday = new Date(now);
  monday.setDate(now.getDate() + ((8 - now.getDay()) % 7 || 7));
  const fmt = (d) => d.toLocaleString(document.documentElement.lang, { weekday: "short", hour: "2-digit", minute: "2-digit" });
  const later = new Date(now.getTime() + 3 * 3600e3);
  return [
    [t("In 1 hour"), new Date(now.getTime() + 3600e3), timeOfDay(new Date(now.getTime() + 3600e3).toISOString())],
    [t("Later today"), later, timeOfDay(later.toISOString())],
    [t("Tomorrow"), tomorrow, fmt(tomorrow)],
    [t("Next week"), at(monday), fmt(at(monday))],
  ];
}

function snoozeMenu(conv) {
  let cur = conv;
  const btn = h("button.btn.ghost", { type: "button", "aria-haspopup": "true", title: t("Snooze") + " (s)" }, icon("snooze"), h("span.lbl", t("Snooze")));
  const custom = h("input", { type: "datetime-local", "aria-label": t("Snooze until"),
    min: new Date(Date.now() - new Date().getTimezoneOffset() * 60e3).toISOString().slice(0, 16) });
  const panel = h("div.menu", { role: "menu", hidden: true },
    h("div.menu-title", t("Snooze until")),
    snoozePresets().map(([label, when, hint]) => h("button.menu-item", { type: "button", role: "menuitem",
      onclick: () => { pop.close(); setStatus(cur, "snoozed", when); } }, h("span", label), h("span.muted", hint))),
    h("div.menu-sep"),
    h("form.menu-form", { onsubmit: (e) => {
      e.preventDefault();
      if (!custom.value) return;
      pop.close();
      setStatus(cur, "snoozed", new Date(custom.value));
    } }, custom, h("button.btn.sm", { type: "submit" }, t("Snooze"))));
  const pop = popover(btn, panel);
  return { wrap: h("div.menu-wrap", btn, panel), pop, refresh: (c) => { cur = c; } };
}

function assignMenu(conv) {
  let cur = conv;
  const btn = h("button.btn.ghost.assign-btn", { type: "button", "aria-haspopup": "true", title: t("Assign") + " (a)" });
  const label = () => {
    const who = cur.assignee;
    btn.replaceChildren(who ? avatar(who.name, { size: "xs" }) : icon("user"),
      h("span.lbl", who ? (who.id === ME.id ? t("You") : h("bdi", who.name)) : t("Unassigned")), icon("chevron", "sm"));
  };
  const panel = h("div.menu.assign-menu", { role: "menu", hidden: true });
  const search = h("input.menu-search", { type: "search", placeholder: t("Find a teammate"), "aria-label": t("Find a teammate") });
  const list = h("div.menu-list");
  const fill = () => {
    const who = cur.assignee;
    const others = canAssignOthers(cur); // the inbox's setting may change while the page is open
    search.hidden = !others;
    const q = search.value.trim().toLowerCase();
    let people = others ? assignable(cur.inbox.id) : S.users.filter((u) => u.id === ME.id);
    if (!people.some((u) => u.id === ME.id)) people = [{ id: ME.id, name: ME.name, availability: ME.availability }, ...people];
    people = people.filter((u) => !q || u.name.toLowerCase().includes(q));
    people.sort((a, b) => (a.id === ME.id ? -1 : b.id === ME.id ? 1 : a.name.localeCompare(b.name)));
    list.replaceChildren(...[
      ...people.map((u) => h("button.menu-item" + (who && who.id === u.id ? ".current" : ""), { type: "button", role: "menuitemradio",
        "aria-checked": who && who.id === u.id ? "true" : "false", dataset: { userId: u.id },
        onclick: () => { pop.close(); assign(cur, u.id); } },
      avatar(u.name, { size: "xs", presence: u.availability }), h("span", u.id === ME.id ? t("{name} (you)", { name: h("bdi", u.name) }) : h("bdi", u.name)),
      spokenCodes(u) ? h("span.muted.sm.spoken", { title: t("Speaks {languages}", { languages: spokenCodes(u) }) }, spokenCodes(u)) : null,
      who && who.id === u.id ? icon("check", "end") : null)),
      who && (canAssignOthers() || who.id === ME.id) ? h("button.menu-item", { type: "button", role: "menuitem", onclick: () => { pop.close(); assign(cur, null); } },
        icon("x"), h("span", t("Unassign"))) : null,
    ].filter(Boolean)); // replaceChildren would show a null as the text "null"
  };
  search.addEventListener("input", fill);
  panel.append(search, list);
  label();
  const pop = popover(btn, panel, { onOpen: () => { search.value = ""; fill(); } });
  return { wrap: h("div.menu-wrap", btn, panel), pop, refresh: (c) => { cur = c; label(); fill(); } };
}

/**
 * The header's menus are drawn again by every live update; one that is open on the same
 * conversation is handed back as it is (refreshed), so it stays open with its search and focus.
 */
const headerMenus = {};
function headerMenu(key, conv, build) {
  const kept = headerMenus[key];
  if (kept && kept.id === conv.id && kept.pop.isOpen) {
    kept.refresh(conv);
    return kept.wrap;
  }
  if (kept) kept.pop.close();
  const menu = { ...build(conv), id: conv.id };
  headerMenus[key] = menu;
  T.menus[key] = menu.pop;
  return menu.wrap;
}

export function renderHeader(conv) {
  const head = document.getElementById("thread-head");
  const ident = conv.contact.identities.find((i) => i.inbox_id === conv.inbox.id) || conv.contact.identities[0];
  const others = presenceOthers(conv.id);
  const status = conv.status;
  const focused = head.contains(document.activeElement) ? document.activeElement : null;
  const actions = [headerMenu("assign", conv, assignMenu)];
  const labels = labelBar(conv);
  T.menus.labels = labels.picker;
  if (status === "closed") {
    actions.push(h("button.btn.ghost", { type: "button", onclick: () => setStatus(conv, "open"), title: t("Reopen") + " (e)" }, icon("reopen"), h("span.lbl", t("Reopen"))));
  } else {
    if (status !== "pending") actions.push(h("button.btn.ghost", { type: "button", onclick: () => setStatus(conv, "pending"), title: t("Waiting on the customer") }, icon("pending"), h("span.lbl", t("Pending"))));
    if (status !== "open") actions.push(h("button.btn.ghost", { type: "button", onclick: () => setStatus(conv, "open"), title: t("Reopen") }, icon("reopen"), h("span.lbl", t("Reopen"))));
    actions.push(headerMenu("snooze", conv, snoozeMenu));
    actions.push(h("button.btn.primary.close-btn", { type: "button", onclick: () => setStatus(conv, "closed"), title: t("Close") + " (e)" }, icon("closed"), h("span.lbl", t("Close"))));
  }
  actions.push(h("button.icon-btn.panel-toggle", { type: "button", "aria-label": t("Contact details"), title: t("Contact details"),
    "aria-pressed": document.getElementById("inbox-app").classList.contains("with-contact") ? "true" : "false",
    onclick: (e) => toggleContact(e.currentTarget) }, icon("panel")));
  head.replaceChildren(
    h("button.icon-btn.back-btn", { type: "button", "aria-label": t("Back to the list"), onclick: () => document.dispatchEvent(new CustomEvent("go-list")) }, icon("back", "flip")),
    h("div.thread-who",
      h("h1.thread-name", { dir: "auto" }, conv.contact.name),
      h("div.thread-sub",
        channelIcon(conv.inbox.channel), h("bdi.thread-inbox", conv.inbox.name),
        ident && ident.external_id !== conv.contact.name ? [h("span.dot-sep", "·"), h("span.ext", { dir: "ltr" }, ident.external_id)] : null,
        h("span.dot-sep", "·"), h("span.status-pill." + status, STATUS_LABEL()[status]), languageChip(conv.language),
        status === "snoozed" && conv.snooze_until ? h("span.muted", t("until {time}", { time: fullDateTime(conv.snooze_until) })) : null,
        windowChip(conv), dueChip(conv)),
      labels.el),
    h("div.thread-presence" + (others.some((p) => p.state === "replying") ? ".replying" : ""), { "aria-live": "polite", hidden: !others.length || null },
      others.length ? [icon(others.some((p) => p.state === "replying") ? "pen" : "eye"), presenceLabel(others, { nodes: true })] : null),
    h("div.thread-actions", { role: "toolbar", "aria-label": t("Conversation actions") }, actions),
  );
  if (focused && focused.isConnected) focused.focus({ preventScroll: true });
}

// ------------------------------------------------------------------ messages

function statusTick(msg, showLabel) {
  const st = msg.status;
  const map = {
    sending: ["clock", t("Sending…")],
    queued: ["clock", msg.send_after ? t("Scheduled for {time}", { time: timeOfDay(msg.send_after) }) : msg.status_reason ? t("Waiting")
      : msg.error ? t("Retrying") : t("Queued")],
    sent: ["check", t("Sent")],
    delivered: ["checks", t("Delivered")],
    read: ["checks", t("Read")],
    failed: ["alert", t("Not delivered")],
    unknown: ["alert", t("Delivery unknown")],
  };
  const [ic, label] = map[st] || ["check", st];
  const shown = showLabel || st === "failed" || st === "unknown" || msg.send_after || (st === "queued" && (msg.error || msg.status_reason));
  return h("span.tick." + st, { title: label, "data-status": st, role: "img", "aria-label": label }, icon(ic), shown ? h("span.tick-label", label) : null);
}

export function fileSize(n) {
  if (!n) return "";
  const units = ["B", "kB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return new Intl.NumberFormat(document.documentElement.lang, { maximumFractionDigits: 1 }).format(n) + " " + units[i];
}

/** A link the platform sent instead of a file (a story, a shared page, a map): opened, never stored. */
function linkEl(att) {
  const link = att.extra.link;
  if (!/^https?:\/\//i.test(link)) return h("div.att.failed", icon("alert"), t("Attachment unavailable"));
  const titles = { "Replied to your story": t("Replied to your story"), "Mentioned you in their story": t("Mentioned you in their story") };
  return h("a.att-file.att-link", { href: link, target: "_blank", rel: "noopener noreferrer", dataset: { kind: att.kind } },
    icon(att.kind === "story" ? "image" : "globe"), h("span.att-name", { dir: "auto" }, titles[att.extra.title] || att.extra.title || link));
}

function attachmentEl(att) {
  if (att.extra && att.extra.link && !att.url) return linkEl(att);
  if (att.state === "pending") return h("div.att.pending", icon("download"), t("Downloading {name}…", { name: att.filename || t("attachment") }));
  if (att.state === "failed" || !att.url) return h("div.att.failed", icon("alert"), t("Attachment unavailable"), att.error ? ": " + att.error : "");
  // the server shows only raster images, audio, video and PDF inline (never SVG or HTML)
  const kind = att.inline ? (att.content_type || "").split("/")[0] || att.kind : "file";
  if (kind === "image") {
    return h("a.att-image", { href: att.url, target: "_blank", rel: "noopener" }, h("img", { src: att.url, alt: att.filename || t("Image"), loading: "lazy" }));
  }
  if (kind === "video") return h("video.att-media", { src: att.url, controls: true, preload: "metadata" });
  if (kind === "audio") return h("audio.att-media", { src: att.url, controls: true, preload: "metadata" });
  return h("a.att-file", { href: att.url, download: att.filename || true },
    icon("file"), h("span.att-name", { dir: "auto" }, att.filename || t("attachment")), h("span.muted", fileSize(att.size)), icon("download"));
}

const QUOTE_CSS = "blockquote,.gmail_quote,.yahoo_quoted,#divRplyFwdMsg,#divRplyFwdMsg~*,.moz-cite-prefix{display:none!important}";

/** Email HTML in a sandboxed frame: no scripts, strict CSP, remote images only on request. */
function emailFrame(msg, opts) {
  let html = msg.html || "";
  const doc = new DOMParser().parseFromString(html, "text/html");
  const cids = new Map(msg.attachments.filter((a) => a.content_id && a.url).map((a) => [a.content_id.replace(/[<>]/g, ""), a.url]));
  doc.querySelectorAll('img[src^="cid:"]').forEach((img) => {
    const url = cids.get(img.getAttribute("src").slice(4));
    if (url) img.setAttribute("src", location.origin + url); else img.removeAttribute("src");
  });
  const remote = doc.querySelectorAll("img[data-src]");
  if (opts.images) remote.forEach((img) => img.setAttribute("src", img.getAttribute("data-src")));
  html = doc.body.innerHTML;
  const imgSrc = `data: ${location.origin}` + (opts.images ? " https: http:" : "");
  const srcdoc = `<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${imgSrc}; style-src 'unsafe-inline'; font-src data:; media-src 'none'">
<base target="_blank"><style>html,body{margin:0;padding:0;background:transparent;overflow:hidden}img[data-src]:not([src]){display:inline-block;min-width:24px;min-height:18px;background:#eef0f4;border-radius:4px;font-size:12px;color:#838c9b}body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:#1f2633;overflow-wrap:anywhere}img{max-width:100%;height:auto}table{max-width:100%}a{color:#3657d6}pre{white-space:pre-wrap}
${opts.quoted ? "" : QUOTE_CSS}</style></head><body dir="auto">${html}</body></html>`;
  const frame = h("iframe.mail-frame", {
    sandbox: "allow-same-origin allow-popups allow-popups-to-escape-sandbox",
    referrerpolicy: "no-referrer",
    title: t("Email from {name}", { name: msg.sender.name || "" }),
  });
  frame.srcdoc = srcdoc;
  frame.addEventListener("load", () => {
    try {
      const d = frame.contentDocument;
      const fit = () => { frame.style.height = Math.min(4000, Math.max(40, d.documentElement.scrollHeight)) + "px"; };
      fit();
      // the column can change width (contact panel, window size): keep the frame fitted
      new ResizeObserver(fit).observe(d.body);
    } catch { frame.style.height = "320px"; }
  });
  return { frame, remoteCount: remote.length, hasQuote: !!doc.querySelector("blockquote,.gmail_quote,.yahoo_quoted,#divRplyFwdMsg") };
}

function emailBody(msg, conv) {
  const box = h("div.mail-body");
  const opts = { images: false, quoted: false, original: null };
  const render = () => {
    const tools = h("div.mail-tools");
    const parts = [];
    if (msg.html) {
      const { frame, remoteCount, hasQuote } = emailFrame(msg, opts);
      parts.push(frame);
      if (remoteCount && !opts.images) {
        tools.append(h("span.blocked", icon("shield"), t("Remote images are blocked to protect your privacy.")),
          h("button.btn.link", { type: "button", onclick: () => { opts.images = true; render(); } }, t("Show images")));
      }
      if (hasQuote || msg.has_full_body) tools.append(quoteToggle());
    } else {
      parts.push(h("div.msg-text", { dir: "auto" }, msg.body));
      if (msg.has_full_body) tools.append(quoteToggle());
    }
    if (opts.quoted && opts.original && (!msg.html || !opts.htmlHasQuote)) parts.push(h("pre.quoted", { dir: "auto" }, opts.original));
    box.replaceChildren(...parts, tools.childNodes.length ? tools : "");
  };
  const quoteToggle = () => h("button.btn.link", { type: "button", "aria-expanded": opts.quoted ? "true" : "false", onclick: async () => {
    opts.quoted = !opts.quoted;
    if (opts.quoted && msg.has_full_body && opts.original === null) {
      try {
        const full = await api(`/conversations/${conv.id}/messages/${msg.id}/original`);
        opts.original = full.full_body || "";
      } catch (e) { toast(e.message, "error"); opts.original = ""; }
    }
    if (msg.html) {
      const d = new DOMParser().parseFromString(msg.html, "text/html");
      opts.htmlHasQuote = !!d.querySelector("blockquote,.gmail_quote,.yahoo_quoted,#divRplyFwdMsg");
    }
    render();
  } }, opts.quoted ? t("Hide quoted text") : t("Show quoted text"));
  render();
  return box;
}

const ACTIVITY_ICON = { assigned: "user", unassigned: "user", closed: "closed", open: "reopen", pending: "pending",
  snoozed: "snooze", scheduled: "clock", opted_out: "alert", opted_in: "check", labeled: "tag", unlabeled: "tag" };

/** A system line in the agent's language: its template and values (older lines: the English body). */
function activityText(msg) {
  const meta = msg.meta || {};
  return meta.text ? t(meta.text, meta.values) : msg.body;
}

/** When a customer sent a message, as the platform reports it (a webhook can arrive late:
 * Messenger retries for hours); our own messages and lines: when they were written. */
export function sentAt(msg) {
  return msg.direction === "inbound" && msg.platform_at ? msg.platform_at : msg.created_at;
}

/** The message's time: its send time, and when it reached us on hover if over a minute later. */
function timeEl(msg) {
  const sent = sentAt(msg);
  const late = Math.abs(Date.parse(msg.created_at) - Date.parse(sent)) > 60e3;
  const title = late
    ? t("Sent {sent} · arrived {arrived}", { sent: fullDateTime(sent), arrived: fullDateTime(msg.created_at) })
    : fullDateTime(sent);
  return h("time.msg-time" + (late ? ".late" : ""), { datetime: sent, title }, timeOfDay(sent));
}

export function messageEl(msg, conv, { last } = {}) {
  const time = timeEl(msg);
  if (msg.direction === "activity") {
    return h("div.activity", { dataset: { id: msg.id }, id: "m" + msg.id }, icon(ACTIVITY_ICON[msg.meta.event] || "flag"), h("span", { dir: "auto" }, activityText(msg)), time);
  }
  const atts = msg.attachments.length ? h("div.atts", msg.attachments.map(attachmentEl)) : null;
  const isMail = caps(conv).mail && msg.direction === "inbound";
  if (msg.direction === "note") {
    return h("article.msg.note", { dataset: { id: msg.id }, id: "m" + msg.id, "aria-label": t("Private note by {name}", { name: msg.sender.name || "" }) },
      h("div.bubble",
        h("div.note-head", icon("lock"), h("strong", t("Private note")), h("span.muted", "· " + (msg.sender.name || ""))),
        h("div.msg-text", { dir: "auto" }, withMentions(msg.body)), atts),
      h("div.msg-meta", time));
  }
  const inbound = msg.direction === "inbound";
  const bubble = h("div.bubble" + (isMail ? ".mail" : ""));
  if (isMail) {
    bubble.append(h("div.mail-head", h("strong", { dir: "auto" }, msg.sender.name || conv.contact.name),
      msg.meta.subject ? h("span.mail-subject", { dir: "auto" }, msg.meta.subject) : null));
    bubble.append(emailBody(msg, conv));
  } else if (msg.body) {
    bubble.append(h("div.msg-text", { dir: "auto" }, msg.body));
  }
  if (msg.reply_to) {
    const q = msg.reply_to;
    bubble.prepend(h("a.msg-quote", { href: q.id ? "#m" + q.id : null, dir: "auto" },
      q.body || (q.id ? t("[empty message]") : t("An earlier message"))));
  }
  const KIND = { postback: t("Tapped a button"), quick_reply: t("Chose a reply"), reaction: t("Reacted") };
  if (KIND[msg.kind] && inbound) bubble.prepend(h("div.msg-kind", icon("flag"), KIND[msg.kind]));
  if (msg.kind === "template" && !inbound) bubble.prepend(h("div.msg-kind", icon("note"), t("Template")));
  if (atts) bubble.append(atts);
  if (!msg.body && !atts && !isMail) bubble.append(h("div.msg-text.muted", t("[empty message]")));
  const meta = h("div.msg-meta",
    !inbound ? h("span.msg-sender", msg.automated ? t("Automatic reply") : (msg.meta.outside_switchboard ? t("Sent outside Switchboard") : msg.sender.name || "")) : null,
    !inbound && msg.meta.tag === "HUMAN_AGENT" ? h("span.chip.violet.soft.xs", t("Human agent")) : null,
    inbound && msg.automated ? h("span.chip.plain.xs.automated", { title: t("Sent by a machine: an auto-reply, a mailing list or a newsletter") }, icon("bot"), t("Automated")) : null,
    time,
    !inbound ? statusTick(msg, last) : null);
  const el = h("article.msg." + (inbound ? "in" : "out") + (msg.status === "failed" ? ".failed" : ""), {
    dataset: { id: msg.id, status: msg.status, clientId: msg.client_id || "" }, id: "m" + msg.id,
    "aria-label": inbound ? t("Message from {name}", { name: conv.contact.name }) : t("Reply by {name}", { name: msg.sender.name || "" }),
  }, bubble, meta);
  if (msg.status === "failed") {
    el.append(h("div.msg-error", { role: "alert" }, icon("alert"),
      h("span", msg.error && msg.error.message ? t("Not delivered: {reason}", { reason: msg.error.message }) : t("Not delivered.")),
      msg.id > 0 ? h("button.btn.sm", { type: "button", onclick: (e) => retry(msg, conv, e.currentTarget) }, icon("retry"), t("Retry")) : null));
  } else if (msg.status === "unknown") {
    // the provider did not answer: sending again could deliver it twice, so the agent decides
    el.append(h("div.msg-error.unknown", { role: "alert" }, icon("alert"),
      h("span", msg.error && msg.error.message ? msg.error.message : t("This reply may or may not have been delivered.")),
      msg.id > 0 ? h("button.btn.sm", { type: "button", onclick: (e) => retry(msg, conv, e.currentTarget) }, icon("retry"), t("Send again")) : null));
  } else if (msg.status === "queued" && msg.status_reason) {
    // held by its inbox (paused until reconnected): the customer has not been answered yet
    el.append(h("div.msg-error.retrying.held", { role: "status" }, icon("clock"), h("span", heldText(msg.status_reason))));
  } else if (msg.status === "queued" && msg.error && !msg.send_after) {
    el.append(h("div.msg-error.retrying", icon("clock"), h("span", t("Not sent yet: {reason}", { reason: msg.error.message || "" }))));
  }
  return el;
}

/** Why a queued reply waits (the server's ``status_reason``), in the agent's language. */
function heldText(reason) {
  return { inbox_needs_reconnect: t("Waiting: the inbox needs reconnecting") }[reason.code] || reason.text;
}

async function retry(msg, conv, btn) {
  btn.disabled = true;
  try {
    const updated = await api(`/conversations/${conv.id}/messages/${msg.id}/retry`, { method: "POST" });
    upsertMessage(updated);
  } catch (e) {
    toast(e.message, "error");
    btn.disabled = false;
  }
}

const rendered = new Map(); // message id -> {msg, last, el}, for the open conversation

/** Keep the thread at its newest message while things change height after it was drawn: the
 * composer and its notices (quiet hours, a closed window) come after the messages, a live update
 * may add or remove one, an email's frame or an image grows once loaded. Without this the newest
 * messages ended up hidden below the composer. Scrolled up to read, the agent stays where they
 * are. Whether the thread is "at its newest" is decided when it is scrolled (by the agent, or
 * by renderMessages through placed()), never from a layout that already changed. */
function keepNewestInView(log) {
  let pinned = true;
  let ours = null; // the scrollTop this code set: its scroll event says nothing of the agent
  const atEnd = () => log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  log.addEventListener("scroll", () => { if (log.scrollTop !== ours) pinned = atEnd(); }, { passive: true });
  const sizes = new ResizeObserver(() => {
    if (!pinned) return;
    log.scrollTop = log.scrollHeight;
    ours = log.scrollTop;
  });
  return {
    watch(els) {
      sizes.disconnect();
      sizes.observe(log);
      for (const el of els) sizes.observe(el);
    },
    placed() { pinned = atEnd(); ours = log.scrollTop; },
    atEnd,
  };
}
let sticky = null;

/** Render all messages, grouped by day. */
export function renderMessages({ keepScroll = false } = {}) {
  const log = document.getElementById("thread-log");
  const conv = T.conv;
  sticky ||= keepNewestInView(log);
  if (rendered.convId !== conv.id) { rendered.clear(); rendered.convId = conv.id; }
  const atBottom = sticky.atEnd();
  const prevHeight = log.scrollHeight;
  const parts = [];
  if (T.hasMore) parts.push(h("div.load-earlier", h("button.btn.sm", { type: "button", onclick: loadEarlier }, t("Load earlier messages"))));
  let day = null;
  const lastOut = [...T.messages].reverse().find((m) => m.direction === "outbound");
  for (const msg of T.messages) {
    const d = new Date(sentAt(msg)).toDateString();
    if (d !== day) {
      day = d;
      parts.push(h("div.day-sep", { role: "separator" }, h("span", dayLabel(sentAt(msg)))));
    }
    const last = msg === lastOut;
    const cached = rendered.get(msg.id);
    // reuse unchanged messages: email frames must not reload on every live event
    if (cached && cached.msg === msg && cached.last === last) parts.push(cached.el);
    else {
      const el = messageEl(msg, conv, { last });
      rendered.set(msg.id, { msg, last, el });
      parts.push(el);
    }
  }
  if (!T.messages.length) parts.push(h("div.thread-empty.muted", t("No messages yet")));
  log.replaceChildren(...parts);
  sticky.watch(parts);
  if (keepScroll) log.scrollTop = log.scrollHeight - prevHeight;
  else if (atBottom || !log.dataset.ready) log.scrollTop = log.scrollHeight;
  sticky.placed();
  log.dataset.ready = "1";
}

export async function loadEarlier() {
  const first = T.messages[0];
  if (!first) return;
  const conv = T.conv;
  const page = await api(`/conversations/${conv.id}/messages?before=${first.id}&limit=50`);
  if (T.id !== conv.id) return;
  T.messages = [...page.items, ...T.messages];
  T.hasMore = page.has_more;
  renderMessages({ keepScroll: true });
}

/** Add or replace a message (matched by id, or by client_id for our own optimistic sends). */
export function upsertMessage(msg) {
  if (!T.conv || msg.conversation_id !== T.conv.id) return false;
  let i = T.messages.findIndex((m) => m.id === msg.id || (msg.client_id && m.client_id === msg.client_id));
  if (i >= 0) {
    const old = T.messages[i];
    // never let a late event downgrade a status
    const rank = { sending: -1, queued: 0, sent: 1, delivered: 2, read: 3 };
    if (old.id === msg.id && rank[old.status] > rank[msg.status] && msg.status !== "failed") msg = { ...msg, status: old.status };
    T.messages[i] = msg;
  } else {
    T.messages.push(msg);
    T.messages.sort((a, b) => (a.id < 0 ? 1e15 : a.id) - (b.id < 0 ? 1e15 : b.id));
    i = -1;
  }
  renderMessages();
  return i < 0;
}

export function removeMessage(clientId) {
  T.messages = T.messages.filter((m) => m.client_id !== clientId || m.id > 0);
  renderMessages();
}

// ------------------------------------------------------------------ contact panel (contact.js)

export { renderContact };
