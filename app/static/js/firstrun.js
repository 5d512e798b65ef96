// The first-run checklist admins see on the empty inbox: each step ticks itself from the app's state.

import { ME, h, icon, t } from "./core.js";
import { S } from "./state.js";

/** The steps, done or not, from the inboxes and people the page already loaded. */
export function firstRunSteps() {
  const inboxes = [...S.inboxes.values()].filter((i) => i.active !== false);
  const first = inboxes[0];
  const hoursSet = inboxes.some((i) => i.settings && (i.settings.business_hours || i.settings.greeting));
  return [
    { key: "connect", done: inboxes.length > 0, title: t("Connect your first channel"),
      sub: t("Pick a channel and paste its credentials: Switchboard checks them before saving."),
      href: "/admin/inboxes/new", action: t("Add an inbox") },
    { key: "team", done: S.users.length > 1, title: t("Invite your team"),
      sub: t("Agents answer in the inboxes they are members of; team leads assign."),
      href: "/admin/users", action: t("Add people") },
    { key: "hours", done: hoursSet, title: t("Set business hours and a greeting"),
      sub: t("Customers get a greeting when they first write, and an away message outside your hours."),
      href: first ? `/admin/inboxes/${first.id}#sec-hours` : "/admin/inboxes", action: t("Open inbox settings") },
  ];
}

/** Fill `box` (in the list's empty state) with the checklist; hidden for non-admins, searches and once all is done. */
export function renderFirstRun(box, { searching = false } = {}) {
  if (!box) return;
  const steps = ME && ME.role === "admin" && !searching ? firstRunSteps() : [];
  box.hidden = !steps.length || steps.every((s) => s.done);
  if (box.hidden) { box.replaceChildren(); return; }
  const left = steps.filter((s) => !s.done).length;
  box.replaceChildren(
    h("h3.first-run-title", t("Get Switchboard ready")),
    h("p.muted.sm", t("{n} of {total} steps left", { n: left, total: steps.length })),
    h("ol.first-run-steps", steps.map((s) => h("li.first-run-step" + (s.done ? ".done" : ""), { dataset: { step: s.key } },
      h("span.first-run-tick", { "aria-hidden": "true" }, s.done ? icon("check") : null),
      h("div.first-run-text",
        h("strong", s.title),
        h("span.visually-hidden", s.done ? t("Done") : t("To do")),
        h("span.muted.sm", s.sub),
        s.done ? null : h("a.btn.sm" + (steps.find((x) => !x.done) === s ? ".primary" : ""), { href: s.href }, s.action))))),
  );
}
