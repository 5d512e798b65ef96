// The top bar on every signed-in page: live connection, user menu, notifications.

import { LANG, ME, api, dialog, h, icon, relTime, t, toast } from "./core.js";
import { bindSpokenLanguages } from "./languages.js";
import { askPermission, chime, desktopAllowed, desktopNotify, initAttention, prefs, savePrefs } from "./attention.js";

export { desktopNotify };

// ------------------------------------------------------------------ live connection

const listeners = {};
let everConnected = false;
let socket = null;

/** Subscribe to a live event ("message.created" ...) or to "reconnected"/"connected". */
export function on(name, fn) {
  (listeners[name] ||= []).push(fn);
}

function fire(name, payload) {
  for (const fn of listeners[name] || []) {
    try { fn(payload); } catch (e) { console.error(name, e); }
  }
}

export function emit(name, payload) {
  if (socket && socket.connected) socket.emit(name, payload);
}

const EVENTS = ["conversation.created", "conversation.updated", "message.created", "message.updated",
  "counts.updated", "presence.updated", "notification.created", "contact.typing", "inbox.updated",
  "contact.updated", "contact.merged", "labels.updated"];

const HEARTBEAT_MS = 30000;

// a full server refuses a new socket with 503 (MAX_SOCKETS): wait longer between tries, at
// random so that the refused browsers do not all come back at the same moment
const BUSY_DELAY_MS = [5000, 30000];
const USUAL_DELAY_MS = [1000, 5000];

function connect() {
  if (typeof window.io !== "function") return;
  socket = window.io({ reconnectionDelay: USUAL_DELAY_MS[0], reconnectionDelayMax: USUAL_DELAY_MS[1], randomizationFactor: 0.5 });
  window.switchboard = { socket }; // for the console and end-to-end tests
  const state = document.getElementById("conn-state");
  const busy = document.getElementById("conn-busy");
  let downTimer = null;
  const backOff = ([delay, max]) => {
    socket.io.reconnectionDelay(delay);
    socket.io.reconnectionDelayMax(max);
  };
  socket.on("connect", () => {
    clearTimeout(downTimer);
    if (state) state.hidden = true;
    if (busy) busy.hidden = true;
    backOff(USUAL_DELAY_MS);
    document.body.dataset.live = "on";
    fire("connected");
    if (everConnected) fire("reconnected");
    everConnected = true;
  });
  socket.on("disconnect", () => {
    document.body.dataset.live = "off";
    // brief blips (a server restart) do not deserve a banner
    downTimer = setTimeout(() => { if (state && (!busy || busy.hidden)) state.hidden = false; }, 1500);
  });
  socket.on("connect_error", (err) => {
    document.body.dataset.live = "off";
    const full = err && (err.description === 503 || (err.context && err.context.status === 503));
    if (full) {
      // the server holds all the live connections it may: say so quietly and try again later
      backOff(BUSY_DELAY_MS);
      document.body.dataset.live = "busy";
      if (busy) busy.hidden = false;
      if (state) state.hidden = true;
      return;
    }
    if (busy) busy.hidden = true;
    if (state && everConnected) state.hidden = false;
  });
  for (const name of EVENTS) socket.on(name, (payload) => fire(name, payload));
  // live presence: automatic assignment only considers agents whose browser is open
  setInterval(() => { if (socket.connected) socket.emit("heartbeat"); }, HEARTBEAT_MS);
}

// ------------------------------------------------------------------ menus

/** Toggle a popover menu anchored to `button`; closes on outside click and Escape. */
export function popover(button, panel, { onOpen } = {}) {
  const close = () => {
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
    document.removeEventListener("pointerdown", outside, true);
    document.removeEventListener("keydown", esc, true);
  };
  const outside = (e) => { if (!panel.contains(e.target) && !button.contains(e.target)) close(); };
  const esc = (e) => { if (e.key === "Escape") { e.stopPropagation(); close(); button.focus(); } };
  const open = () => {
    panel.hidden = false;
    button.setAttribute("aria-expanded", "true");
    document.addEventListener("pointerdown", outside, true);
    document.addEventListener("keydown", esc, true);
    onOpen && onOpen();
    const first = panel.querySelector("input:checked, [autofocus], button, input, select, a[href]");
    first && first.focus();
  };
  button.setAttribute("aria-expanded", "false");
  button.addEventListener("click", () => (panel.hidden ? open() : close()));
  return { open, close, get isOpen() { return !panel.hidden; } };
}

