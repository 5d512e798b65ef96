// The team lead view: who is online (a connected browser) and available, load against
// capacity, conversations at risk, and the whole unassigned queue (paged, waiting longest first).

import { api, avatar, channelIcon, duration, h, secondsUntil, serverNow, t, throttle, toast } from "./core.js";
import { initShell, on } from "./shell.js";
import { dueChip, windowChip } from "./list.js";

let data = null;
let moreQueue = []; // queue pages fetched after the first ("Show more")
let queueCursor = null;

const AVAIL = () => ({ online: t("Available"), away: t("Away"), busy: t("Busy") });
const ROLE = () => ({ agent: t("Agent"), lead: t("Team lead"), admin: t("Admin") });

function agentRow(a) {
  const cap = a.capacity || 0;
  const pct = cap ? Math.min(100, Math.round((a.open_assigned / cap) * 100)) : (a.open_assigned ? 100 : 0);
  const bar = h("div.load-bar" + (pct >= 100 ? ".full" : pct >= 80 ? ".high" : ""), { role: "img",
    "aria-label": t("{n} of {cap}", { n: a.open_assigned, cap }) }, h("span"));
  bar.firstChild.style.inlineSize = pct + "%";
  return h("tr",
    h("td", h("div.person", avatar(a.name, { size: "sm", presence: a.online ? a.availability : null }),
      h("div", h("div.person-name", h("bdi", a.name)), h("div.muted", ROLE()[a.role] || a.role)))),
    h("td.agent-online", a.online ? h("span.avail", h("span.presence-dot.online"), t("Online"))
      : h("span.avail.muted", h("span.presence-dot"), t("Offline"))),
    h("td.agent-avail", h("span.avail", h("span.presence-dot." + a.availability), AVAIL()[a.availability] || a.availability)),
    h("td", h("div.load", bar, h("span.load-num", t("{n} of {cap}", { n: a.open_assigned, cap })))),
    h("td.num", a.overdue ? h("span.chip.red.soft", a.overdue) : h("span.muted", "0")));
}

function convRow(c, { queue = false } = {}) {
  const waited = c.waiting_since ? -secondsUntil(c.waiting_since) : -secondsUntil(c.created_at);
  return h("li", h("a.risk", { href: "/#c=" + c.id },
    avatar(c.contact.name, { size: "sm" }),
    h("div.grow",
      h("span.risk-name", { dir: "auto" }, c.contact.name),
      h("span.risk-sub", channelIcon(c.inbox.channel), h("bdi", c.inbox.name),
        queue ? [h("span.dot-sep", "·"), t("waiting {time}", { time: duration(waited) })] : null,
        !queue && c.assignee ? [h("span.dot-sep", "·"), h("bdi", c.assignee.name)] : null,
        !queue && !c.assignee ? [h("span.dot-sep", "·"), t("Unassigned")] : null)),
    queue ? windowChip(c) : h("span", { style: "display:flex;gap:4px;flex-wrap:wrap;justify-content:flex-end" }, windowChip(c), dueChip(c))));
}

function render() {
  if (!data) return;
  const agents = data.agents;
  const online = agents.filter((a) => a.online); // a browser connected now
  document.getElementById("stat-online").textContent = online.length;
  document.getElementById("stat-online-sub").textContent = t("of {n} on the team", { n: agents.length });
  const load = agents.reduce((s, a) => s + a.open_assigned, 0);
  document.getElementById("stat-load").textContent = load;
  document.getElementById("stat-load-sub").textContent = t("capacity online: {n}", {
    n: online.filter((a) => a.available).reduce((s, a) => s + (a.capacity || 0), 0) });
  const q = data.unassigned;
  document.getElementById("stat-queue").textContent = q.count;
  const oldest = q.oldest_since ? -secondsUntil(q.oldest_since) : null;
  document.getElementById("stat-queue-sub").textContent = oldest !== null ? t("oldest waiting {time}", { time: duration(oldest) }) : t("Nobody is waiting");
  document.getElementById("stat-queue-card").classList.toggle("alert-amber", oldest !== null && oldest > 3600);
  const overdue = data.at_risk.filter((c) => c.response_due && c.response_due.breached).length;
  document.getElementById("stat-risk").textContent = data.at_risk.length;
  document.getElementById("stat-risk-sub").textContent = t("{n} overdue", { n: overdue });
  document.getElementById("stat-risk-card").classList.toggle("alert-red", data.at_risk.length > 0);

  document.querySelector("#agents-table tbody").replaceChildren(...(agents.length ? agents.map(agentRow)
    : [h("tr", h("td.empty-row", { colspan: 5 }, t("No agents yet. Admins add them under Settings › Users.")))]));
  document.getElementById("risk-list").replaceChildren(...(data.at_risk.length ? data.at_risk.map((c) => convRow(c))
    : [h("li.empty-row", t("Nothing at risk right now."))]));
  const queue = q.items.concat(moreQueue);
  document.getElementById("queue-list").replaceChildren(...(queue.length ? queue.map((c) => convRow(c, { queue: true }))
    : [h("li.empty-row", t("The queue is empty."))]));
  const more = document.getElementById("queue-more");
  more.hidden = !queueCursor;
  more.textContent = t("Show more ({n} not shown)", { n: Math.max(0, q.count - queue.length) });
  document.getElementById("team-updated").textContent = t("Updated {time}", {
    time: new Date(serverNow()).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" }) });
}

async function load() {
  try {
    data = await api("/team");
    // the queue moved: start again from its first page (as many rows as were shown)
    const shown = moreQueue.length;
    moreQueue = [];
    queueCursor = data.unassigned.next_cursor;
    while (queueCursor && moreQueue.length < shown) await fetchMore();
    render();
  } catch (e) {
    toast(e.message, "error");
  }
}

async function fetchMore() {
  const page = await api("/team/queue?cursor=" + encodeURIComponent(queueCursor) + "&limit=50");
  moreQueue = moreQueue.concat(page.items);
  queueCursor = page.next_cursor;
}

const refresh = throttle(load, 2000);
document.getElementById("queue-more").addEventListener("click", async () => {
  try {
    await fetchMore();
    render();
  } catch (e) {
    toast(e.message, "error");
  }
});

initShell();
for (const name of ["conversation.created", "conversation.updated", "counts.updated", "presence.updated", "reconnected"]) on(name, refresh);
load();
setInterval(render, 15000);
setInterval(load, 60000);
document.getElementById("open-queue").addEventListener("click", () => {
  localStorage.setItem("switchboard.filter." + (JSON.parse(document.getElementById("boot").textContent).me.id),
    JSON.stringify({ status: "open", assignee: "unassigned", inbox: null, channel: null, sort: "waiting_longest" }));
});
