// The composer: reply or private note, the window banner, SMS counter, canned replies,
// the sensitive-data warning and the "new activity" guard before sending.

import { ME, api, caps, dialog, duration, h, icon, relTime, serverNow, t, throttle, timeOfDay, toast, debounce } from "./core.js";
import { emit } from "./shell.js";
import { S, firstName, liveWindow, remember, ruleName } from "./state.js";
import { T, changed, messageEl, removeMessage, upsertMessage } from "./thread.js";
import { acceptFiles, fileTray } from "./attachments.js";
import { attachMentions } from "./mentions.js";

const KEPT = "switchboard.drafts"; // what is being written survives a reload of this tab
const drafts = new Map(JSON.parse(sessionStorage.getItem(KEPT) || "[]")); // conversation id -> {mode, text}
sessionStorage.removeItem(KEPT);
window.addEventListener("pagehide", () => sessionStorage.setItem(KEPT, JSON.stringify(
  [...drafts].filter(([, d]) => d.text.trim()).map(([id, d]) => [id, { mode: d.mode, text: d.text }]))));
const canned = new Map(); // inbox id -> Promise<list>
let segmentsEndpoint = true; // false once the server says it has no segment counter

// ------------------------------------------------------------------ SMS segments

const GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXT = "^{}\\[~]|€\f";

/** Encoding and segments of an SMS, computed here so the counter never waits for the network. */
export function smsInfo(text) {
  let units = 0;
  let gsm = true;
  let offender = null;
  for (const ch of text) {
    if (GSM.includes(ch)) units += 1;
    else if (GSM_EXT.includes(ch)) units += 2;
    else { gsm = false; offender = offender || ch; }
  }
  if (!gsm) units = text.length; // UTF-16 code units
  const single = gsm ? 160 : 70;
  const multi = gsm ? 153 : 67;
  const segments = units === 0 ? 0 : units <= single ? 1 : Math.ceil(units / multi);
  const per = segments <= 1 ? single : multi;
  return { encoding: gsm ? "GSM-7" : "UCS-2", units, segments, per_segment: per,
    remaining: Math.max(0, Math.max(segments, 1) * per - units), offender };
}

const askServer = debounce(async (text, render) => {
  if (!segmentsEndpoint || !text) return;
  try {
    const info = await api("/sms/segments", { method: "POST", body: { body: text } });
    if (info && typeof info.segments === "number") render({ ...smsInfo(text), ...info });
  } catch (e) {
    if (e.status === 404 || e.status === 405) segmentsEndpoint = false;
  }
}, 250);

function renderCounter(el, info) {
  if (!info.units) { el.replaceChildren(); return; }
  const ucs = /ucs|unicode|utf/i.test(info.encoding);
  el.className = "sms-counter" + (info.segments > 3 ? " warn" : "");
  el.replaceChildren(
    h("span", { title: t("Characters left in this SMS") }, `${info.remaining}`),
    h("span.dot-sep", "·"),
    h("span", t("{n} SMS", { n: info.segments })),
    h("span.dot-sep", "·"),
    h("span.enc" + (ucs ? ".ucs" : ""), { title: ucs ? t("Unicode: 70 characters per SMS (67 when split)") : t("GSM-7: 160 characters per SMS (153 when split)") },
      ucs ? t("Unicode") : "GSM-7"),
  );
  const offender = info.offender || (info.ucs2_chars || [])[0];
  if (ucs && offender) {
    el.append(h("span.enc-hint", t("“{char}” switches this text to Unicode", { char: offender })));
  }
}

// ------------------------------------------------------------------ the rules banner