function userMenu() {
  const btn = document.getElementById("user-btn");
  const panel = document.getElementById("user-menu");
  if (!btn || !panel) return;
  popover(btn, panel);
  panel.querySelectorAll('input[name="availability"]').forEach((input) => {
    input.addEventListener("change", async () => {
      try {
        await api("/me", { method: "PATCH", body: { availability: input.value } });
        ME.availability = input.value;
        btn.querySelector(".presence-dot").className = "presence-dot " + input.value;
        document.getElementById("user-availability").textContent = input.parentElement.textContent.trim();
      } catch (e) { toast(e.message, "error"); }
    });
  });
  const lang = document.getElementById("lang-select");
  lang && lang.addEventListener("change", async () => {
    try {
      await api("/me", { method: "PATCH", body: { locale: lang.value } });
      // load the page again in the new language: same place, same open conversation
      // (replace() to the same URL plus a #hash would only scroll, never reload)
      const url = new URL(location.href);
      url.searchParams.delete("lang");
      if (url.href === location.href) location.reload(); else location.replace(url);
    } catch (e) { toast(e.message, "error"); }
  });
}

// ------------------------------------------------------------------ notifications

// `iso` keeps a name's direction apart from the sentence's: a <bdi> on the page, FSI...PDI on the desktop
const KIND_TEXT = {
  assigned: (n, iso) => t("{who} assigned a conversation to you", { who: iso(n.data.by || t("Someone")) }),
  new_conversation: () => t("A new conversation arrived in your inboxes"),
  window_closing: () => t("A reply window is closing soon"),
  response_due_soon: () => t("A response target is near"),
  response_overdue: () => t("A reply is overdue"),
  follow_up: () => t("A customer has not answered since your reply"),
  returned_to_queue: () => t("Your conversation went back to the queue while you were away"),
  mention: (n, iso) => t("{who} mentioned you", { who: iso(n.data.by || t("Someone")) }),
  inbox_failing: (n, iso) => t("{inbox} stopped working", { inbox: iso(n.data.inbox_name || t("An inbox")) }),
  inbox_recovered: (n, iso) => t("{inbox} works again", { inbox: iso(n.data.inbox_name || t("An inbox")) }),
  client_secret_expiring: (n) => t("The {provider} sign-in app's client secret expires on {date}",
    { provider: n.data.provider || "", date: n.data.expires || "" }),
};

/** Where a notification leads: its conversation, or the page it names (an inbox's). */
const notificationHref = (n) => (n.conversation_id
  ? "/#c=" + n.conversation_id + (n.data && n.data.message_id ? "&m=" + n.data.message_id : "")
  : (n.data && n.data.url) || "#");
const KIND_ICON = { assigned: "user", mention: "note", inbox_failing: "alert", client_secret_expiring: "alert" };

/** The server writes a detailed English text (names between FSI and PDI); other languages
 * get the translated kind. On the page each isolated name becomes a <bdi>. */
const plainIsolate = (s) => "\u2068" + s + "\u2069";
function notificationText(n, iso = plainIsolate) {
  const data = n.data || {};
  if (data.text && (LANG.startsWith("en") || !KIND_TEXT[n.kind])) {
    const parts = data.text.split(/\u2068([^\u2069]*)\u2069/);
    return iso === plainIsolate ? data.text : parts.map((p, i) => (i % 2 ? iso(p) : p));
  }
  const fn = KIND_TEXT[n.kind];
  return fn ? fn({ ...n, data }, iso) : data.message || n.kind.replace(/_/g, " ");
}

