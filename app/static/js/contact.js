// The contact panel beside the thread: details the agent edits, identities, conversations in
// every inbox the agent sees, likely duplicates, "Merge with…", a new conversation, export, erase.

import { ME, api, avatar, channelIcon, channelName, debounce, dialog, h, icon, qs, shortDate, t, toast } from "./core.js";
import { on } from "./shell.js";
import { S, remember } from "./state.js";

const P = {
  contact: null, // the contact object shown (GET /contacts/<id>)
  editing: false,
  seq: 0,
};

const pane = () => document.getElementById("contact-pane");
const isOpen = () => document.getElementById("inbox-app").classList.contains("with-contact");
const canExport = () => ME.role === "lead" || ME.role === "admin";
const canErase = () => ME.role === "admin";
const nameOf = (c) => (c.erased ? t("Erased contact") : c.name);
const STATUS = () => ({ open: t("Open"), pending: t("Pending"), snoozed: t("Snoozed"), closed: t("Closed") });

export function toggleContact(btn) {
  const app = document.getElementById("inbox-app");
  const open = !app.classList.contains("with-contact");
  app.classList.toggle("with-contact", open);
  localStorage.setItem("switchboard.contactPanel", open ? "1" : "0");
  btn && btn.setAttribute("aria-pressed", open ? "true" : "false");
  const conv = S.openId && S.convs.get(S.openId);
  if (open && conv) renderContact(conv);
}

/** Show the contact of `conv` (called whenever the open conversation changes). */
export function renderContact(conv) {
  if (!isOpen() || !conv) return;
  const same = P.contact && P.contact.id === conv.contact.id;
  if (!same) {
    P.contact = null;
    P.editing = false;
    pane().replaceChildren(h("div.contact-card", avatar(conv.contact.name, { size: "lg" }), h("h2", h("bdi", nameOf(conv.contact)))),
      h("div.contact-sec.muted.sm", t("Loading…")));
  }
  refresh(conv.contact.id, conv.id);
}

const refresh = debounce((contactId, convId) => load(contactId, convId), 120);

async function load(contactId, convId = S.openId) {
  const seq = ++P.seq;
  try {
    const [contact, sugg] = await Promise.all([
      api(`/contacts/${contactId}`),
      api(`/contacts/${contactId}/suggestions`).catch(() => ({ items: [] })),
    ]);
    if (seq !== P.seq) return;
    P.contact = contact;
    draw(contact, sugg.items, convId);
  } catch (e) {
    if (seq !== P.seq) return;
    pane().replaceChildren(h("div.contact-sec.muted.sm", e.message));
  }
}

function draw(c, suggestions, convId) {
  const keepForm = P.editing && pane().querySelector("form.contact-form");
  const details = keepForm ? keepForm.closest(".contact-sec") : detailsView(c);
  pane().replaceChildren(...[
    h("div.contact-card", avatar(nameOf(c), { size: "lg" }), h("h2", h("bdi", nameOf(c))),
      c.erased ? h("span.chip.plain.xs", t("Erased")) : null,
      h("button.icon-btn.sm.close-contact", { type: "button", "aria-label": t("Close contact details"),
        onclick: () => toggleContact(document.querySelector(".panel-toggle")) }, icon("x"))),
    details,
    suggestions.length && !c.erased ? suggestionList(c, suggestions) : null,
    identityList(c),
    conversationList(c, convId),
    actions(c),
  ].filter(Boolean));
}

// ------------------------------------------------------------------ details

function detailsView(c) {
  const rows = [
    [t("Email"), c.email, "ltr"],
    [t("Phone"), c.phone, "ltr"],
  ].filter(([, v]) => v);
  const attrs = Object.entries(c.attributes || {});
  return h("section.contact-sec.contact-details",
    h("div.sec-head", h("h3", t("Details")),
      c.erased ? null : h("button.btn.link.sm.edit-contact", { type: "button", onclick: () => { P.editing = true; pane().querySelector(".contact-details").replaceWith(detailsForm(c)); } },
        icon("pen"), t("Edit"))),
    rows.length || attrs.length || c.notes ? null : h("p.muted.sm", t("No details yet.")),
    rows.length ? h("dl.kv", rows.map(([k, v, dir]) => [h("dt", k), h("dd", { dir }, v)])) : null,
    attrs.length ? h("dl.kv.attrs", attrs.map(([k, v]) => [h("dt", { dir: "auto" }, k), h("dd", { dir: "auto" }, String(v))])) : null,
    c.notes ? h("p.contact-notes", { dir: "auto" }, c.notes) : null);
}