/** What the composer must say (and lock) for this conversation right now. */
export function composerState(conv) {
  const inbox = S.inboxes.get(conv.inbox.id);
  const humanAgentOn = !!(inbox && inbox.settings && inbox.settings.human_agent);
  const name = conv.contact.name;
  if (conv.opted_out) {
    return { level: "red", lock: true, icon: "lock",
      text: t("{name} opted out of texts from this number (they replied STOP). Replies are locked until they text START.", { name }) };
  }
  if (conv.undeliverable) {
    return { level: "red", lock: true, icon: "lock",
      text: t("Messages to this customer cannot be delivered: {reason}", { reason: conv.undeliverable }) };
  }
  const w = liveWindow(conv.reply_window);
  const humanAgentS = (caps(conv).window || {}).human_agent_s; // a longer window for human replies
  if (w.state === "closed") {
    const since = conv.last_inbound_at ? (serverNow() - Date.parse(conv.last_inbound_at)) / 1000 : null;
    let extra = t("Replies are locked until the customer writes again. You can still leave a private note for your team.");
    if (humanAgentS && !humanAgentOn && since !== null && since < humanAgentS) {
      extra = t("A human agent may still reply for {left} with the 7-day human agent rule if your Page is approved for it: an admin can turn it on in the inbox settings. Until then, leave a private note.",
        { left: duration(humanAgentS - since) });
    }
    return { level: "red", lock: true, icon: "lock",
      // the window that ended last: the human agent one where the inbox has it
      text: t("The {rule} closed {ago}.", { rule: ruleName(conv, humanAgentS && humanAgentOn ? "human_agent" : "open"), ago: conv.reply_window.expires_at ? relTime(conv.reply_window.expires_at) : "" }) + " " + extra };
  }
  if (w.state === "human_agent") {
    return { level: w.seconds < 7200 ? "amber" : "violet", icon: "timer", timer: true,
      text: t("The 24-hour window has closed. You can reply for {left} more under the Messenger 7-day human agent rule (sent with the HUMAN_AGENT tag).", { left: duration(w.seconds) }) };
  }
  if (w.state === "open") {
    let text = t("{rule}: {left} left to reply.", { rule: ruleName(conv, "open"), left: duration(w.seconds) });
    if (humanAgentS && humanAgentOn) text += " " + t("After that, a human agent can still reply for up to 7 days.");
    return { level: w.seconds < 7200 ? "amber" : "calm", icon: "timer", text, timer: true };
  }
  const quiet = conv.quiet_hours;
  if (quiet && (quiet.active || quiet.quiet)) {
    const ends = quiet.ends_at;
    const tz = quiet.timezone || "";
    if (quiet.grace_until && Date.parse(quiet.grace_until) > serverNow()) {
      return { level: "calm", icon: "moon",
        text: t("It is quiet hours for this customer ({tz}).", { tz }) + " " + t("They wrote less than an hour ago, so you can still reply until {time}.", { time: timeOfDay(quiet.grace_until) }) };
    }
    return { level: "amber", icon: "moon", quiet: ends, timezone: quiet.timezone,
      text: t("It is quiet hours for this customer ({tz}).", { tz }) + (ends ? " " + t("Replies sent now will be held; you can schedule yours for {time} their time.", { time: timeOfDay(ends, quiet.timezone) }) : "") };
  }
  return null;
}

// ------------------------------------------------------------------ canned replies

function cannedFor(inboxId) {
  if (!canned.has(inboxId)) canned.set(inboxId, api(`/canned-replies?inbox_id=${inboxId}`).then((d) => d.items).catch(() => []));
  return canned.get(inboxId);
}

export function fillVariables(body, conv) {
  const vars = {
    "contact.name": conv.contact.name,
    "contact.first_name": firstName(conv.contact.name),
    "agent.name": ME.name,
    "agent.first_name": ME.name.split(/\s+/)[0],
    "inbox.name": conv.inbox.name,
  };
  return body.replace(/( ?)\{\{\s*([\w.]+)\s*\}\}/g, (m, sp, key) => (key in vars ? (vars[key] ? sp + vars[key] : "") : m));
}

// ------------------------------------------------------------------ sensitive data