function bell() {
  const btn = document.getElementById("bell");
  const panel = document.getElementById("bell-panel");
  if (!btn || !panel) return;
  const list = panel.querySelector(".notif-list");
  const badge = btn.querySelector(".badge");
  let items = [];
  const render = () => {
    const unread = items.filter((n) => !n.read_at).length;
    badge.hidden = !unread;
    badge.textContent = unread > 99 ? "99+" : String(unread);
    btn.setAttribute("aria-label", unread ? t("Notifications ({n} unread)", { n: unread }) : t("Notifications"));
    list.replaceChildren(...(items.length ? items.slice(0, 30).map((n) =>
      h("li", h("a.notif" + (n.read_at ? "" : ".unread"), {
        href: notificationHref(n),
        onclick: () => { markRead([n.id]); pop.close(); },
      }, icon(KIND_ICON[n.kind] || "bell"), h("span.notif-text", notificationText(n, (s) => h("bdi", s))),
      h("time.muted", { datetime: n.created_at }, relTime(n.created_at))))) : [h("li.empty", t("You're all caught up."))]));
  };
  const load = async () => {
    try { items = (await api("/notifications")).items; render(); } catch { /* offline */ }
  };
  const markRead = async (ids) => {
    items.forEach((n) => { if (!ids || ids.includes(n.id)) n.read_at ||= new Date().toISOString(); });
    render();
    try { await api("/notifications/read", { method: "POST", body: ids ? { ids } : {} }); } catch { /* retry later */ }
  };
  const pop = popover(btn, panel, { onOpen: load });
  panel.querySelector("#notif-read-all").addEventListener("click", () => markRead(null));

  const desktop = panel.querySelector("#notif-desktop");
  const sound = panel.querySelector("#notif-sound");
  const showPrefs = () => { desktop.checked = desktopAllowed(); sound.checked = prefs.sound; };
  showPrefs();
  document.addEventListener("notify-prefs", showPrefs);
  desktop.addEventListener("change", async () => {
    if (desktop.checked) desktop.checked = await askPermission();
    else { prefs.desktop = false; savePrefs(); }
  });
  sound.addEventListener("change", () => { prefs.sound = sound.checked; savePrefs(); if (sound.checked) chime(true); });

  on("notification.created", (n) => {
    items.unshift(n);
    render();
    if (n.desktop === false) return; // the user wants this kind in the bell only
    desktopNotify("Switchboard", notificationText(n), { tag: n.conversation_id ? "c" + n.conversation_id : "n" + n.id,
      onclick: () => { if (notificationHref(n) !== "#") location.href = notificationHref(n); } });
  });
  on("reconnected", load);
  load();
}

// ------------------------------------------------------------------ keyboard help

/** On a non-Latin layout (Arabic, Persian...), what the key of a letter shortcut types there. */
async function layoutKeys() {
  try {
    const map = await navigator.keyboard?.getLayoutMap();
    return (key) => {
      const typed = map && /^[a-z/]$/.test(key) && map.get(key === "/" ? "Slash" : "Key" + key.toUpperCase());
      return typed && typed > "~" ? typed : null;
    };
  } catch { return () => null; } // not offered (other browsers, an iframe)
}

export async function showShortcuts() {
  const local = await layoutKeys();
  const rows = [
    ["j / k", t("Next / previous conversation")],
    ["Enter", t("Open the selected conversation")],
    ["r", t("Reply")],
    ["n", t("Private note")],
    ["e", t("Close (or reopen) the conversation")],
    ["a", t("Assign")],
    ["s", t("Snooze")],
    ["l", t("Labels")],
    ["/", t("Search")],
    ["Ctrl/⌘ + Enter", t("Send")],
    ["Esc", t("Leave the composer or close a menu")],
    ["?", t("Show keyboard shortcuts")],
  ];
  dialog({
    title: t("Keyboard shortcuts"),
    body: h("dl.shortcuts", rows.map(([k, v]) => [h("dt", k.split(" / ").map((part, i) =>
      [i ? " / " : "", ...part.split(" + ").map((key, j) => [j ? " + " : "", h("kbd", key),
        local(key) ? h("kbd.layout-key", { title: t("The same key on your keyboard layout") }, local(key)) : null])])), h("dd", v)])),
    buttons: [{ label: t("Close"), value: true, kind: "primary" }],
  });
}

export function initShell() {
  connect();
  userMenu();
  bindSpokenLanguages();
  bell();
  initAttention(on);
  document.querySelectorAll("#menu-shortcuts, [data-show-shortcuts]").forEach((el) => el.addEventListener("click", () => {
    document.getElementById("user-menu").hidden = true;
    showShortcuts();
  }));
}

