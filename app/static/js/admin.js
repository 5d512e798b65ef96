// Admin pages: copy webhook values, edit inbox settings, users, members and canned replies.
// Connecting, checking and repairing inboxes is in connect.js.

import { ME, api, avatar, channelIcon, dialog, h, relTime, t, toast, fullDateTime } from "./core.js";
import { initConnect } from "./connect.js";
import { initShell } from "./shell.js";

initShell();
initConnect();

// ------------------------------------------------------------------ shared bits

document.querySelectorAll("time[data-rel]").forEach((el) => {
  el.title = fullDateTime(el.getAttribute("datetime"));
  el.textContent = relTime(el.getAttribute("datetime"));
});
document.querySelectorAll(".avatar[data-name]").forEach((el) => el.replaceWith(avatar(el.dataset.name, { size: "sm" })));
document.querySelectorAll("[data-channel-icon]").forEach((el) => el.replaceWith(channelIcon(el.dataset.channelIcon)));

document.addEventListener("click", async (e) => {
  const copy = e.target.closest("[data-copy]");
  if (copy) {
    try {
      await navigator.clipboard.writeText(copy.dataset.copy);
      toast(t("Copied"), "success", { timeout: 1800 });
    } catch {
      // no clipboard permission (plain http): select the text instead
      const code = copy.parentElement.querySelector("code");
      if (code) {
        if (code.dataset.secret) code.textContent = code.dataset.secret;
        getSelection().selectAllChildren(code);
      }
      toast(t("Press Ctrl+C to copy the selected text."), "info", { timeout: 2500 });
    }
  }
  const reveal = e.target.closest("[data-reveal]");
  if (reveal) {
    const code = reveal.parentElement.querySelector("code[data-secret]");
    const shown = code.textContent === code.dataset.secret;
    code.textContent = shown ? "••••••••••••" : code.dataset.secret;
    code.classList.toggle("masked", shown);
    reveal.textContent = shown ? t("Reveal") : t("Hide");
  }
});

function formDialog(title, template, values = {}, saveLabel = t("Save")) {
  const form = document.getElementById(template).content.firstElementChild.cloneNode(true);
  for (const [k, v] of Object.entries(values)) {
    const field = form.elements[k];
    if (field) field.value = v === null || v === undefined ? "" : v;
  }
  form.querySelectorAll(".var-list code").forEach((code) => code.addEventListener("click", () => {
    const area = form.elements.body;
    const at = area.selectionStart ?? area.value.length;
    area.value = area.value.slice(0, at) + code.textContent + area.value.slice(area.selectionEnd ?? at);
    area.focus();
  }));
  return { form, open: () => dialog({ title, body: form, wide: true,
    buttons: [{ label: t("Cancel"), value: false }, { label: saveLabel, value: true, kind: "primary" }] }) };
}

// ------------------------------------------------------------------ inbox settings

const settingsForm = document.getElementById("inbox-settings");
if (settingsForm) {
  const id = settingsForm.dataset.inboxId;
  const f = settingsForm.elements;
  try {
    const list = document.getElementById("tz-list");
    for (const tz of Intl.supportedValuesOf("timeZone")) list.append(h("option", { value: tz }));
  } catch { /* old browser */ }
  const hoursOn = () => f.hours_on.checked;
  const syncHours = () => document.getElementById("hours-table").classList.toggle("muted", !hoursOn());
  f.hours_on.addEventListener("change", syncHours);
  syncHours();
  settingsForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      name: f.name.value.trim(),
      assignment: f.assignment.value,
      agents_assign_others: f.agents_assign_others.checked,
      reply_assigns: f.reply_assigns.checked,
      timezone: f.timezone.value.trim() || "UTC",
      reopen_days: Number(f.reopen_days.value),
      response_due_hours: Number(f.response_due_hours.value),
      greeting: f.greeting.value.trim() || null,
      away_message: f.away_message.value.trim() || null,
    };
    if (f.human_agent) body.human_agent = f.human_agent.checked;
    if (f.quiet_on) body.quiet_hours = f.quiet_on.checked ? { start: f.quiet_start.value, end: f.quiet_end.value } : null;
    if (hoursOn()) {
      const days = {};
      document.querySelectorAll("#hours-table tr[data-day]").forEach((tr) => {
        const d = tr.dataset.day;
        days[d] = f["day_" + d].checked ? [[f["from_" + d].value, f["to_" + d].value]] : [];
      });
      body.business_hours = { timezone: body.timezone, days };
    } else {
      body.business_hours = null;
    }
    const btn = settingsForm.querySelector('button[type="submit"]');
    btn.disabled = true;
    try {
      await api(`/inboxes/${id}`, { method: "PATCH", body });
      if (ME.role === "admin") {
        const ids = [...settingsForm.querySelectorAll('input[name="member"]:checked')].map((i) => Number(i.value));
        await api(`/inboxes/${id}/members`, { method: "PUT", body: { user_ids: ids } });
      }
      const note = document.getElementById("saved-note");
      note.hidden = false;
      setTimeout(() => { note.hidden = true; }, 2500);
      toast(t("Inbox settings saved"), "success");
    } catch (err) {
      toast(err.message, "error", { timeout: 8000 });
    } finally {
      btn.disabled = false;
    }
  });
}