function attrRow(key = "", value = "") {
  const row = h("div.attr-row",
    h("input.attr-key", { type: "text", value: key, placeholder: t("Name"), "aria-label": t("Attribute name"), maxlength: 64 }),
    h("input.attr-value", { type: "text", value: String(value), placeholder: t("Value"), "aria-label": t("Attribute value") }),
    h("button.icon-btn.sm.attr-remove", { type: "button", "aria-label": t("Remove attribute"), onclick: () => row.remove() }, icon("trash")));
  return row;
}

function field(label, name, value, attrs = {}) {
  const input = name === "notes"
    ? h("textarea", { name, rows: 3, dir: "auto", ...attrs }, value || "")
    : h("input", { name, value: value || "", ...attrs });
  return h("label.field", { dataset: { field: name } }, h("span", label), input, h("span.field-error"));
}

function detailsForm(c) {
  const attrs = h("div.attr-rows", Object.entries(c.attributes || {}).map(([k, v]) => attrRow(k, v)));
  const formError = h("p.form-error", { role: "alert", hidden: true });
  const form = h("form.contact-form", { novalidate: true },
    field(t("Name"), "name", c.has_name ? c.name : "", { type: "text", dir: "auto", placeholder: c.name, maxlength: 200 }),
    field(t("Email"), "email", c.email, { type: "email", dir: "ltr", autocomplete: "off" }),
    field(t("Phone"), "phone", c.phone, { type: "tel", dir: "ltr", autocomplete: "off", placeholder: "+14155550100" }),
    field(t("Notes"), "notes", c.notes),
    h("div.field", { dataset: { field: "attributes" } }, h("span", t("Attributes")), attrs,
      h("button.btn.link.sm.attr-add", { type: "button", onclick: () => { const r = attrRow(); attrs.append(r); r.querySelector("input").focus(); } },
        icon("plus"), t("Add attribute")), h("span.field-error")),
    formError,
    h("div.form-actions",
      h("button.btn.sm", { type: "button", onclick: () => { P.editing = false; load(c.id); } }, t("Cancel")),
      h("button.btn.sm.primary", { type: "submit" }, t("Save"))));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const attributes = {};
    for (const row of attrs.querySelectorAll(".attr-row")) {
      const k = row.querySelector(".attr-key").value.trim();
      if (k) attributes[k] = row.querySelector(".attr-value").value;
    }
    const body = { name: form.elements.name.value, email: form.elements.email.value, phone: form.elements.phone.value,
      notes: form.elements.notes.value, attributes };
    form.querySelectorAll(".field").forEach((f) => { f.classList.remove("invalid"); f.querySelector(".field-error").textContent = ""; });
    formError.hidden = true;
    try {
      const saved = await api(`/contacts/${c.id}`, { method: "PATCH", body });
      P.editing = false;
      toast(t("Contact saved"), "success");
      P.contact = saved;
      refresh(c.id, S.openId);
    } catch (err) {
      const fields = (err.details && err.details.fields) || {};
      let shown = false;
      for (const [name, why] of Object.entries(fields)) {
        const f = form.querySelector(`.field[data-field="${name}"]`);
        if (!f) continue;
        f.classList.add("invalid");
        f.querySelector(".field-error").textContent = why;
        shown = true;
      }
      if (!shown) { formError.textContent = err.message; formError.hidden = false; }
    }
  });
  const sec = h("section.contact-sec.contact-details", h("div.sec-head", h("h3", t("Edit contact"))), form);
  setTimeout(() => form.elements.name.focus(), 0);
  return sec;
}

// ------------------------------------------------------------------ lists

function identityList(c) {
  return h("section.contact-sec", h("h3", t("Identities")),
    c.identities.length ? h("ul.ident-list", c.identities.map((i) => h("li", channelIcon(i.channel),
      h("div", h("div.ext", { dir: "ltr" }, i.external_id),
        h("div.muted.sm", i.inbox_name || channelName(i.channel),
          i.opted_out ? h("span.chip.red.soft.xs", t("Opted out")) : null,
          i.undeliverable ? h("span.chip.red.soft.xs", { title: i.undeliverable }, t("Undeliverable")) : null))))) : h("p.muted.sm", t("None")));
}

function conversationList(c, convId) {
  return h("section.contact-sec", h("h3", t("Conversations")),
    h("ul.other-convs", c.conversations.map((o) => h("li", h("a.other-conv" + (o.id === convId ? ".current" : ""),
      { href: "#c=" + o.id, "aria-current": o.id === convId ? "true" : null },
      channelIcon(o.inbox.channel),
      h("div.grow", h("div.other-top", h("span", { dir: "auto" }, o.inbox.name), h("span.status-pill.sm." + o.status, STATUS()[o.status])),
        h("div.muted.sm.ellipsis", { dir: "auto" }, (o.last_message && o.last_message.body) || "")),
      h("time.muted.sm", { datetime: o.last_activity_at }, o.last_activity_at ? shortDate(o.last_activity_at) : ""))))));
}