const SENSITIVE = [
  /\b(card|credit card|debit card)\s*(number|no\.?|details)|\bcvv\b|\bcvc\b|security code|expiry date/i,
  /\bpass(word|code)s?\b|\bpin\b|one[- ]time code|verification code/i,
  /\b(passport|driver'?s licen[cs]e|id card|identity card|social security|ssn|national id)\b/i,
  /num[ée]ro de (la )?carte|carte bancaire|cryptogramme|mot de passe|code secret|pi[èe]ce d'identit[ée]|carte d'identit[ée]|passeport/i,
  /n[úu]mero do cart[ãa]o|cart[ãa]o de cr[ée]dito|\bsenha\b|documento de identidade|\bcpf\b|\brg\b|passaporte|c[óo]digo de seguran[çc]a/i,
  /رقم (ال)?بطاق|بطاقة (ال)?ائتمان|كلمة (ال)?(مرور|سر)|الرقم السري|جواز (ال)?سفر|بطاقة (ال)?هوية|رمز التحقق/,
  /شماره\s?(ی\s)?کارت|رمز\s?(عبور|کارت|دوم)|گذرواژه|کلمه\s?(ی\s)?عبور|گذرنامه|کارت ملی|پاسپورت|کد ملی/,
];

export function asksForSensitiveData(text) {
  return SENSITIVE.some((re) => re.test(text));
}

// ------------------------------------------------------------------ the composer

let els = null;
let convId = null; // the conversation the composer is for

/** That conversation as it stands now: the copy live events keep up to date (state.js). */
function current() {
  return convId === null ? null : S.convs.get(convId) || null;
}

function draft(convId) {
  if (!drafts.has(convId)) drafts.set(convId, { mode: "reply", text: "" });
  return drafts.get(convId);
}

// throttled: a late call (up to 3 s after the last key) is dropped once the reply is sent or
// the text cleared, or it would show the agent "replying" again after they sent it
const sendTyping = throttle((id) => {
  if (els && id === convId && els.text.value.trim()) emit("typing", { conversation_id: id });
}, 3000);
let presenceState = "viewing";
function setPresence(state) {
  if (convId === null || presenceState === state) return;
  presenceState = state;
  emit("presence", { conversation_id: convId, state });
}

/** Draw the composer for `conv`; what it shows afterwards follows that conversation's live copy. */
export function renderComposer(conv) {
  const root = document.getElementById("composer");
  const d = draft(conv.id);
  convId = conv.id;
  if (!S.convs.has(conv.id)) remember(conv);
  presenceState = "viewing";
  const text = h("textarea#composer-text", {
    dir: "auto", rows: 3, spellcheck: "true", lang: ME.locale || document.documentElement.lang,
    "aria-label": t("Message"), autocomplete: "off",
  });
  text.value = d.text;
  const banner = h("div.composer-banner", { "aria-live": "polite" });
  const guard = h("div.guard-notice", { hidden: true, role: "status" });
  const counter = h("span.sms-counter", { "aria-live": "polite" });
  const cannedPop = h("div.canned-pop", { hidden: true, role: "listbox", "aria-label": t("Canned replies") });
  const tabReply = h("button.ctab", { type: "button", dataset: { mode: "reply" } }, icon("reply"), t("Reply"));
  const tabNote = h("button.ctab", { type: "button", dataset: { mode: "note" } }, icon("note"), t("Private note"));
  const sendBtn = h("button.btn.primary.send-btn", { type: "submit" }, h("span.send-label"), icon("send", "flip"));
  const lockBox = h("div.locked-box", { hidden: true });
  const fileNotice = h("div.att-notice", { hidden: true, role: "alert" });
  const notifyFiles = (why) => { fileNotice.hidden = !why; fileNotice.replaceChildren(...(why ? [icon("alert"), h("span", why)] : [])); };
  const tray = fileTray(conv, d, { mode: () => d.mode, notify: notifyFiles, onChange: () => {} });
  const form = h("form.composer-form", { "aria-label": t("Reply") },
    banner, guard,
    h("div.composer-box",
      h("div.composer-tabs", { role: "group", "aria-label": t("Message type") }, tabReply, tabNote),
      lockBox, text, tray.chips, fileNotice, cannedPop,
      h("div.composer-foot",
        tray.button, tray.input,
        h("span.composer-hint.muted", h("kbd", "/"), " ", t("canned replies")),
        counter,
        h("span.grow"),
        h("span.send-hint.muted", h("kbd", navigator.platform.includes("Mac") ? "⌘" : "Ctrl"), "+", h("kbd", "Enter")),
        sendBtn)));
  root.replaceChildren(form);
  els = { root, form, text, banner, guard, counter, cannedPop, tabReply, tabNote, sendBtn, lockBox };
  acceptFiles(form, text, tray, () => !(d.mode === "reply" && composerState(current())?.lock));
  attachMentions(form, text, { enabled: () => d.mode === "note", inboxId: () => conv.inbox.id });

  const autosize = () => {
    text.style.height = "auto";
    text.style.height = Math.min(text.scrollHeight + 2, Math.round(window.innerHeight * 0.4)) + "px";
  };
  const refreshCounter = () => {
    if (!caps(conv).segments || draft(conv.id).mode !== "reply") { counter.replaceChildren(); return; }
    const info = smsInfo(text.value);
    renderCounter(counter, info);
    askServer(text.value, (server) => { if (text.value && els && els.counter === counter) renderCounter(counter, { ...server, offender: info.offender }); });
  };
  const setMode = (mode, focus) => {
    d.mode = mode;
    form.dataset.mode = mode;
    tabReply.setAttribute("aria-pressed", mode === "reply" ? "true" : "false");
    tabNote.setAttribute("aria-pressed", mode === "note" ? "true" : "false");
    refreshState();
    refreshCounter();
    tray.recheck();
    if (focus && !text.disabled) text.focus();
  };
  tabReply.addEventListener("click", () => setMode("reply", true));
  tabNote.addEventListener("click", () => setMode("note", true));

  text.addEventListener("input", () => {
    d.text = text.value;
    autosize();
    refreshCounter();
    cannedLookup();
    if (d.mode === "reply" && text.value.trim()) { sendTyping(conv.id); setPresence("replying"); }
    if (!text.value.trim()) setPresence("viewing");
  });
  text.addEventListener("blur", () => { if (!text.value.trim()) setPresence("viewing"); });
  text.addEventListener("keydown", (e) => {
    if (!cannedPop.hidden && cannedKeys(e)) return;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); }
    else if (e.key === "Escape") { e.preventDefault(); text.blur(); }
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });

  // canned replies ------------------------------------------------------------
  let matches = [];
  let active = 0;
  const slashQuery = () => {
    const upto = text.value.slice(0, text.selectionStart);
    const m = /(^|\s)\/([^\s/]*)$/.exec(upto);
    return m ? { query: m[2].toLowerCase(), start: upto.length - m[2].length - 1 } : null;
  };
  const cannedLookup = async () => {
    const sq = slashQuery();
    if (!sq) { cannedPop.hidden = true; return; }
    const list = await cannedFor(conv.inbox.id);
    matches = list.filter((c) => c.shortcut.toLowerCase().includes(sq.query) || c.title.toLowerCase().includes(sq.query)).slice(0, 8);
    active = 0;
    drawCanned(list.length);
  };
  const drawCanned = (total) => {
    cannedPop.hidden = false;
    if (!matches.length) {
      cannedPop.replaceChildren(h("div.canned-empty.muted", total ? t("No canned reply matches") : t("No canned replies yet. Team leads add them under Settings.")));
      return;
    }
    cannedPop.replaceChildren(...matches.map((c, i) => h("div.canned-item" + (i === active ? ".active" : ""), {
      role: "option", id: "canned-" + c.id, "aria-selected": i === active ? "true" : "false",
      onmousedown: (e) => { e.preventDefault(); insertCanned(c); },
    }, h("span.canned-short", "/" + c.shortcut), h("span.canned-title", c.title), h("span.canned-body.muted", { dir: "auto" }, fillVariables(c.body, current() || conv)))));
    text.setAttribute("aria-activedescendant", "canned-" + matches[active].id);
  };
  const insertCanned = (c) => {
    const sq = slashQuery();
    if (!sq) return;
    const body = fillVariables(c.body, current() || conv);
    const before = text.value.slice(0, sq.start);
    const after = text.value.slice(text.selectionStart);
    text.value = before + body + after;
    const caret = (before + body).length;
    text.setSelectionRange(caret, caret);
    cannedPop.hidden = true;
    text.removeAttribute("aria-activedescendant");
    text.dispatchEvent(new Event("input"));
  };
  const cannedKeys = (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (matches.length) active = (active + (e.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
      drawCanned(1);
      return true;
    }
    if ((e.key === "Enter" && !e.ctrlKey && !e.metaKey) || e.key === "Tab") {
      if (matches.length) { e.preventDefault(); insertCanned(matches[active]); return true; }
    }
    if (e.key === "Escape") { e.preventDefault(); cannedPop.hidden = true; return true; }
    return false;
  };

  // state ------------------------------------------------------------------
  const refreshState = () => {
    const now = current();
    if (!now) return;
    const st = composerState(now);
    text.placeholder = d.mode === "note" ? t("Write a private note — only your team sees it") : t("Write a reply to {name}…", { name: "\u2068" + now.contact.name + "\u2069" });
    const locked = !!(st && st.lock) && d.mode === "reply";
    banner.replaceChildren();
    banner.className = "composer-banner" + (st ? " " + st.level : "");
    banner.hidden = !st;
    if (st) {
      banner.append(icon(st.icon), h("span.banner-text", st.text));
      if (st.lock && d.mode === "reply") banner.append(h("button.btn.sm", { type: "button", onclick: () => setMode("note", true) }, icon("note"), t("Write a private note")));
      if (st.quiet && d.mode === "reply") {
        banner.append(h("button.btn.sm", { type: "button", onclick: () => submit({ sendAfter: st.quiet }) },
          icon("clock"), t("Send at {time} their time", { time: timeOfDay(st.quiet, st.timezone) })));
      }
    }
    text.disabled = locked;
    tray.setDisabled(locked);
    lockBox.hidden = !locked;
    if (locked) lockBox.replaceChildren(icon("lock"), h("span", t("Replying is locked for this conversation.")));
    sendBtn.disabled = locked;
    sendBtn.querySelector(".send-label").textContent = d.mode === "note" ? t("Add note") : t("Send");
    form.classList.toggle("locked", locked);
  };
  els.refreshState = refreshState;
  els.setMode = setMode;
  setMode(d.mode, false);
  autosize();

  // sending ------------------------------------------------------------------
  const submit = async ({ sendAfter = null, force = false, body = null } = {}) => {
    const value = body ?? text.value;
    if (!value.trim() && !tray.count()) { text.focus(); return; }
    if (tray.busy()) { toast(t("Wait until the files are uploaded."), "info"); return; }
    const priv = d.mode === "note";
    if (!priv && composerState(current())?.lock) return;
    if (!priv && tray.recheck()) return; // a file the channel refuses: the reason is shown
    if (!force && !priv) {
      const fresh = unseen();
      if (fresh.length) {
        const ok = await reviewDialog(fresh);
        if (!ok) return;
        force = true;
      }
      if (!sendAfter && asksForSensitiveData(value)) {
        const ok = await dialog({
          title: t("Send a message that asks for private data?"),
          body: h("div", h("p", t("This message seems to ask for a card number, a password or an identity document.")),
            h("p.muted", t("Never ask customers for these in chat: Google and Meta forbid it and customers get phished this way. Point them to a secure page instead."))),
          buttons: [{ label: t("Edit message"), value: false, kind: "primary", autofocus: true }, { label: t("Send anyway"), value: true, kind: "danger" }],
        });
        if (!ok) { text.focus(); return; }
      }
    }
    const clientId = "c" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    const convAtSend = current();
    const optimistic = {
      id: -Date.now(), conversation_id: convAtSend.id, direction: priv ? "note" : "outbound", body: value, html: null,
      sender: { type: "user", id: ME.id, name: ME.name }, status: priv ? "received" : "sending", error: null,
      attachments: tray.shown(), meta: {}, client_id: clientId, created_at: new Date(serverNow()).toISOString(), send_after: sendAfter,
    };
    upsertMessage(optimistic);
    const files = tray.take();
    text.value = "";
    d.text = "";
    autosize();
    refreshCounter();
    setPresence("viewing");
    const payload = { body: value, private: priv, client_id: clientId, seen_message_id: T.seenId };
    if (force) payload.force = true;
    if (sendAfter) payload.send_after = sendAfter;
    if (files.length) payload.attachment_ids = files.map((f) => f.id);
    try {
      const msg = await api(`/conversations/${convAtSend.id}/messages`, { method: "POST", body: payload });
      upsertMessage(msg);
      tray.release(files);
      if (sendAfter) toast(t("Reply scheduled for {time} their time", { time: timeOfDay(sendAfter, composerState(convAtSend)?.timezone) }), "success");
    } catch (e) {
      removeMessage(clientId);
      tray.restore(files);
      if (convId === convAtSend.id && !text.value) { text.value = value; d.text = value; autosize(); refreshCounter(); }
      await refused(e, convAtSend, value);
    }
  };
  els.submit = submit;

  const refused = async (e, conv0, value) => {
    const det = e.details || {};
    if (e.code === "new_activity") {
      for (const m of det.messages || []) upsertMessage(m);
      const ok = await reviewDialog(det.messages || []);
      if (ok) submit({ force: true, body: value }).then(() => { if (text.value === value) { text.value = ""; d.text = ""; autosize(); } });
      return;
    }
    if (e.code === "quiet_hours" && det.send_after) {
      const ok = await dialog({
        title: t("Quiet hours for this customer"),
        body: h("p", t("It is quiet hours for this customer ({tz}). Nobody wants a business text at night.", { tz: det.timezone || "" })),
        buttons: [{ label: t("Cancel"), value: false }, { label: t("Send at {time} their time", { time: timeOfDay(det.send_after, det.timezone) }), value: true, kind: "primary", autofocus: true }],
      });
      if (ok) {
        text.value = "";
        d.text = "";
        await submit({ sendAfter: det.send_after, body: value });
      }
      return;
    }
    if (e.code === "attachment_refused") { notifyFiles(e.message); return; }
    if (["window_closed", "opted_out", "undeliverable"].includes(e.code)) {
      try { changed(await api(`/conversations/${conv0.id}`)); } catch { /* keep what we have */ }
      showGuardText(e.message, "red");
      return;
    }
    toast(e.message || t("The message could not be sent."), "error");
  };
}

