// Connecting channels from the web: forms generated from a channel's fields (GET /channels),
// the add-inbox page, and on an inbox's page the health panel, "Check now", the credentials
// form (#reconnect) and Disconnect. Nothing here knows one channel from another.

import { api, channelIcon, dialog, h, icon, relTime, t, toast } from "./core.js";

// ------------------------------------------------------------------ the generated form

/** The input of the config field `name` inside `root`. */
const control = (root, name) => root.querySelector(`[data-config="${name}"]`);

const INPUT_TYPES = { number: "number", url: "url", email: "email", phone: "tel", secret: "password" };

/** A field's label and help in the user's language (the server's English as a fallback). */
const label = (f) => t(f.label);

/** One labelled input for a channel field; `set` marks a stored secret (left empty to keep). */
function fieldControl(f, { value, set, editing }) {
  const id = "cfg-" + f.name;
  const errId = id + "-error";
  const required = f.required && !(editing && (f.type === "secret" || f.type === "file"));
  // names of their own: an inbox setting on the same page may share a field's name
  const common = { id, name: "config-" + f.name, "aria-describedby": errId, required: required || null,
    dataset: { config: f.name, type: f.type } };
  let input;
  if (f.type === "bool") {
    input = h("input", { ...common, type: "checkbox", checked: value === true || value === "true" || null });
    return h("div.field.conn-field.full", { dataset: { field: f.name } },
      h("label.toggle-row", input, h("span", h("strong", label(f)), f.help ? h("span.hint", " · " + t(f.help)) : null)),
      h("span.field-error", { id: errId, role: "alert" }));
  }
  if (f.type === "choice") {
    input = h("select", common,
      f.required ? null : h("option", { value: "" }, "—"),
      (f.choices || []).map((c) => h("option", { value: c, selected: String(value ?? f.default ?? "") === c || null }, c)));
  } else if (f.type === "file") {
    input = h("textarea.mono", { ...common, rows: 4, dir: "ltr", spellcheck: "false",
      placeholder: set ? t("Set · leave empty to keep") : t("Paste the JSON file, or choose it below") });
    const picker = h("input", { type: "file", accept: ".json,application/json", "aria-label": t("Choose a file for {field}", { field: label(f) }) });
    picker.addEventListener("change", async () => {
      if (picker.files[0]) input.value = await picker.files[0].text();
    });
    input = [input, picker];
  } else {
    input = h("input", { ...common, type: INPUT_TYPES[f.type] || "text", dir: "ltr", spellcheck: "false",
      autocomplete: f.type === "secret" ? "new-password" : "off",
      value: f.type === "secret" ? null : (value ?? f.default ?? null),
      placeholder: f.type === "secret" ? (set ? t("Set · leave empty to keep") : (editing ? t("Not set") : null)) : null });
  }
  return h("div.field.conn-field" + (f.type === "file" ? ".full" : ""), { dataset: { field: f.name } },
    h("label", { for: id }, h("span", label(f)), f.required ? h("span.req", { title: t("Required") }, " *") : null,
      f.type === "secret" && set ? h("span.chip.xs.plain.set-chip", icon("lock"), t("set")) : null),
    input,
    f.help ? h("span.hint", t(f.help)) : null,
    h("span.field-error", { id: errId, role: "alert" }));
}

/**
 * A channel's settings form: `values` are the stored non-secret settings, `secretsSet` the
 * names of stored secrets. Returns the element and `read()` -> config (or throws with
 * `fields` when a value cannot be read, e.g. a file that is not JSON).
 */
