// Message templates: the approved ones a channel takes outside its reply window
// (WhatsApp). The composer offers them when the window is closed: pick one, fill its
// parameters (the first is the contact's name to start with), check the preview, send.

import { api, h, icon, t, toast } from "./core.js";
import { firstName } from "./state.js";

const lists = new Map(); // inbox id -> Promise<list>

/** The inbox's approved templates (read once per page; the server keeps them briefly too). */
export function templatesFor(inboxId) {
  if (!lists.has(inboxId)) {
    const got = api(`/inboxes/${inboxId}/templates`).then((d) => d.items);
    got.catch(() => lists.delete(inboxId));
    lists.set(inboxId, got);
  }
  return lists.get(inboxId);
}

/** A template's body with its {{n}} filled by `params` (an empty one shows as {{n}}). */
export function renderTemplate(body, params) {
  return (body || "").replace(/\{\{\s*(\d+)\s*\}\}/g, (m, n) => params[Number(n) - 1] || m);
}

/** Open the picker for `conv`; resolves with the queued message, or null when cancelled. */
export async function pickTemplate(conv) {
  let items;
  try {
    items = await templatesFor(conv.inbox.id);
  } catch (e) {
    toast(e.message || t("The templates could not be loaded."), "error");
    return null;
  }
  return new Promise((resolve) => {
    const dlg = h("dialog.modal.wide.template-picker", { "aria-labelledby": "tpl-title" });
    const close = (value) => { dlg.close(); dlg.remove(); resolve(value); };
    // a template with a media header, a button value or named parameters is listed but
    // cannot be picked: the server refuses it too (template_unsupported)
    const choice = h("select#tpl-choice", { "aria-label": t("Template") },
      items.map((tpl, i) => h("option", { value: String(i), disabled: Boolean(tpl.unsupported) },
        `${tpl.name} · ${tpl.language} · ${tpl.category}`)));
    const firstSendable = items.findIndex((tpl) => !tpl.unsupported);
    if (firstSendable >= 0) choice.value = String(firstSendable);
    const paramsBox = h("div.tpl-params");
    const headerPreview = h("p.tpl-preview-header", { dir: "auto", hidden: true });
    const preview = h("p.tpl-preview", { dir: "auto", "aria-live": "polite" });
    const unsupported = h("p.muted.tpl-unsupported", { hidden: true },
      t("The inbox cannot fill this template (a media header, a button value or named parameters): send it from the platform's own tools."));
    const error = h("p.tpl-error", { role: "alert", hidden: true });
    const sendBtn = h("button.btn.primary", { type: "button" }, icon("send", "flip"), t("Send template"));
    let inputs = [];
    let headerInputs = [];
    const current = () => items[Number(choice.value)];
    const values = () => inputs.map((input) => input.value.trim());
    const headerValues = () => headerInputs.map((input) => input.value.trim());
    const refresh = () => {
      const tpl = current();
      headerPreview.hidden = !(tpl && tpl.header);
      headerPreview.textContent = tpl && tpl.header ? renderTemplate(tpl.header, headerValues()) : "";
      preview.textContent = tpl ? renderTemplate(tpl.body, values()) : "";
      unsupported.hidden = !(tpl && tpl.unsupported);
      sendBtn.disabled = !tpl || Boolean(tpl.unsupported) || [...headerValues(), ...values()].some((v) => !v);
    };
    const fill = () => {
      const tpl = current();
      inputs = Array.from({ length: tpl ? tpl.params : 0 }, (_, i) => h("input", {
        type: "text", dir: "auto", dataset: { param: String(i + 1) },
        value: i === 0 ? firstName(conv.contact.name) || conv.contact.name || "" : "",
        oninput: refresh,
      }));
      headerInputs = Array.from({ length: tpl && !tpl.unsupported ? tpl.header_params || 0 : 0 }, (_, i) =>
        h("input", { type: "text", dir: "auto", dataset: { headerParam: String(i + 1) }, oninput: refresh }));
      paramsBox.replaceChildren(
        ...headerInputs.map((input, i) =>
          h("label.field", h("span", t("Header parameter {n}", { n: `{{${i + 1}}}` })), input)),
        ...inputs.map((input, i) =>
          h("label.field", h("span", t("Parameter {n}", { n: `{{${i + 1}}}` })), input)));
      refresh();
    };
    choice.addEventListener("change", fill);
    sendBtn.addEventListener("click", async () => {
      const tpl = current();
      sendBtn.disabled = true;
      try {
        const msg = await api(`/conversations/${conv.id}/messages`, { method: "POST", body: {
          template: { name: tpl.name, language: tpl.language, params: values(), header_params: headerValues() },
          client_id: "tpl-" + Date.now() + "-" + Math.random().toString(36).slice(2, 8),
        } });
        close(msg);
      } catch (e) {
        error.hidden = false;
        error.textContent = e.message || t("The template could not be sent.");
        refresh();
      }
    });
    const body = items.length
      ? [h("p.muted", t("Outside the reply window only a template the platform approved can be sent.")),
        h("label.field", h("span", t("Template")), choice), paramsBox,
        unsupported, h("div.field", h("span", t("Preview")), h("div.tpl-card", headerPreview, preview)), error]
      : [h("p", t("This inbox has no approved templates yet: create them in the platform's template manager."))];
    dlg.append(
      h("header.modal-head", h("h2#tpl-title", t("Send a template")),
        h("button.icon-btn", { type: "button", "aria-label": t("Close"), onclick: () => close(null) }, icon("x"))),
      h("div.modal-body", ...body),
      h("footer.modal-foot",
        h("button.btn", { type: "button", onclick: () => close(null) }, t("Cancel")),
        items.length ? sendBtn : null));
    dlg.addEventListener("cancel", (e) => { e.preventDefault(); close(null); });
    document.body.append(dlg);
    if (items.length) fill();
    dlg.showModal();
  });
}