function showGuardText(message, level) {
  if (!els) return;
  els.guard.hidden = false;
  els.guard.className = "guard-notice " + (level || "");
  els.guard.replaceChildren(icon("alert"), h("span", message),
    h("button.icon-btn.sm", { type: "button", "aria-label": t("Dismiss"), onclick: () => { els.guard.hidden = true; } }, icon("x")));
}

/** Customer messages and teammates' replies newer than what the agent has looked at. */
export function unseen() {
  return T.messages.filter((m) => m.id > T.seenId && (m.direction === "inbound"
    || (m.direction === "outbound" && !m.automated && (!m.sender || m.sender.id !== ME.id))));
}

export function markSeen() {
  const ids = T.messages.filter((m) => m.id > 0).map((m) => m.id);
  T.seenId = ids.length ? Math.max(...ids) : 0;
  if (els) els.guard.hidden = true;
}

async function reviewDialog(messages) {
  const conv = T.conv;
  const inbound = messages.some((m) => m.direction === "inbound");
  const ok = await dialog({
    title: inbound ? t("{name} wrote again", { name: conv.contact.name }) : t("A teammate replied"),
    body: h("div.review",
      h("p", t("New activity arrived since you last looked. Review it before sending, so your reply still fits.")),
      h("div.review-list", messages.map((m) => messageEl(m, conv)))),
    buttons: [{ label: t("Review first"), value: false, kind: "primary", autofocus: true }, { label: t("Send anyway"), value: true }],
    wide: true,
  });
  if (!ok) {
    const first = messages[0] && document.getElementById("m" + messages[0].id);
    first && first.scrollIntoView({ block: "center", behavior: "smooth" });
    first && first.classList.add("flash");
  }
  markSeen();
  return ok;
}