function suggestionList(c, items) {
  return h("section.contact-sec.suggestions", h("h3", t("Possibly the same person")),
    h("ul.ident-list", items.map((s) => h("li.suggestion", avatar(s.name, { size: "sm" }),
      h("div.grow", h("div", h("bdi", s.name)),
        h("div.muted.sm", s.shared.kind === "email" ? t("Same email: {value}", { value: s.shared.value }) : t("Same phone: {value}", { value: s.shared.value }))),
      h("button.btn.sm.merge-suggested", { type: "button", onclick: () => previewMerge(c, s) }, t("Merge"))))));
}

function actions(c) {
  if (c.erased) return null;
  return h("section.contact-sec.contact-actions",
    h("button.btn.sm.new-conv", { type: "button", onclick: () => newConversation(c) }, icon("send"), t("New conversation")),
    h("button.btn.sm.merge-with", { type: "button", onclick: () => mergeSearch(c) }, icon("users"), t("Merge with…")),
    canExport() ? h("a.btn.sm.export-contact", { href: `/api/v1/contacts/${c.id}/export`, download: `contact-${c.id}.json` }, icon("download"), t("Export")) : null,
    canErase() ? h("button.btn.sm.danger-ghost.erase-contact", { type: "button", onclick: () => erase(c) }, icon("trash"), t("Erase")) : null);
}

// ------------------------------------------------------------------ merge

async function mergeSearch(c) {
  const input = h("input.merge-search", { type: "search", placeholder: t("Name, email or phone"), "aria-label": t("Find a contact"), autocomplete: "off" });
  const results = h("ul.merge-results", { role: "listbox", "aria-label": t("Contacts") });
  let picked = null;
  const run = debounce(async () => {
    const q = input.value.trim();
    if (!q) { results.replaceChildren(); return; }
    try {
      const data = await api("/contacts" + qs({ q, exclude: c.id }));
      results.replaceChildren(...(data.items.length ? data.items.map((o) => h("li", h("button.merge-pick", { type: "button", role: "option",
        onclick: () => { picked = o; dlg.querySelector(".modal-foot .btn").click(); } },
      avatar(o.name, { size: "sm" }), h("span.grow", h("bdi", o.name),
        h("span.muted.sm", { dir: "ltr" }, [o.email, o.phone, ...o.identities.map((i) => i.external_id)].filter(Boolean).slice(0, 2).join(" · ")))))) : [h("li.muted.sm", t("No contact found"))]));
    } catch (e) { results.replaceChildren(h("li.muted.sm", e.message)); }
  }, 250);
  input.addEventListener("input", run);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); results.querySelector(".merge-pick")?.click(); }
    if (e.key === "ArrowDown") { e.preventDefault(); results.querySelector(".merge-pick")?.focus(); }
  });
  const pending = dialog({ title: t("Merge {name} with…", { name: nameOf(c) }), body: [h("p.muted.sm", t("Find the other contact. Its conversations and identities move to {name}.", { name: nameOf(c) })), input, results],
    buttons: [{ label: t("Cancel"), value: null }] });
  const dlg = document.querySelector("dialog.modal:last-of-type");
  setTimeout(() => input.focus(), 0);
  await pending;
  if (picked) previewMerge(c, picked);
}

async function previewMerge(c, other) {
  let plan;
  try {
    plan = await api(`/contacts/${c.id}/merge` + qs({ other_id: other.id }));
  } catch (e) { toast(e.message, "error"); return; }
  const moving = plan.conversations;
  const body = h("div.merge-preview",
    h("p", t("{other} will be merged into {name}, then removed.", { other: plan.other.name, name: plan.survivor.name })),
    h("h3", t("Identities that move")),
    h("ul.ident-list", plan.identities.map((i) => h("li", channelIcon(i.channel), h("span.ext", { dir: "ltr" }, i.external_id)))),
    h("h3", t("Conversations that move")),
    moving.length ? h("ul.other-convs", moving.map((o) => h("li.other-conv", channelIcon(o.inbox.channel),
      h("div.grow", h("div.other-top", h("span", { dir: "auto" }, o.inbox.name), h("span.status-pill.sm." + o.status, STATUS()[o.status])),
        h("div.muted.sm.ellipsis", { dir: "auto" }, (o.last_message && o.last_message.body) || ""))))) : h("p.muted.sm", t("None")),
    plan.hidden_conversations ? h("p.muted.sm", t("And {n} in inboxes you cannot see.", { n: plan.hidden_conversations })) : null,
    Object.keys(plan.details).length ? h("p.muted.sm", t("Details {name} lacks are taken from {other}.", { name: plan.survivor.name, other: plan.other.name })) : null);
  const ok = await dialog({ title: t("Merge contacts"), body, wide: true,
    buttons: [{ label: t("Cancel"), value: false }, { label: t("Merge"), value: true, kind: "primary" }] });
  if (!ok) return;
  try {
    const merged = await api(`/contacts/${c.id}/merge`, { method: "POST", body: { other_id: other.id } });
    toast(t("{other} was merged into {name}", { other: plan.other.name, name: merged.name }), "success");
    P.contact = merged;
    refresh(merged.id, S.openId);
  } catch (e) { toast(e.message, "error"); }
}