export function channelFields(channel, { values = {}, secretsSet = new Set(), editing = false } = {}) {
  // editing an inbox: what is also a setting is changed under Settings, not here
  const fields = channel.fields.filter((f) => !(editing && f.setting));
  for (const f of fields) fieldLabels.set(f.name, label(f));
  const box = h("div.form-grid.conn-fields");
  for (const f of fields) {
    box.append(fieldControl(f, { value: values[f.name], set: secretsSet.has(f.name), editing }));
  }
  const read = () => {
    const config = {};
    const bad = {};
    for (const f of fields) {
      const el = control(box, f.name);
      if (f.type === "bool") { config[f.name] = el.checked; continue; }
      const raw = el.value.trim();
      if (!raw) {
        if (editing && (f.type === "secret" || f.type === "file")) continue; // keep the stored one
        if (editing && f.name in values) config[f.name] = ""; // cleared on purpose
        continue;
      }
      if (f.type === "number") config[f.name] = Number(raw);
      else if (f.type === "file") {
        try { config[f.name] = JSON.parse(raw); } catch { bad[f.name] = t("This is not a JSON file."); }
      } else config[f.name] = raw;
    }
    if (Object.keys(bad).length) throw Object.assign(new Error(t("Some fields need attention.")), { fields: bad });
    return config;
  };
  return { box, read };
}

/** Presets (e.g. mail providers): a picker that fills the fields it names, with its help link. */
function presetPicker(channel, box) {
  const presets = channel.presets || [];
  if (!presets.length) return null;
  const note = h("p.hint.preset-note");
  const select = h("select#preset", { "aria-describedby": "preset-note" },
    h("option", { value: "" }, t("Other / fill in by hand")),
    presets.map((p, i) => h("option", { value: String(i) }, t(p.label || p.name))));
  note.id = "preset-note";
  select.addEventListener("change", () => {
    const p = presets[Number(select.value)];
    note.replaceChildren();
    if (!p) return;
    for (const [name, v] of Object.entries(p.values || p.config || p.fields || {})) {
      const el = control(box, name);
      if (!el) continue;
      if (el.type === "checkbox") el.checked = !!v; else el.value = v;
    }
    // fields that take another's value (the login is the address) and follow it while
    // nobody types in them
    for (const [name, from] of Object.entries(p.copies || {})) {
      const el = control(box, name);
      const source = control(box, from);
      if (!el || !source) continue;
      el.value = source.value;
      el.dataset.follows = from;
      if (!source.dataset.copied) {
        source.dataset.copied = "1";
        let before = source.value;
        source.addEventListener("input", () => {
          box.querySelectorAll(`[data-follows="${from}"]`).forEach((t) => { if (t.value === before) t.value = source.value; });
          before = source.value;
        });
      }
    }
    const link = p.app_password_url || p.link || p.help_url;
    if (p.help) note.append(t(p.help), " ");
    if (link) note.append(h("a", { href: link, target: "_blank", rel: "noopener noreferrer" }, t("Create an app password"), " ↗"));
  });
  return h("div.field.full.preset-field", h("label", { for: "preset" }, h("span", t("Provider"))), select, note);
}

/** Clear, then show, each error next to its field; what names no field goes to `rest`. */
export function showFieldErrors(form, fields, rest) {
  form.querySelectorAll(".field.invalid").forEach((el) => el.classList.remove("invalid"));
  form.querySelectorAll(".field-error").forEach((el) => { el.textContent = ""; });
  const leftover = [];
  let first = null;
  for (const [name, why] of Object.entries(fields || {})) {
    const wrap = form.querySelector(`.field[data-field="${name}"]`);
    if (!wrap) { leftover.push(name === "config" ? why : `${name}: ${why}`); continue; }
    wrap.classList.add("invalid");
    wrap.querySelector(".field-error").textContent = why;
    wrap.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
    first = first || wrap.querySelector("input, select, textarea");
  }
  if (rest) { rest.textContent = leftover.join(" · "); rest.hidden = !leftover.length; }
  first?.focus();
}

// field name -> its label, for naming the checks about a field (set when a channel's form is built)
const fieldLabels = new Map();

/** A check's name for people: the field it is about, else its id in words ("smtp_login" -> "Smtp login"). */
function checkName(c) {
  if (c.label) return t(c.label);
  const named = fieldLabels.get(c.name) || fieldLabels.get(c.field);
  if (named) return named;
  const words = String(c.name || "").replace(/_/g, " ");
  return t(words.charAt(0).toUpperCase() + words.slice(1));
}

