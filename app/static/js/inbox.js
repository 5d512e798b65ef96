// The inbox page: filters, the live list, the open thread, shortcuts and notifications.

import { ME, api, channelIcon as channelIconEl, channelName, debounce, h, qs, shortcutKey, t, throttle, toast } from "./core.js";
import { desktopNotify, emit, initShell, on, popover, showShortcuts } from "./shell.js";
import { S, assignable, canAssignOthers, compare, matches, remember, saveFilter } from "./state.js";
import { dueChip, renderBulkBar, renderCounts, renderList, tickList, windowChip } from "./list.js";
import { T, loadEarlier, renderContact, renderHeader, renderMessages, setStatus, upsertMessage } from "./thread.js";
import { renderListHealth, renderThreadHealth } from "./health.js";
import { focusComposer, leaveComposer, markSeen, onLiveMessage, refreshComposer, renderComposer } from "./composer.js";
import { applyLabelsEvent, bulkLabels, labelFilter, loadLabels } from "./labels.js";
import { fitTabs } from "./tabs.js";
import { bindListTools, renderFilterMenu, renderListTools } from "./listtools.js";

const app = document.getElementById("inbox-app");
const PAGE = 30;

// ------------------------------------------------------------------ list loading

let listAbort = null;

function listParams(extra = {}) {
  const f = S.filter;
  return { status: f.status, assignee: f.assignee, inbox: f.inbox, channel: f.channel, label: f.labels, q: f.q, sort: f.sort,
    automated: f.automated === "hide" ? "hide" : null, limit: PAGE, ...extra };
}

async function loadList({ append = false } = {}) {
  if (listAbort) listAbort.abort();
  listAbort = new AbortController();
  S.loading = !append;
  if (!append) renderList();
  try {
    const page = await api("/conversations" + qs(listParams(append ? { cursor: S.nextCursor } : {})), { signal: listAbort.signal });
    const items = page.items.map(remember);
    S.items = append ? [...S.items, ...items.filter((c) => !S.items.some((x) => x.id === c.id))] : items;
    S.counts = page.counts;
    S.nextCursor = page.next_cursor;
    S.loading = false;
    renderList();
    renderCounts();
    renderFilters();
  } catch (e) {
    if (e.name === "AbortError") return;
    S.loading = false;
    renderList();
    toast(e.message, "error");
  }
}

/** Counts change with every event in any inbox: refetch them at most once every 2 s. */
const refreshCounts = throttle(async () => {
  try {
    const page = await api("/conversations" + qs(listParams({ limit: 1 })));
    S.counts = page.counts;
    renderCounts();
  } catch { /* next event retries */ }
}, 2000);

const reloadSearch = debounce(() => loadList(), 400);

/** Put a changed conversation where it belongs in the list (or take it out). */
function placeInList(conv) {
  const i = S.items.findIndex((c) => c.id === conv.id);
  if (S.filter.q && i < 0) { reloadSearch(); return; }
  if (matches(conv)) {
    if (i >= 0 && S.items[i].match && !conv.match) conv.match = S.items[i].match; // the search hit
    if (i >= 0) S.items[i] = conv; else S.items.push(conv);
    S.items.sort(compare);
    // keep the page size stable: a new arrival beyond the loaded page waits for "load more"
    if (i < 0 && S.nextCursor && S.items.indexOf(conv) === S.items.length - 1) S.items.pop();
  } else if (i >= 0) {
    S.items.splice(i, 1);
  }
  renderList();
}

// ------------------------------------------------------------------ filters

