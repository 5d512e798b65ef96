// Inbox health: banners for failing inboxes on the list and on their conversations.

import { ME, h, icon, relTime, t } from "./core.js";
import { S } from "./state.js";

// the server's incident reasons (app/inbox/health.py), in the agent's language
const REASON = () => ({
  auth_refused: t("The provider refused the inbox's credentials: it needs reconnecting"),
  sending_failing: t("Replies from this inbox keep failing"),
  login_refused: t("The mail server refused the login"),
  mailbox_failing: t("The mailbox cannot be read"),
  silent: t("Nothing received for a long time on a busy inbox"),
});

/** What is wrong with an inbox now (its incident, or a pause without one), or null. */
export function trouble(inbox) {
  if (!inbox) return null;
  if (inbox.incident) return inbox.incident;
  if (inbox.needs_reconnect) return { reason: "auth_refused", message: inbox.last_error, since: inbox.last_error_at };
  return null;
}

/** One banner: the inbox, the reason (with the provider's words when `detail`), since when,
 * and for admins the way to repair it. */
export function banner(inbox, { detail = true } = {}) {
  const found = trouble(inbox);
  if (!found) return null;
  const reason = REASON()[found.reason] || found.title || found.reason;
  const admin = ME && ME.role === "admin";
  return h("div.health-banner", { role: "status", dataset: { inboxId: inbox.id, reason: found.reason } },
    icon("alert"),
    h("span.banner-text",
      h("strong", t("{inbox} is not working", { inbox: h("bdi", inbox.name) })), " · ", reason,
      detail && found.message ? h("span.health-detail", { dir: "auto" }, " (" + found.message + ")") : null,
      found.since ? h("span.muted", " · " + t("since {time}", { time: relTime(found.since) })) : null),
    admin ? h("a.btn.sm", { href: `/admin/inboxes/${inbox.id}#reconnect` }, t("Reconnect"))
      : h("span.muted", t("An admin has been told.")));
}

/** The list's banners: every failing inbox the user works in. */
export function renderListHealth() {
  const box = document.getElementById("list-health");
  if (!box) return;
  const banners = [...S.inboxes.values()].map((i) => banner(i, { detail: false })).filter(Boolean);
  box.replaceChildren(...banners);
  box.hidden = !banners.length;
}

/** The open conversation's banner, when its inbox is failing. */
export function renderThreadHealth(conv) {
  const box = document.getElementById("thread-health");
  if (!box) return;
  const el = conv ? banner(S.inboxes.get(conv.inbox.id)) : null;
  box.replaceChildren(...(el ? [el] : []));
  box.hidden = !el;
}
