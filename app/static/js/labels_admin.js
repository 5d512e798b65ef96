// The labels page (team leads and admins): add, rename, recolour and delete labels.
// The page's shell (top bar, live connection) is started by admin.js.

import { api, dialog, h, t, toast } from "./core.js";
import { on } from "./shell.js";

const table = document.getElementById("labels-table");
const PALETTE = JSON.parse(document.getElementById("label-palette").textContent);

function chip(name, color) {
  const el = h("span.label-chip", { title: name }, h("span.label-dot", { "aria-hidden": "true" }), h("bdi.label-name", name));
  el.style.setProperty("--label", color);
  return el;
}

/** The add / edit form: a name, a colour from the palette or any colour, and a live preview. */
function labelForm(label) {
  const form = document.getElementById("label-form").content.firstElementChild.cloneNode(true);
  const { name, color } = form.elements;
  name.value = label ? label.name : "";
  color.value = label ? label.color : "";
  const swatches = form.querySelector(".label-swatches");
  const custom = h("input", { type: "color", "aria-label": t("Any colour"), title: t("Any colour") });
  const preview = form.querySelector(".label-preview");
  const pick = (value) => {
    color.value = value;
    custom.value = value;
    swatches.querySelectorAll(".label-swatch").forEach((b) => b.setAttribute("aria-pressed", b.dataset.color === value ? "true" : "false"));
    preview.replaceChildren(chip(name.value.trim() || t("Label"), value));
  };
  swatches.replaceChildren(...PALETTE.map((c) => {
    const b = h("button.label-swatch", { type: "button", dataset: { color: c }, "aria-label": c, title: c, "aria-pressed": "false", onclick: () => pick(c) });
    b.style.background = c;
    return b;
  }), custom);
  custom.addEventListener("input", () => pick(custom.value));
  name.addEventListener("input", () => pick(color.value));
  pick(color.value || PALETTE[(table.tBodies[0].querySelectorAll("tr[data-label-id]").length) % PALETTE.length]);
  return form;
}

async function edit(label) {
  const form = labelForm(label);
  const ok = await dialog({ title: label ? t("Edit label") : t("New label"), body: form,
    buttons: [{ label: t("Cancel"), value: false }, { label: label ? t("Save") : t("Add label"), value: true, kind: "primary" }] });
  if (!ok) return;
  const body = { name: form.elements.name.value, color: form.elements.color.value };
  try {
    await api(label ? `/labels/${label.id}` : "/labels", { method: label ? "PATCH" : "POST", body });
    toast(label ? t("Label saved") : t("Label added"), "success", { timeout: 1800 });
    load();
  } catch (err) {
    toast(err.message, "error", { timeout: 8000 });
  }
}

async function remove(label) {
  const used = label.conversations;
  const ok = await dialog({ title: t("Delete the label {name}?", { name: label.name }),
    body: h("p", used ? t("It comes off the {n} conversations that have it.", { n: used }) : t("No conversation has it.")),
    buttons: [{ label: t("Cancel"), value: false }, { label: t("Delete"), value: true, kind: "danger" }] });
  if (!ok) return;
  try {
    await api(`/labels/${label.id}`, { method: "DELETE" });
    toast(t("Label deleted"), "success", { timeout: 1800 });
    load();
  } catch (err) { toast(err.message, "error"); }
}

async function load() {
  const { items } = await api("/labels?usage=1");
  table.tBodies[0].replaceChildren(...(items.length ? items.map((l) => h("tr", { dataset: { labelId: l.id, label: l.name } },
    h("td", chip(l.name, l.color)),
    h("td.num", l.conversations
      ? h("a", { href: "/?label=" + encodeURIComponent(l.name), title: t("Show them in the inbox") }, String(l.conversations))
      : h("span.muted", "0")),
    h("td.num", h("button.btn.sm", { type: "button", onclick: () => edit(l) }, t("Edit")), " ",
      h("button.btn.sm.ghost", { type: "button", onclick: () => remove(l) }, t("Delete")))))
    : [h("tr", h("td.empty-row", { colspan: 3 }, t("No labels yet.")))]));
}

document.getElementById("add-label").addEventListener("click", () => edit(null));
on("labels.updated", () => load().catch(() => {}));
load().catch((err) => toast(err.message, "error"));