function renderFilters() {
  const f = S.filter;
  document.querySelectorAll("[data-status-tab]").forEach((b) => {
    const on = b.dataset.statusTab === f.status;
    b.setAttribute("aria-selected", on ? "true" : "false");
    b.tabIndex = on ? 0 : -1;
  });
  document.querySelectorAll("[data-assignee]").forEach((b) => b.setAttribute("aria-pressed", b.dataset.assignee === f.assignee ? "true" : "false"));
  document.querySelectorAll("[data-inbox]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.inbox || "") === String(f.inbox || "") && !f.channel ? "true" : "false"));
  document.querySelectorAll("[data-channel]").forEach((b) => b.setAttribute("aria-pressed", b.dataset.channel === f.channel ? "true" : "false"));
  document.getElementById("sort").value = f.sort;
  const names = { me: t("Mine"), unassigned: t("Unassigned"), any: t("All") };
  const statusNames = { open: t("Open"), pending: t("Pending"), snoozed: t("Snoozed"), closed: t("Closed"),
    inactive: t("Inactive"), declined: t("Declined") };
  const where = f.inbox ? (S.inboxes.get(Number(f.inbox)) || {}).name : f.channel ? document.querySelector(`[data-channel="${f.channel}"] .side-label`)?.textContent : null;
  document.getElementById("list-title").textContent = [names[f.assignee], where].filter(Boolean).join(" · ");
  document.getElementById("list-sub").textContent = statusNames[f.status] || "";
  labelFilterUI.render();
  renderListTools();
}

function setFilter(change) {
  Object.assign(S.filter, change);
  saveFilter();
  S.checked.clear();
  renderFilters();
  loadList();
}

let labelFilterUI = null;

/** Labels: the list's filter, and their changes (renamed, recoloured, deleted) drawn again. */
function bindLabels() {
  labelFilterUI = labelFilter(document.getElementById("label-filter"), document.getElementById("label-filter-menu"),
    document.getElementById("label-filter-chips"), { onChange: (labels) => setFilter({ labels }) });
  const redraw = () => {
    saveFilter();
    renderFilters();
    renderList();
    if (T.conv) renderHeader(T.conv);
  };
  on("labels.updated", (payload) => {
    const reload = applyLabelsEvent(payload, [T.conv]);
    redraw();
    if (reload) loadList();
  });
  on("reconnected", () => loadLabels().then(redraw).catch(() => {}));
  // a link to the list with ?label=... (from the labels page) sets the filter
  const linked = new URLSearchParams(location.search).getAll("label").filter(Boolean);
  if (linked.length) {
    S.filter.labels = linked;
    saveFilter();
    history.replaceState(null, "", location.pathname + location.hash);
  }
}

function bindFilters() {
  document.querySelectorAll("[data-status-tab]").forEach((b) => b.addEventListener("click", () => setFilter({ status: b.dataset.statusTab })));
  const tabs = [...document.querySelectorAll("[data-status-tab]")];
  tabs.forEach((b, i) => b.addEventListener("keydown", (e) => {
    const dir = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (!dir) return;
    const next = tabs[(i + (document.documentElement.dir === "rtl" ? -dir : dir) + tabs.length) % tabs.length];
    next.focus();
    next.click();
  }));
  document.querySelectorAll("[data-assignee]").forEach((b) => b.addEventListener("click", () => { setFilter({ assignee: b.dataset.assignee }); showList(); }));
  document.getElementById("sort").addEventListener("change", (e) => setFilter({ sort: e.target.value }));
  const search = document.getElementById("search");
  search.addEventListener("input", debounce(() => { S.filter.q = search.value.trim(); loadList(); }, 300));
  search.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { search.value = ""; S.filter.q = ""; loadList(); search.blur(); }
    if (e.key === "ArrowDown" || e.key === "Enter") { e.preventDefault(); moveCursor(0); }
  });
  document.getElementById("load-more").addEventListener("click", () => loadList({ append: true }));
}

async function loadInboxes() {
  const [inboxes, users] = await Promise.all([api("/inboxes"), api("/users")]);
  S.inboxes = new Map(inboxes.items.map((i) => [i.id, i]));
  S.users = users.items;
  const box = document.getElementById("inbox-filters");
  const channels = [...new Set(inboxes.items.map((i) => i.channel))];
  box.replaceChildren(
    ...inboxes.items.map((i) => h("button.side-item", { type: "button", dataset: { inbox: i.id }, "aria-pressed": "false",
      onclick: () => { setFilter({ inbox: S.filter.inbox === i.id ? null : i.id, channel: null }); showList(); } },
    channelIconEl(i.channel), h("span.side-label", { dir: "auto" }, i.name), i.needs_reconnect ? h("span.warn-dot", { title: t("Needs reconnecting") }) : null)),
  );
  const chBox = document.getElementById("channel-filters");
  chBox.closest(".side-section").hidden = channels.length < 2;
  chBox.replaceChildren(...channels.map((c) => h("button.side-item", { type: "button", dataset: { channel: c }, "aria-pressed": "false",
    onclick: () => { setFilter({ channel: S.filter.channel === c ? null : c, inbox: null }); showList(); } },
  channelIconEl(c), h("span.side-label", { dir: "auto" }, channelName(c)))));
  renderFilterMenu(inboxes.items, channels);
  renderFilters();
  renderListHealth();
  renderThreadHealth(T.conv);
}

