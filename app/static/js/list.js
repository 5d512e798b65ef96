// The conversation list: rows, chips that count down, counts, bulk selection.

import { ME, avatar, channelIcon, duration, h, icon, listTime, fullDateTime, secondsUntil, t } from "./core.js";
import { S, liveWindow, presenceOthers } from "./state.js";
import { renderFirstRun } from "./firstrun.js";
import { languageChip } from "./languages.js";
import { labelChips } from "./labels.js";

const TWO_HOURS = 7200;

/** The reply-window chip: calm with hours left, amber under 2 h, red when closed. */
export function windowChip(conv) {
  const w = liveWindow(conv.reply_window);
  if (w.state === "none") return null;
  if (w.state === "closed") {
    return h("span.chip.red", { dataset: { timer: "window" }, title: t("Reply window closed") }, icon("lock"), t("Window closed"));
  }
  const left = Math.max(0, w.seconds);
  const tone = left < TWO_HOURS ? "amber" : (w.state === "human_agent" ? "violet" : "calm");
  const label = w.state === "human_agent"
    ? t("7-day human agent · {left}", { left: duration(left) })
    : t("{left} left", { left: duration(left) });
  return h("span.chip." + tone, { dataset: { timer: "window" },
    title: w.state === "human_agent" ? t("Replying under the 7-day human agent rule") : t("Time left to reply") }, icon("timer"), label);
}

/** The business's own response target: due in ..., overdue by ... */
export function dueChip(conv) {
  const due = conv.response_due;
  if (!due || !due.due_at || conv.status === "closed") return null;
  const left = secondsUntil(due.due_at);
  if (left <= 0 || due.breached) {
    return h("span.chip.red.soft", { dataset: { timer: "due" }, title: t("Response target missed") },
      icon("alert"), t("Overdue {time}", { time: duration(-left) }));
  }
  return h("span.chip." + (left < 3600 ? "amber.soft" : "plain"), { dataset: { timer: "due" }, title: t("Response due") },
    icon("clock"), t("Due in {time}", { time: duration(left) }));
}

/** "Sofia is replying": a string (for a title), or nodes with the names isolated (`{ nodes: true }`). */
export function presenceLabel(people, { nodes = false } = {}) {
  if (!people.length) return "";
  const replying = people.filter((p) => p.state === "replying");
  const names = (list) => (nodes ? h("bdi", list.map((p) => p.name).join(", ")) : list.map((p) => p.name).join(", "));
  const label = replying.length ? t("{name} is replying", { name: names(replying) }) : t("{name} is viewing", { name: names(people) });
  return nodes ? h("span", label) : label;
}

/** What a message that is only an attachment shows in the list: the server keeps "[kind]". */
const ATTACHMENT_SNIPPETS = () => ({
  image: t("Photo"), video: t("Video"), audio: t("Audio message"), file: t("File"), sticker: t("Sticker"),
  location: t("Location"), story: t("Story"), fallback: t("Link"),
});

function snippet(conv) {
  const last = conv.last_message;
  if (!last) return h("span.snippet.muted", t("No messages yet"));
  const body = (last.body || "").replace(/\s+/g, " ").trim() || t("[attachment]");
  const kind = /^\[(\w+)\]$/.exec(body);
  const attachment = kind && ATTACHMENT_SNIPPETS()[kind[1]];
  return h("span.snippet", { dir: "auto" },
    last.direction === "outbound" ? h("span.snippet-you", icon("reply"), " ") : null,
    last.direction === "note" ? h("span.snippet-you", icon("note"), " ") : null,
    attachment ? [icon("clip"), " ", attachment] : body);
}

/** A search hit: the server's escaped excerpt, rebuilt from its text and <mark>s only. */
function matchSnippet(match) {
  const tpl = document.createElement("template");
  tpl.innerHTML = match.snippet;
  const parts = [...tpl.content.childNodes].map((n) => (n.nodeName === "MARK" ? h("mark", n.textContent) : n.textContent));
  return h("span.snippet.match-snippet", { dir: "auto", title: t("Found in this message") }, icon("search"), " ", parts);
}

