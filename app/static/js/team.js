// The team lead view: availability, load against capacity, conversations at risk, the queue.

import { api, avatar, channelIcon, duration, h, secondsUntil, serverNow, t, throttle, toast } from "./core.js";
import { initShell, on } from "./shell.js";
import { dueChip, windowChip } from "./list.js";

let data = null;

const AVAIL = () => ({ online: t("Online"), away: t("Away"), busy: t("Busy") });
const ROLE = () => ({ agent: t("Agent"), lead: t("Team lead"), admin: t("Admin") });

function agentRow(a) {
  const cap = a.capacity || 0;
  const pct = cap ? Math.min(100, Math.round((a.open_assigned / cap) * 100)) : (a.open_assigned ? 100 : 0);
  const bar = h("div.load-bar" + (pct >= 100 ? ".full" : pct >= 80 ? ".high" : ""), { role: "img",
    "aria-label": t("{n} of {cap}", { n: a.open_assigned, cap }) }, h("span"));
  bar.firstChild.style.inlineSize = pct + "%";
  return h("tr",
    h("td", h("div.person", avatar(a.name, { size: "sm", presence: a.availability }),
      h("div", h("div.person-name", a.name), h("div.muted", ROLE()[a.role] || a.role)))),
    h("td", h("span.avail", h("span.presence-dot." + a.availability), AVAIL()[a.availability] || a.availability)),
    h("td", h("div.load", bar, h("span.load-num", t("{n} of {cap}", { n: a.open_assigned, cap })))),
    h("td.num", a.overdue ? h("span.chip.red.soft", a.overdue) : h("span.muted", "0")));
}

function convRow(c, { queue = false } = {}) {
  const waited = c.waiting_since ? -secondsUntil(c.waiting_since) : -secondsUntil(c.created_at);
  return h("li", h("a.risk", { href: "/#c=" + c.id },
    avatar(c.contact.name, { size: "sm" }),
    h("div.grow",
      h("span.risk-name", { dir: "auto" }, c.contact.name),
      h("span.risk-sub", channelIcon(c.inbox.channel), c.inbox.name,
        queue ? [h("span.dot-sep", "·"), t("waiting {time}", { time: duration(waited) })] : null,
        !queue && c.assignee ? [h("span.dot-sep", "·"), c.assignee.name] : null,
        !queue && !c.assignee ? [h("span.dot-sep", "·"), t("Unassigned")] : null)),
    queue ? windowChip(c) : h("span", { style: "display:flex;gap:4px;flex-wrap:wrap;justify-content:flex-end" }, windowChip(c), dueChip(c))));
}

function render() {
  if (!data) return;
  const agents = data.agents;
  const online = agents.filter((a) => a.availability === "online");
  document.getElementById("stat-online").textContent = online.length;
  document.getElementById("stat-online-sub").textContent = t("of {n} on the team", { n: agents.length });
  const load = agents.reduce((s, a) => s + a.open_assigned, 0);
  const cap = online.reduce((s, a) => s + (a.capacity || 0), 0);
  document.getElementById("stat-load").textContent = load;
  document.getElementById("stat-load-sub").textContent = t("capacity online: {n}", { n: cap });
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
    : [h("tr", h("td.empty-row", { colspan: 4 }, t("No agents yet. Admins add them under Settings › Users.")))]));
  document.getElementById("risk-list").replaceChildren(...(data.at_risk.length ? data.at_risk.map((c) => convRow(c))
    : [h("li.empty-row", t("Nothing at risk right now."))]));
  document.getElementById("queue-list").replaceChildren(...(q.items.length ? q.items.map((c) => convRow(c, { queue: true }))
    : [h("li.empty-row", t("The queue is empty."))]));
  document.getElementById("team-updated").textContent = t("Updated {time}", {
    time: new Date(serverNow()).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" }) });
}

async function load() {
  try {
    data = await api("/team");
    render();
  } catch (e) {
    toast(e.message, "error");
  }
}

const refresh = throttle(load, 2000);

initShell();
for (const name of ["conversation.created", "conversation.updated", "counts.updated", "presence.updated", "reconnected"]) on(name, refresh);
load();
setInterval(render, 15000);
setInterval(load, 60000);
document.getElementById("open-queue").addEventListener("click", () => {
  localStorage.setItem("switchboard.filter." + (JSON.parse(document.getElementById("boot").textContent).me.id),
    JSON.stringify({ status: "open", assignee: "unassigned", inbox: null, channel: null, sort: "waiting_longest" }));
});