// ------------------------------------------------------------------ thread

let openSeq = 0;

/** Bring one message of the open thread into view (a notification or a search hit links to
 * it: `&m=<id>`), loading earlier pages while it is older than those shown. */
async function showMessage(messageId) {
  if (!messageId || !T.conv) return;
  // by id: a live update (the read receipt of this very opening) replaces the object meanwhile
  const id = T.conv.id;
  const same = () => T.conv && T.conv.id === id;
  for (let i = 0; i < 40 && !document.getElementById("m" + messageId) && T.hasMore && same(); i++) await loadEarlier();
  const el = same() && document.getElementById("m" + messageId);
  if (!el) return;
  el.scrollIntoView({ block: "center" });
  el.classList.add("flash", "found");
}

async function openConversation(id, { focusList = false, messageId = null } = {}) {
  id = Number(id);
  if (!id) return;
  const seq = ++openSeq;
  S.openId = id;
  S.cursorId = id;
  app.dataset.view = "thread";
  document.getElementById("thread-empty").hidden = true;
  document.getElementById("thread-main").hidden = false;
  document.querySelectorAll(".conv-item").forEach((li) => {
    const on = Number(li.dataset.id) === id;
    li.classList.toggle("open", on);
    li.classList.toggle("cursor", on);
    const a = li.querySelector(".conv-row");
    on ? a.setAttribute("aria-current", "true") : a.removeAttribute("aria-current");
  });
  const cached = S.convs.get(id);
  if (cached) { T.conv = cached; renderHeader(cached); }
  renderThreadHealth(cached || null);
  document.getElementById("thread-log").replaceChildren(h("div.thread-loading", h("span.spinner"), t("Loading…")));
  delete document.getElementById("thread-log").dataset.ready;
  try {
    const [conv, page] = await Promise.all([api(`/conversations/${id}`), api(`/conversations/${id}/messages?limit=50`)]);
    if (seq !== openSeq) return;
    T.conv = remember(conv);
    renderThreadHealth(T.conv);
    T.messages = page.items;
    T.hasMore = page.has_more;
    markSeen();
    renderHeader(T.conv);
    renderMessages();
    renderComposer(T.conv);
    renderContact(T.conv);
    showMessage(messageId); // once the composer and its notices take their room
    emit("presence", { conversation_id: id, state: "viewing" });
    if (conv.unread_count > 0) {
      api(`/conversations/${id}/read`, { method: "POST" }).then((c) => { remember(c); placeInList(c); }).catch(() => {});
    }
    if (focusList) document.querySelector(`.conv-item[data-id="${id}"] .conv-row`)?.focus();
  } catch (e) {
    if (seq !== openSeq) return;
    document.getElementById("thread-log").replaceChildren(h("div.thread-empty", e.status === 404 ? t("This conversation does not exist or you cannot see it.") : e.message));
  }
}

function closeThread() {
  S.openId = null;
  T.conv = null;
  leaveComposer();
  emit("presence", { conversation_id: null });
  document.getElementById("thread-main").hidden = true;
  document.getElementById("thread-empty").hidden = false;
}

function showList() {
  app.dataset.view = "list";
}

function route() {
  const m = /c=(\d+)/.exec(location.hash);
  const msg = /[&?]m=(\d+)/.exec(location.hash);
  if (m) openConversation(m[1], { messageId: msg && Number(msg[1]) });
  else { closeThread(); showList(); }
}

// ------------------------------------------------------------------ live events

/** A conversation changed: store its newest copy, then redraw every view of it from that copy. */
function onConversation(conv) {
  conv = remember(conv);
  placeInList(conv);
  if (T.id === conv.id) {
    renderHeader(T.conv);
    refreshComposer();
    renderContact(T.conv);
  }
}

const pendingNotify = new Map();