/** The list of live checks: a tick, a warning or a cross, what was checked and the provider's words. */
export function renderChecks(box, checks, { form } = {}) {
  box.hidden = !checks || !checks.length;
  box.replaceChildren(...(checks || []).map((c) => {
    const kind = !c.ok ? "bad" : c.warning ? "warn" : "ok";
    return h("li.check-item." + kind, { dataset: { check: c.name } },
      h("span.check-mark", { "aria-hidden": "true" }, icon(kind === "ok" ? "check" : kind === "warn" ? "alert" : "x")),
      h("span.visually-hidden", { ok: t("Passed:"), warn: t("Warning:"), bad: t("Failed:") }[kind]),
      h("span.check-name", checkName(c)),
      c.message ? h("span.check-msg", { dir: "auto" }, c.message) : null);
  }));
  if (form) { // a check that names a field is shown next to it too
    const fields = {};
    for (const c of checks || []) {
      const name = c.field || c.name;
      if (!c.ok && form.querySelector(`.field[data-field="${name}"]`)) fields[name] = c.message || t("Refused by the provider");
    }
    showFieldErrors(form, fields);
  }
}

/** Busy state of a form's main button: "Checking…" with a spinner, then its label again. */
function busy(btn, on) {
  if (on) {
    btn.dataset.label = btn.textContent;
    btn.replaceChildren(h("span.spinner.sm"), " ", t("Checking…"));
  } else if (btn.dataset.label) {
    btn.textContent = btn.dataset.label;
  }
  btn.disabled = on;
  btn.setAttribute("aria-busy", on ? "true" : "false");
}

/** Handle an API refusal of a form: field errors, failing checks or a message. */
function showRefusal(err, { form, checksBox, formError }) {
  const d = err.details || {};
  if (d.code === "invalid" && d.fields) {
    renderChecks(checksBox, []);
    showFieldErrors(form, d.fields, formError);
  } else if (d.code === "check_failed" && d.checks) {
    showFieldErrors(form, {}, formError);
    renderChecks(checksBox, d.checks, { form });
    formError.textContent = d.message || t("The provider refused these settings. Nothing was saved.");
    formError.hidden = false;
  } else {
    showFieldErrors(form, {}, formError);
    formError.textContent = err.message;
    formError.hidden = false;
  }
}

/** "Sign in with …" links for a channel an inbox can be connected to by signing in
 * (`sign_in` of `GET /api/v1/channels`); `inboxRef` is "new" or the inbox being repaired. */
function signInBlock(channel, inboxRef) {
  const providers = channel.sign_in || [];
  if (!providers.length) return null;
  const mailbox = h("input#sign-in-address", { type: "email", dir: "ltr", autocomplete: "off",
    placeholder: t("Shared mailbox address (optional)"), "aria-label": t("Shared mailbox address (optional)") });
  const follow = (ev) => { // the address, when given, opens a shared mailbox the account may use
    const address = mailbox.value.trim();
    if (address) ev.currentTarget.href += "&address=" + encodeURIComponent(address);
  };
  return h("div.sign-in-block",
    h("p.muted.sm", t("Or connect by signing in:")),
    h("div.sign-in-buttons", ...providers.map((p) => p.configured
      ? h("a.btn", { href: `/oauth/${encodeURIComponent(p.name)}/start?inbox=${encodeURIComponent(inboxRef)}`, dataset: { signIn: p.name }, onclick: follow },
        t("Sign in with {provider}", { provider: p.label }))
      : h("p.muted.sm", { dataset: { signIn: p.name } },
        t("{provider}: register an app and set its client id and secret on the server first (redirect URI: {uri}).",
          { provider: p.label, uri: p.redirect_uri })))),
    providers.some((p) => p.configured) ? mailbox : null,
    ...providers.filter((p) => p.secret_expiring).map((p) =>
      h("p.field-warning", { role: "status", dataset: { secretExpiring: p.name } },
        t("The {provider} sign-in app's client secret expires on {date}", { provider: p.label, date: p.secret_expires }))));
}

// ------------------------------------------------------------------ add an inbox

