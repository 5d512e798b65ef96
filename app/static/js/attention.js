// Getting the agent's attention: the unread count in the tab's title and icon, desktop
// notifications (on by default, asked for once), and a short chime when the tab is hidden.

import { api, h, t, throttle, toast } from "./core.js";

// ------------------------------------------------------------------ preferences

const PREFS_KEY = "switchboard.notify";
const ASKED_KEY = "switchboard.notify.asked";
/** Desktop notifications and the chime are on until the agent turns them off. */
export const prefs = Object.assign({ desktop: true, sound: true },
  JSON.parse(localStorage.getItem(PREFS_KEY) || "{}"));
export const savePrefs = () => localStorage.setItem(PREFS_KEY, JSON.stringify(prefs));

const canNotify = () => "Notification" in window;
export const desktopAllowed = () => prefs.desktop && canNotify() && Notification.permission === "granted";
const away = () => document.visibilityState !== "visible" || !document.hasFocus();

/** Ask the browser (from a click): true when desktop notifications may be shown. */
export async function askPermission() {
  if (!canNotify()) { toast(t("This browser cannot show desktop notifications."), "error"); return false; }
  const perm = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
  localStorage.setItem(ASKED_KEY, "1");
  if (perm !== "granted") toast(t("Desktop notifications are blocked in this browser's site settings."), "error");
  prefs.desktop = perm === "granted";
  savePrefs();
  document.dispatchEvent(new CustomEvent("notify-prefs"));
  return prefs.desktop;
}

// ------------------------------------------------------------------ sound

let audioCtx = null;
let lastChime = 0;
// browsers let a page play sound only after the person used it once: open the audio then
document.addEventListener("pointerdown", () => {
  try { audioCtx ||= new AudioContext(); audioCtx.resume(); } catch { /* no audio */ }
}, { once: true, capture: true });

/** A short, soft two-note chime made with WebAudio (no sound file to ship); `force` to preview. */
export function chime(force = false) {
  if (!force && (!prefs.sound || !away() || Date.now() - lastChime < 2000)) return;
  lastChime = Date.now();
  try {
    audioCtx ||= new AudioContext();
    const at = audioCtx.currentTime;
    [660, 880].forEach((freq, i) => {
      const osc = audioCtx.createOscillator();
      const gain = audioCtx.createGain();
      osc.frequency.value = freq;
      osc.type = "sine";
      gain.gain.setValueAtTime(0.0001, at + i * 0.12);
      gain.gain.exponentialRampToValueAtTime(0.12, at + i * 0.12 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + i * 0.12 + 0.35);
      osc.connect(gain).connect(audioCtx.destination);
      osc.start(at + i * 0.12);
      osc.stop(at + i * 0.12 + 0.4);
    });
  } catch { /* no audio */ }
}

/** A desktop notification (when allowed and the tab is not in front) plus the chime.
 *  One `tag` per conversation: a second notice about it replaces the first. */
export function desktopNotify(title, body, { tag, onclick } = {}) {
  chime();
  if (!desktopAllowed() || !away()) return;
  try {
    const n = new Notification(title, { body, tag, lang: document.documentElement.lang, dir: document.documentElement.dir || "auto" });
    n.onclick = () => { window.focus(); onclick && onclick(); n.close(); };
  } catch { /* some browsers need a service worker */ }
}

/** A bar under the top bar offering desktop notifications, until answered or dismissed. */
function permissionBar() {
  if (!canNotify() || Notification.permission !== "default" || !prefs.desktop || localStorage.getItem(ASKED_KEY)) return;
  const bar = h("div.notify-prompt", { role: "region", "aria-label": t("Desktop notifications") },
    h("span", t("Get a desktop notification and a sound when a conversation arrives for you.")),
    h("button.btn.sm.primary", { type: "button", onclick: async () => { bar.remove(); await askPermission(); } },
      t("Turn on desktop notifications")),
    h("button.icon-btn.sm", { type: "button", "aria-label": t("Not now"), title: t("Not now"),
      onclick: () => { localStorage.setItem(ASKED_KEY, "1"); bar.remove(); } }, "×"));
  document.querySelector(".topbar")?.after(bar);
}

// ------------------------------------------------------------------ unread count

const baseTitle = document.title;
const baseIcon = document.querySelector('link[rel="icon"]')?.href;
let shownUnread = 0;
let iconImage = null;

function setIcon(href, n) {
  const old = document.querySelector('link[rel="icon"]');
  const link = h("link", { rel: "icon", href, dataset: { unread: n } });
  old ? old.replaceWith(link) : document.head.append(link);
}

/** The favicon with a red badge holding `n`, drawn on a canvas from the page's own icon. */
function drawBadge(n) {
  if (!baseIcon) return;
  iconImage ||= Object.assign(new Image(), { src: baseIcon });
  const paint = () => {
    if (n !== shownUnread) return; // a newer count is on its way
    const size = 64;
    const canvas = Object.assign(document.createElement("canvas"), { width: size, height: size });
    const ctx = canvas.getContext("2d");
    ctx.drawImage(iconImage, 0, 0, size, size);
    const label = n > 99 ? "99+" : String(n);
    const r = label.length > 1 ? 22 : 19;
    ctx.fillStyle = "#e5484d";
    ctx.beginPath();
    ctx.arc(size - r, size - r, r, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = "#fff";
    ctx.font = `bold ${label.length > 2 ? 20 : label.length > 1 ? 26 : 32}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(label, size - r, size - r + 2);
    setIcon(canvas.toDataURL("image/png"), n);
  };
  if (iconImage.complete) paint(); else iconImage.addEventListener("load", paint, { once: true });
}

/** Show `n` unread conversations in the title ("(3) Inbox · Switchboard") and the icon. */
export function showUnread(n) {
  if (n === shownUnread) return;
  shownUnread = n;
  document.title = n > 0 ? `(${n > 99 ? "99+" : n}) ${baseTitle}` : baseTitle;
  if (n > 0) drawBadge(n); else if (baseIcon) setIcon(baseIcon, 0);
}

const refreshUnread = throttle(async () => {
  try { showUnread((await api("/me/unread")).conversations); } catch { /* next event retries */ }
}, 1500);

/** Keep the count live: conversations change unread (new messages, read) and assignee. */
export function initAttention(on) {
  for (const name of ["conversation.created", "conversation.updated", "counts.updated", "reconnected"]) on(name, refreshUnread);
  refreshUnread();
  permissionBar();
}