// ------------------------------------------------------------------ users

const usersTable = document.getElementById("users-table");
if (usersTable && usersTable.dataset.editable === "true") {
  const patch = async (tr, body) => {
    try {
      await api(`/users/${tr.dataset.userId}`, { method: "PATCH", body });
      toast(t("Saved"), "success", { timeout: 1800 });
      return true;
    } catch (err) {
      toast(err.message, "error");
      return false;
    }
  };
  usersTable.addEventListener("change", (e) => {
    const field = e.target.dataset.field;
    if (!field) return;
    const tr = e.target.closest("tr");
    patch(tr, { [field]: field === "capacity" ? Number(e.target.value) : e.target.value });
  });
  usersTable.addEventListener("click", async (e) => {
    const btn = e.target.closest("[data-toggle-active]");
    if (!btn) return;
    const active = btn.dataset.toggleActive === "true";
    if (!active) {
      const ok = await dialog({ title: t("Deactivate this user?"), body: h("p", t("They can no longer sign in, and their open conversations return to the unassigned queue.")),
        buttons: [{ label: t("Cancel"), value: false }, { label: t("Deactivate"), value: true, kind: "danger" }] });
      if (!ok) return;
    }
    if (await patch(btn.closest("tr"), { active })) location.reload();
  });
  document.getElementById("add-user").addEventListener("click", async () => {
    const { form, open } = formDialog(t("Add user"), "user-form", {}, t("Add user"));
    form.elements.password.value = Math.random().toString(36).slice(2, 8) + Math.random().toString(36).slice(2, 8);
    if (!(await open())) return;
    const data = Object.fromEntries(new FormData(form));
    try {
      await api("/users", { method: "POST", body: data });
      toast(t("User added"), "success");
      location.reload();
    } catch (err) { toast(err.message, "error", { timeout: 8000 }); }
  });
}

// ------------------------------------------------------------------ invitations