async function initAddInbox(root) {
  const picker = root.querySelector("#channel-picker");
  const formCard = root.querySelector("#connect-card");
  let channels = [];
  try { channels = await api("/channels"); } catch (e) { toast(e.message, "error"); return; }
  picker.replaceChildren(...channels.map((c) => {
    const needs = c.fields.filter((f) => f.required).map(label);
    return h("button.channel-card", { type: "button", dataset: { channel: c.channel }, onclick: () => pick(c) },
      h("span.channel-card-icon", channelIcon(c.channel)),
      h("span.channel-card-text",
        h("strong", t(c.label)),
        h("span.muted.sm", t("Needs: {fields}", { fields: needs.join(", ") }))));
  }));
  document.body.dataset.ready = "1";

  const pick = (channel) => {
    picker.querySelectorAll(".channel-card").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.channel === channel.channel)));
    const { box, read } = channelFields(channel);
    const nameInput = h("input#f-name", { name: "name", required: true, autocomplete: "off", dir: "auto", "aria-describedby": "f-name-error",
      placeholder: t("The name your team sees, e.g. Support") });
    const checksBox = h("ul.check-list", { hidden: true, "aria-live": "polite" });
    const formError = h("p.form-error", { role: "alert", hidden: true });
    const submit = h("button.btn.primary", { type: "submit" }, t("Connect"));
    const preset = presetPicker(channel, box);
    const form = h("form#connect-form", { novalidate: true, dataset: { channel: channel.channel } },
      h("div.form-grid",
        h("div.field.full", { dataset: { field: "name" } },
          h("label", { for: "f-name" }, h("span", t("Inbox name")), h("span.req", " *")), nameInput,
          h("span.field-error", { id: "f-name-error", role: "alert" }))),
      preset ? h("div.form-grid", preset) : null,
      signInBlock(channel, "new"),
      box, checksBox, formError,
      h("div.form-actions", h("a.btn", { href: "/admin/inboxes" }, t("Cancel")), submit));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      let config;
      try { config = read(); } catch (err) { showFieldErrors(form, err.fields, formError); return; }
      if (!nameInput.value.trim()) { showFieldErrors(form, { name: t("is required") }, formError); return; }
      busy(submit, true);
      renderChecks(checksBox, []);
      formError.hidden = true;
      try {
        const inbox = await api("/inboxes", { method: "POST", body: { channel: channel.channel, name: nameInput.value.trim(), config } });
        // the inbox's page shows what was checked and set up (warnings included)
        sessionStorage.setItem("switchboard.checks." + inbox.id, JSON.stringify(inbox.checks || []));
        location.href = `/admin/inboxes/${inbox.id}?connected=1`;
      } catch (err) {
        busy(submit, false);
        showRefusal(err, { form, checksBox, formError });
      }
    });
    formCard.querySelector(".card-head h2").replaceChildren(channelIcon(channel.channel), " ", t("Connect {channel}", { channel: t(channel.label) }));
    formCard.querySelector(".card-body").replaceChildren(form);
    formCard.hidden = false;
    nameInput.focus();
  };
  const wanted = new URLSearchParams(location.search).get("channel");
  const first = channels.find((c) => c.channel === wanted);
  if (first) pick(first);
}

// ------------------------------------------------------------------ one inbox: health, check, credentials, disconnect