/** One row of the list. */
export function row(conv) {
  const unread = conv.unread_count > 0;
  const people = presenceOthers(conv.id);
  const checked = S.checked.has(conv.id);
  const li = h("li.conv-item" + (checked ? ".checked" : "") + (conv.id === S.openId ? ".open" : ""), { dataset: { id: conv.id } });
  const check = h("input.conv-check", { type: "checkbox", checked: checked || null,
    "aria-label": t("Select conversation with {name}", { name: conv.contact.name }) });
  check.addEventListener("change", () => {
    if (check.checked) S.checked.add(conv.id); else S.checked.delete(conv.id);
    li.classList.toggle("checked", check.checked);
    document.dispatchEvent(new CustomEvent("bulk-changed"));
  });
  const ava = avatar(conv.contact.name, { size: "md" });
  ava.append(h("span.ava-channel", channelIcon(conv.inbox.channel)));
  const chips = [windowChip(conv), dueChip(conv),
    languageChip(conv.language, { compact: true }),
    conv.automated ? h("span.chip.plain.automated", { title: t("Sent by a machine: an auto-reply, a mailing list or a newsletter") }, icon("bot"), t("Automated")) : null,
    conv.requested_live_agent ? h("span.chip.violet.soft", icon("user"), t("Wants a person")) : null,
    conv.opted_out ? h("span.chip.red.soft", t("Opted out")) : null,
    conv.declined ? h("span.chip.plain", t("Declined")) : null,
    conv.inactive_since && !conv.declined ? h("span.chip.plain", t("Inactive")) : null,
    conv.status === "snoozed" && conv.snooze_until ? h("span.chip.plain", icon("snooze"), listTime(conv.snooze_until)) : null,
  ].filter(Boolean);
  const link = h("a.conv-row" + (unread ? ".unread" : ""), {
    href: "#c=" + conv.id + (conv.match ? "&m=" + conv.match.message_id : ""),
    dataset: { id: conv.id },
    "aria-current": conv.id === S.openId ? "true" : null,
    "aria-label": null,
  },
  ava,
  h("div.conv-main",
    h("div.conv-line",
      h("span.conv-name", { dir: "auto" }, conv.contact.name),
      h("time.conv-time", { datetime: conv.last_activity_at, title: conv.last_activity_at ? fullDateTime(conv.last_activity_at) : null },
        listTime(conv.last_activity_at))),
    h("div.conv-line",
      snippet(conv),
      unread ? h("span.unread-badge", { "aria-label": t("{n} unread", { n: conv.unread_count }) }, conv.unread_count > 99 ? "99+" : conv.unread_count) : null),
    h("div.conv-line.conv-meta",
      S.inboxes.size > 1 ? h("span.conv-inbox", { dir: "auto" }, conv.inbox.name) : null,
      chips.length ? h("span.chips", chips) : null,
      h("span.grow"),
      people.length ? h("span.viewing" + (people.some((p) => p.state === "replying") ? ".replying" : ""), { title: presenceLabel(people) },
        icon(people.some((p) => p.state === "replying") ? "pen" : "eye"), h("span.viewing-names", people.map((p, i) => [i ? ", " : "", h("bdi", p.name.split(" ")[0])]))) : null,
      conv.assignee
        ? avatar(conv.assignee.name, { size: "xs", title: t("Assigned to {name}", { name: conv.assignee.name }) })
        : h("span.unassigned-dot", { title: t("Unassigned") })),
    conv.labels && conv.labels.length ? h("div.conv-line.conv-labels", labelChips(conv.labels)) : null,
    conv.match ? h("div.conv-line", matchSnippet(conv.match)) : null));
  li.append(check, link);
  return li;
}

/** Re-render the whole list, keeping keyboard focus where it was. */
export function renderList() {
  const ul = document.getElementById("conv-list");
  const focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest(".conv-item")?.dataset.id;
  const focusedCheck = document.activeElement && document.activeElement.classList.contains("conv-check");
  ul.replaceChildren(...S.items.map(row));
  ul.setAttribute("aria-busy", S.loading ? "true" : "false");
  const empty = document.getElementById("list-empty");
  empty.hidden = S.loading || S.items.length > 0;
  if (!empty.hidden) {
    empty.querySelector(".empty-title").textContent = S.filter.q ? t("No conversations match your search") : emptyTitle();
    empty.querySelector(".empty-sub").textContent = S.filter.q ? t("Try another name, number or word.") : t("New messages will appear here the moment they arrive.");
    renderFirstRun(document.getElementById("first-run"), { searching: !!S.filter.q });
  }
  document.getElementById("load-more").hidden = !S.nextCursor;
  if (S.cursorId) ul.querySelector(`.conv-item[data-id="${S.cursorId}"]`)?.classList.add("cursor");
  if (focusedId) {
    const target = ul.querySelector(`.conv-item[data-id="${focusedId}"] ${focusedCheck ? ".conv-check" : ".conv-row"}`);
    target && target.focus({ preventScroll: true });
  }
  renderBulkBar();
}

function emptyTitle() {
  return {
    open: t("No open conversations"), pending: t("Nothing pending"), snoozed: t("Nothing snoozed"),
    closed: t("No closed conversations"),
  }[S.filter.status] || t("No conversations");
}

/** Update the countdown chips and relative times in place (no re-render). */
export function tickList() {
  const ul = document.getElementById("conv-list");
  for (const li of ul.children) {
    const conv = S.convs.get(Number(li.dataset.id));
    if (!conv) continue;
    const chips = li.querySelector(".chips");
    const fresh = [windowChip(conv), dueChip(conv)];
    for (const [i, kind] of ["window", "due"].entries()) {
      const old = chips && chips.querySelector(`[data-timer="${kind}"]`);
      if (old && fresh[i]) old.replaceWith(fresh[i]);
    }
    const time = li.querySelector(".conv-time");
    if (time && conv.last_activity_at) time.textContent = listTime(conv.last_activity_at);
  }
}

export function renderCounts() {
  const show = (el, n) => { el.textContent = n === null || n === undefined ? "" : n; };
  document.querySelectorAll("[data-count]").forEach((el) => show(el, S.counts[el.dataset.count]));
  // each tab says how many it holds; a search's counts may stop at its cap ("n+")
  const by = S.counts.by_status || {};
  document.querySelectorAll("[data-status-count]").forEach((el) => {
    const n = by[el.dataset.statusCount];
    show(el, S.filter.q && S.counts.capped && n ? n + "+" : n);
    if (S.filter.q && n !== undefined) el.setAttribute("aria-label", t("{n} found", { n }));
    else el.removeAttribute("aria-label");
  });
}

export function renderBulkBar() {
  const bar = document.getElementById("bulk-bar");
  for (const id of [...S.checked]) if (!S.items.some((c) => c.id === id)) S.checked.delete(id);
  const n = S.checked.size;
  bar.hidden = n === 0 && !document.getElementById("list-app").classList.contains("select-mode");
  document.getElementById("list-app").classList.toggle("selecting", n > 0);
  bar.querySelector(".bulk-count").textContent = t("{n} selected", { n });
  const all = document.getElementById("check-all");
  all.checked = n > 0 && n === S.items.length;
  all.indeterminate = n > 0 && n < S.items.length;
}