const invitesCard = document.getElementById("invites");
if (invitesCard) {
  const mailOn = invitesCard.dataset.mail === "true";
  const links = new Map(); // invite id -> the link handed back this visit (no mail only)
  const ROLE = { agent: t("Agent"), lead: t("Team lead"), admin: t("Admin") };
  const showLink = (invite) => dialog({
    title: t("Hand this link to {email}", { email: invite.email }),
    body: h("div",
      h("p", t("Mail is not set up, so nobody mailed it. Send it to them privately: it works once, for 7 days.")),
      h("div.copy-row", h("code.invite-link", { dir: "ltr" }, invite.link),
        h("button.btn.sm", { type: "button", "data-copy": invite.link }, t("Copy link")))),
  });
  const status = (i) => {
    if (i.expired) return h("span.chip.red.soft", t("Expired"));
    if (i.mail === "sent") return h("span.chip.calm", t("Mailed"));
    if (i.mail === "failing") return h("span.chip.amber", { title: i.mail_error || "" }, t("Mail failing, retrying"));
    if (i.mail === "queued") return h("span.chip", t("Sending"));
    return h("span.chip.plain", t("Waiting for them"));
  };
  const row = (i) => h("tr", { "data-invite-id": i.id },
    h("td", h("div.person-name", h("bdi", i.name || i.email)), i.name ? h("div.muted", { dir: "ltr", style: "text-align:start" }, i.email) : null),
    h("td", ROLE[i.role] || i.role),
    h("td", h("time", { datetime: i.sent_at, title: fullDateTime(i.sent_at) }, relTime(i.sent_at))),
    h("td", status(i)),
    h("td.num", { style: "white-space:nowrap" },
      links.has(i.id) ? [h("button.btn.sm", { type: "button", "data-copy": links.get(i.id) }, t("Copy link")), " "] : null,
      h("button.btn.sm", { type: "button", "data-resend": i.id }, t("Resend")), " ",
      h("button.btn.sm.ghost", { type: "button", "data-revoke": i.id }, t("Revoke"))));
  const load = async () => {
    const { items } = await api("/invites");
    invitesCard.querySelector("tbody").replaceChildren(...(items.length ? items.map(row)
      : [h("tr", h("td.empty-row", { colspan: 5 }, t("No pending invitations.")))]));
  };
  const issued = async (invite, verb) => {
    if (invite.link) {
      links.set(invite.id, invite.link);
      await load();
      await showLink(invite);
    } else {
      toast(verb === "resend" ? t("A new invitation is on its way to {email}", { email: invite.email })
        : t("Invitation mailed to {email}", { email: invite.email }), "success");
      await load();
    }
  };
  document.getElementById("invite-user").addEventListener("click", async () => {
    const { form, open } = formDialog(t("Invite a teammate"), "invite-form", {}, mailOn ? t("Send invitation") : t("Create invitation link"));
    if (!(await open())) return;
    const data = Object.fromEntries(new FormData(form));
    try {
      await issued(await api("/users/invite", { method: "POST", body: data }), "invite");
    } catch (err) { toast(err.message, "error", { timeout: 8000 }); }
  });
  invitesCard.addEventListener("click", async (e) => {
    const resend = e.target.closest("[data-resend]");
    const revoke = e.target.closest("[data-revoke]");
    try {
      if (resend) {
        await issued(await api(`/invites/${resend.dataset.resend}/resend`, { method: "POST" }), "resend");
      } else if (revoke) {
        const ok = await dialog({ title: t("Revoke this invitation?"), body: h("p", t("Its link stops working at once.")),
          buttons: [{ label: t("Cancel"), value: false }, { label: t("Revoke"), value: true, kind: "danger" }] });
        if (!ok) return;
        await api(`/invites/${revoke.dataset.revoke}`, { method: "DELETE" });
        links.delete(Number(revoke.dataset.revoke));
        toast(t("Invitation revoked"), "success", { timeout: 1800 });
        await load();
      }
    } catch (err) { toast(err.message, "error", { timeout: 8000 }); }
  });
  load();
}

// ------------------------------------------------------------------ canned replies

const cannedTable = document.getElementById("canned-table");
if (cannedTable) {
  const inboxes = new Map(JSON.parse(document.getElementById("canned-inboxes").textContent).map((i) => [i.id, i.name]));
  const canEdit = ME.role !== "agent";
  if (!canEdit) document.getElementById("add-canned").hidden = true;
  const edit = async (row) => {
    const { form, open } = formDialog(row ? t("Edit canned reply") : t("New canned reply"), "canned-form", row || {});
    if (!(await open())) return;
    const data = Object.fromEntries(new FormData(form));
    data.inbox_id = data.inbox_id ? Number(data.inbox_id) : null;
    try {
      await api(row ? `/canned-replies/${row.id}` : "/canned-replies", { method: row ? "PATCH" : "POST", body: data });
      toast(t("Saved"), "success", { timeout: 1800 });
      load();
    } catch (err) {
      toast(err.message, "error", { timeout: 8000 });
    }
  };
  const remove = async (row) => {
    const ok = await dialog({ title: t("Delete /{shortcut}?", { shortcut: row.shortcut }), body: h("p", row.title),
      buttons: [{ label: t("Cancel"), value: false }, { label: t("Delete"), value: true, kind: "danger" }] });
    if (!ok) return;
    try { await api(`/canned-replies/${row.id}`, { method: "DELETE" }); load(); } catch (err) { toast(err.message, "error"); }
  };
  const load = async () => {
    const { items } = await api("/canned-replies");
    cannedTable.tBodies[0].replaceChildren(...(items.length ? items.map((r) => h("tr.canned-row",
      h("td", "/" + r.shortcut), h("td", h("bdi", r.title)), h("td", h("div.body-preview", { dir: "auto" }, r.body)),
      h("td", r.inbox_id ? inboxes.get(r.inbox_id) || "#" + r.inbox_id : h("span.muted", t("All inboxes"))),
      h("td.num", canEdit ? [h("button.btn.sm", { type: "button", onclick: () => edit(r) }, t("Edit")), " ",
        h("button.btn.sm.ghost", { type: "button", onclick: () => remove(r) }, t("Delete"))] : null)))
      : [h("tr", h("td.empty-row", { colspan: 5 }, t("No canned replies yet.")))]));
  };
  document.getElementById("add-canned").addEventListener("click", () => edit(null));
  load();
}