function onMessageCreated(msg) {
  if (T.conv && msg.conversation_id === T.conv.id) {
    upsertMessage(msg);
    onLiveMessage(msg);
    if (msg.direction === "inbound" && document.visibilityState === "visible") {
      // the agent is looking at it: no unread badge for this one
      setTimeout(() => { if (T.conv && T.conv.id === msg.conversation_id) api(`/conversations/${msg.conversation_id}/read`, { method: "POST" }).catch(() => {}); }, 600);
    }
  }
  if (msg.direction === "inbound") {
    // the conversation event follows the message event: decide once we know the assignee
    clearTimeout(pendingNotify.get(msg.conversation_id));
    pendingNotify.set(msg.conversation_id, setTimeout(() => notifyInbound(msg), 400));
  }
}

function notifyInbound(msg) {
  pendingNotify.delete(msg.conversation_id);
  const conv = S.convs.get(msg.conversation_id);
  if (!conv) return;
  const mine = conv.assignee && conv.assignee.id === ME.id;
  if (!mine && conv.assignee) return;
  const looking = T.conv && T.conv.id === conv.id && document.visibilityState === "visible" && document.hasFocus();
  if (looking) return;
  desktopNotify(mine ? conv.contact.name : t("{name} (unassigned)", { name: conv.contact.name }), msg.body || t("[attachment]"), {
    tag: "c" + conv.id, onclick: () => { location.hash = "c=" + conv.id; },
  });
}

function bindLive() {
  on("conversation.created", onConversation);
  on("conversation.updated", onConversation);
  on("message.created", onMessageCreated);
  on("message.updated", (msg) => { if (T.conv && msg.conversation_id === T.conv.id) upsertMessage(msg); });
  on("counts.updated", () => refreshCounts());
  on("presence.updated", (p) => {
    if (!p || !p.conversation_id) return; // availability changes carry {user}
    S.presence.set(p.conversation_id, p.users || []);
    const li = document.querySelector(`.conv-item[data-id="${p.conversation_id}"]`);
    if (li) renderList();
    if (T.conv && T.conv.id === p.conversation_id) renderHeader(T.conv);
  });
  on("contact.typing", (p) => {
    if (!p) return;
    const el = document.getElementById("typing-line");
    if (!T.conv || p.conversation_id !== T.conv.id) return;
    el.hidden = !p.is_typing;
    el.textContent = t("{name} is typing…", { name: T.conv.contact.name });
    clearTimeout(el._t);
    if (p.is_typing) el._t = setTimeout(() => { el.hidden = true; }, 10000);
  });
  on("inbox.updated", () => loadInboxes().then(refreshComposer).catch(() => {}));
  on("reconnected", async () => {
    // catch up on everything missed while offline
    await loadList();
    if (S.openId) {
      const id = S.openId;
      try {
        const [conv, page] = await Promise.all([api(`/conversations/${id}`), api(`/conversations/${id}/messages?limit=50`)]);
        if (S.openId !== id) return;
        T.conv = remember(conv);
        for (const m of page.items) upsertMessage(m);
        renderHeader(T.conv);
        refreshComposer();
      } catch { /* next reconnect */ }
      emit("presence", { conversation_id: id, state: "viewing" });
    }
  });
  on("connected", () => { if (S.openId) emit("presence", { conversation_id: S.openId, state: "viewing" }); });
  document.addEventListener("conv-changed", (e) => onConversation(e.detail));
  document.addEventListener("go-list", () => { history.pushState(null, "", location.pathname); closeThread(); showList(); });
}

// ------------------------------------------------------------------ keyboard

function moveCursor(delta) {
  if (!S.items.length) return;
  let i = S.items.findIndex((c) => c.id === S.cursorId);
  i = i < 0 ? 0 : Math.max(0, Math.min(S.items.length - 1, i + delta));
  S.cursorId = S.items[i].id;
  document.querySelectorAll(".conv-item.cursor").forEach((li) => li.classList.remove("cursor"));
  const li = document.querySelector(`.conv-item[data-id="${S.cursorId}"]`);
  if (li) {
    li.classList.add("cursor");
    li.querySelector(".conv-row").focus();
    li.scrollIntoView({ block: "nearest" });
  }
}

function typingInField(e) {
  const el = e.target;
  return el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName) || el.closest("dialog");
}