async function initInboxAdmin(root) {
  const inbox = JSON.parse(document.getElementById("inbox-data").textContent);
  const checkBtn = root.querySelector("#check-now");
  const checksBox = root.querySelector("#check-results");
  const justChecked = sessionStorage.getItem("switchboard.checks." + inbox.id);
  if (justChecked) { // what the connect or save just checked and set up
    sessionStorage.removeItem("switchboard.checks." + inbox.id);
    try { renderChecks(checksBox, JSON.parse(justChecked)); } catch { /* not ours */ }
  }
  watchHandshake(root);
  // back from signing in with the provider: check at once (the check also finds the send path)
  if (new URLSearchParams(location.search).get("signed_in")) queueMicrotask(() => checkBtn?.click());

  document.getElementById("disconnect")?.addEventListener("click", async () => {
    const ok = await dialog({ title: t("Disconnect {name}?", { name: inbox.name }),
      body: h("p", t("Switchboard stops sending and receiving for this inbox. Its conversations stay readable.")),
      buttons: [{ label: t("Cancel"), value: false }, { label: t("Disconnect"), value: true, kind: "danger" }] });
    if (!ok) return;
    try {
      await api(`/inboxes/${inbox.id}`, { method: "DELETE" });
      location.href = `/admin/inboxes/${inbox.id}?disconnected=1`;
    } catch (err) { toast(err.message, "error", { timeout: 8000 }); }
  });
  checkBtn?.addEventListener("click", async () => {
    busy(checkBtn, true);
    try {
      const res = await api(`/inboxes/${inbox.id}/check`, { method: "POST" });
      renderChecks(checksBox, res.checks);
      checksBox.dataset.ok = String(res.ok);
      toast(res.ok ? t("Every check passed") : t("Some checks failed"), res.ok ? "success" : "error");
    } catch (err) {
      toast(err.message, "error");
    } finally {
      busy(checkBtn, false);
    }
  });

  const credCard = root.querySelector("#reconnect");
  if (credCard && inbox.active !== false) {
    let channels = [];
    try { channels = await api("/channels"); } catch (e) { toast(e.message, "error"); }
    const channel = channels.find((c) => c.channel === inbox.channel);
    if (channel) {
      const secretsSet = new Set(Object.entries(inbox.secrets || {}).filter(([, set]) => set).map(([name]) => name));
      const { box, read } = channelFields(channel, { values: inbox.config || {}, secretsSet, editing: true });
      const credChecks = h("ul.check-list", { hidden: true, "aria-live": "polite" });
      const formError = h("p.form-error", { role: "alert", hidden: true });
      const submit = h("button.btn.primary", { type: "submit" }, t("Check and save"));
      const form = h("form#credentials-form", { novalidate: true }, signInBlock(channel, String(inbox.id)), box, credChecks, formError,
        h("div.form-actions", submit));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        let config;
        try { config = read(); } catch (err) { showFieldErrors(form, err.fields, formError); return; }
        busy(submit, true);
        renderChecks(credChecks, []);
        formError.hidden = true;
        try {
          const saved = await api(`/inboxes/${inbox.id}`, { method: "PATCH", body: { config } });
          sessionStorage.setItem("switchboard.checks." + inbox.id, JSON.stringify(saved.checks || []));
          location.href = `/admin/inboxes/${inbox.id}?saved=1`;
        } catch (err) {
          busy(submit, false);
          showRefusal(err, { form, checksBox: credChecks, formError });
        }
      });
      credCard.querySelector(".card-body").replaceChildren(form);
    }
  }
  const openReconnect = () => {
    if (location.hash !== "#reconnect" || !credCard) return;
    credCard.scrollIntoView({ block: "start" });
    (credCard.querySelector('input[type="password"]') || credCard.querySelector("input, textarea"))?.focus({ preventScroll: true });
  };
  window.addEventListener("hashchange", openReconnect);
  openReconnect();

  document.body.dataset.ready = "1";
}

/** While the provider's verification call is awaited, re-read the health panel until it came. */
function watchHandshake(root) {
  if (!root.querySelector('[data-webhook-state="waiting"]')) return;
  const timer = setInterval(async () => {
    try {
      const resp = await fetch(location.pathname, { credentials: "same-origin" });
      if (!resp.ok) return;
      const fresh = new DOMParser().parseFromString(await resp.text(), "text/html");
      if (!fresh.querySelector('[data-webhook-state="verified"]')) return;
      clearInterval(timer);
      const grid = fresh.getElementById("health-grid");
      grid.querySelectorAll("time[data-rel]").forEach((el) => { el.textContent = relTime(el.getAttribute("datetime")); });
      root.querySelector("#health-grid").replaceWith(document.adoptNode(grid));
    } catch { /* next round */ }
  }, 3000);
}

/** Start whichever part of the page is there. */
export function initConnect() {
  const add = document.getElementById("add-inbox");
  if (add) initAddInbox(add);
  const admin = document.getElementById("inbox-admin");
  if (admin) initInboxAdmin(admin);
}