/** A message arrived live in the open thread: note it for the guard. */
export function onLiveMessage(msg) {
  if (!els || !T.conv || msg.conversation_id !== T.conv.id) return;
  const relevant = msg.direction === "inbound" || (msg.direction === "outbound" && !msg.automated && (!msg.sender || msg.sender.id !== ME.id));
  if (!relevant) return;
  const composing = els.text.value.trim().length > 0;
  if (!composing && document.visibilityState === "visible") {
    T.seenId = Math.max(T.seenId, msg.id);
    return;
  }
  const who = msg.direction === "inbound" ? T.conv.contact.name : msg.sender.name || t("A teammate");
  els.guard.hidden = false;
  els.guard.className = "guard-notice amber";
  els.guard.replaceChildren(icon("alert"),
    h("span", msg.direction === "inbound" ? t("{name} sent a new message while you were writing.", { name: who }) : t("{name} replied while you were writing.", { name: who })),
    h("button.btn.sm", { type: "button", onclick: () => {
      const el = document.getElementById("m" + msg.id);
      el && el.scrollIntoView({ block: "center", behavior: "smooth" });
      el && el.classList.add("flash");
      markSeen();
    } }, t("Show")));
}

export function refreshComposer() {
  if (els && els.refreshState) els.refreshState();
}

export function focusComposer(mode) {
  if (!els) return;
  els.setMode(mode, true);
}

export function composerBusy() {
  return !!(els && els.text && els.text.value.trim());
}

export function leaveComposer() {
  convId = null;
  els = null;
}