// ------------------------------------------------------------------ new conversation

async function newConversation(c) {
  let reach;
  try { reach = await api(`/contacts/${c.id}/reach`); } catch (e) { toast(e.message, "error"); return; }
  const options = reach.items;
  if (!options.length) {
    dialog({ title: t("New conversation"), body: h("p", t("None of this contact's inboxes lets the business write first. Add an email address or a phone number to reach them by email or SMS.")) });
    return;
  }
  const select = h("select.reach-select", { "aria-label": t("From inbox") }, options.map((o, i) => h("option", { value: i, disabled: !o.allowed || null },
    `${o.inbox.name} → ${o.address}` + (o.allowed ? "" : ` (${o.reason})`))));
  const first = options.findIndex((o) => o.allowed);
  if (first >= 0) select.value = String(first);
  const subject = h("input.reach-subject", { type: "text", dir: "auto", "aria-label": t("Subject"), placeholder: t("Subject") });
  const text = h("textarea.reach-body", { rows: 5, dir: "auto", "aria-label": t("Message"), placeholder: t("Write the first message…") });
  const why = h("p.form-error", { role: "alert", hidden: true });
  const sync = () => { const o = options[Number(select.value)]; subject.hidden = !(o && o.subject); };
  select.addEventListener("change", sync);
  sync();
  for (;;) {
    const ok = await dialog({ title: t("New conversation with {name}", { name: nameOf(c) }), wide: true,
      body: [h("label.field", h("span", t("From inbox")), select), subject, text, why],
      buttons: [{ label: t("Cancel"), value: false }, { label: t("Send"), value: true, kind: "primary" }] });
    if (!ok) return;
    const o = options[Number(select.value)];
    try {
      const res = await api(`/contacts/${c.id}/conversations`, { method: "POST",
        body: { inbox_id: o.inbox.id, address: o.address, subject: subject.value, body: text.value } });
      toast(t("Message queued"), "success");
      location.hash = "c=" + res.conversation.id;
      return;
    } catch (e) { why.textContent = e.message; why.hidden = false; }
  }
}

// ------------------------------------------------------------------ erase

async function erase(c) {
  const typed = h("input.erase-confirm", { type: "text", dir: "auto", "aria-label": t("Type ERASE to confirm"), placeholder: "ERASE", autocomplete: "off" });
  const ok = await dialog({ title: t("Erase {name}?", { name: nameOf(c) }), body: [
    h("p", t("Every message, file and identity of this contact is deleted, in every inbox. The conversations stay, closed, as \"Erased contact\". This cannot be undone.")),
    h("label.field", h("span", t("Type ERASE to confirm")), typed)],
  buttons: [{ label: t("Cancel"), value: false }, { label: t("Erase"), value: true, kind: "danger" }] });
  if (!ok) return;
  if (typed.value.trim().toUpperCase() !== "ERASE") { toast(t("Not erased: type ERASE to confirm."), "error"); return; }
  try {
    await api(`/contacts/${c.id}`, { method: "DELETE" });
    toast(t("Contact erased"), "success");
    load(c.id);
  } catch (e) { toast(e.message, "error"); }
}

// ------------------------------------------------------------------ live

function onContact(payload) {
  if (!payload) return;
  const ids = new Set([payload.id, payload.merged_id].filter(Boolean));
  const { merged_id: _, ...ref } = payload;
  for (const conv of [...S.convs.values()]) {
    if (!ids.has(conv.contact.id)) continue;
    const next = remember({ ...conv, contact: { ...conv.contact, ...ref } });
    document.dispatchEvent(new CustomEvent("conv-changed", { detail: next }));
  }
  if (P.contact && ids.has(P.contact.id) && isOpen()) refresh(payload.id, S.openId);
}

on("contact.updated", onContact);
on("contact.merged", onContact);
