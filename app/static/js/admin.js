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
      h("td", "/" + r.shortcut), h("td", r.title), h("td", h("div.body-preview", { dir: "auto" }, r.body)),
      h("td", r.inbox_id ? inboxes.get(r.inbox_id) || "#" + r.inbox_id : h("span.muted", t("All inboxes"))),
      h("td.num", canEdit ? [h("button.btn.sm", { type: "button", onclick: () => edit(r) }, t("Edit")), " ",
        h("button.btn.sm.ghost", { type: "button", onclick: () => remove(r) }, t("Delete"))] : null)))
      : [h("tr", h("td.empty-row", { colspan: 5 }, t("No canned replies yet.")))]));
  };
  document.getElementById("add-canned").addEventListener("click", () => edit(null));
  load();
}