function bindKeys() {
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typingInField(e)) return;
    const conv = T.conv;
    switch (shortcutKey(e)) {
      case "j": moveCursor(1); break;
      case "k": moveCursor(-1); break;
      case "Enter":
        if (document.activeElement && document.activeElement.classList.contains("conv-row")) return; // the link opens it
        if (S.cursorId) location.hash = "c=" + S.cursorId;
        break;
      case "r": if (conv) focusComposer("reply"); break;
      case "n": if (conv) focusComposer("note"); break;
      case "e":
        if (conv) setStatus(conv, conv.status === "closed" ? "open" : "closed");
        break;
      case "a": if (conv && T.menus.assign) T.menus.assign.open(); break;
      case "s": if (conv && T.menus.snooze && conv.status !== "closed") T.menus.snooze.open(); break;
      case "l": if (conv && T.menus.labels) T.menus.labels.open(); break;
      case "/": document.getElementById("search").focus(); break;
      case "?": showShortcuts(); break;
      default: return;
    }
    e.preventDefault();
  });
}

// ------------------------------------------------------------------ bulk actions

function bindBulk() {
  const bar = document.getElementById("bulk-bar");
  document.addEventListener("bulk-changed", renderBulkBar);
  document.getElementById("check-all").addEventListener("change", (e) => {
    if (e.target.checked) S.items.forEach((c) => S.checked.add(c.id)); else S.checked.clear();
    renderList();
  });
  bar.querySelector(".bulk-clear").addEventListener("click", () => { S.checked.clear(); renderList(); });
  const run = async (body, done) => {
    const ids = [...S.checked];
    try {
      const res = await api("/conversations/bulk", { method: "POST", body: { ids, ...body } });
      res.items.forEach((c) => onConversation(c));
      S.checked.clear();
      renderList();
      toast(done(ids.length), "success");
    } catch (e) { toast(e.message, "error"); }
  };
  bar.querySelector(".bulk-close").addEventListener("click", () => run({ action: "status", status: "closed" }, (n) => (n === 1 ? t("1 conversation closed") : t("{n} conversations closed", { n }))));
  bar.querySelector(".bulk-open").addEventListener("click", () => run({ action: "status", status: "open" }, (n) => (n === 1 ? t("1 conversation reopened") : t("{n} conversations reopened", { n }))));
  bulkLabels(bar.querySelector(".bulk-label"), bar.querySelector(".bulk-label-menu"), { ids: () => [...S.checked] });
  const assignBtn = bar.querySelector(".bulk-assign");
  const panel = bar.querySelector(".bulk-assign-menu");
  if (!canAssignOthers()) { assignBtn.hidden = true; return; }
  popover(assignBtn, panel, { onOpen: () => {
    const inboxIds = new Set([...S.checked].map((id) => S.convs.get(id)?.inbox.id));
    let people = S.users;
    for (const id of inboxIds) { const ok = new Set(assignable(id).map((u) => u.id)); people = people.filter((u) => ok.has(u.id)); }
    panel.replaceChildren(...people.map((u) => h("button.menu-item", { type: "button", role: "menuitem",
      onclick: () => { panel.hidden = true; run({ action: "assign", assignee_id: u.id }, (n) => (n === 1 ? t("1 conversation assigned to {name}", { name: u.name }) : t("{n} conversations assigned to {name}", { n, name: u.name }))); } },
    h("bdi", u.name))), h("button.menu-item", { type: "button", role: "menuitem",
      onclick: () => { panel.hidden = true; run({ action: "assign", assignee_id: null }, (n) => (n === 1 ? t("1 conversation unassigned") : t("{n} conversations unassigned", { n }))); } }, h("span", t("Unassign"))));
  } });
}

// ------------------------------------------------------------------ start

function tick() {
  tickList();
  if (T.conv) {
    // the header chips and the composer banner count down too
    const sub = document.querySelector("#thread-head .thread-sub");
    if (sub) {
      sub.querySelectorAll("[data-timer]").forEach((chip) => chip.remove());
      [windowChip(T.conv), dueChip(T.conv)].forEach((c) => c && sub.append(c));
    }
    refreshComposer();
  }
}

async function start() {
  initShell();
  bindLabels();
  bindFilters();
  fitTabs(document.querySelector(".status-tabs"));
  bindLive();
  bindKeys();
  bindBulk();
  bindListTools({ change: setFilter, redraw: renderList });
  if (localStorage.getItem("switchboard.contactPanel") === "1") app.classList.add("with-contact");
  try { await Promise.all([loadInboxes(), loadLabels()]); } catch (e) { toast(e.message, "error"); }
  await loadList();
  window.addEventListener("hashchange", route);
  route();
  setInterval(tick, 15000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") tick();
  });
  document.body.dataset.ready = "1";
}

start();
