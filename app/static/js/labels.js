// Labels on the inbox page: the team's list, chips, and one picker used three ways
// (the conversation header, the list's label filter, the bulk bar), kept live.

import { ME, api, h, icon, t, toast } from "./core.js";
import { popover } from "./shell.js";
import { S, labelKey, remember } from "./state.js";

export { labelKey };

export const L = { items: [], byKey: new Map() };


export const canManageLabels = () => ME.role === "lead" || ME.role === "admin";

export function setLabels(items) {
  L.items = [...items].sort((a, b) => labelKey(a.name).localeCompare(labelKey(b.name)));
  L.byKey = new Map(L.items.map((l) => [labelKey(l.name), l]));
}

export async function loadLabels() {
  setLabels((await api("/labels")).items);
}

/** A label as a chip in its colour; `onRemove` adds a remove button. */
export function labelChip(name, { onRemove } = {}) {
  const label = L.byKey.get(labelKey(name));
  const chip = h("span.label-chip", { dataset: { label: name }, title: name },
    h("span.label-dot", { "aria-hidden": "true" }), h("bdi.label-name", name));
  chip.style.setProperty("--label", label ? label.color : "#838c9b");
  if (onRemove) {
    chip.append(h("button.label-x", { type: "button", "aria-label": t("Remove label {name}", { name }), title: t("Remove label {name}", { name }),
      onclick: (e) => { e.stopPropagation(); e.preventDefault(); onRemove(); } }, icon("x")));
  }
  return chip;
}

/** A row of chips (null when there are none). */
export function labelChips(names) {
  return names && names.length ? h("span.label-chips", names.map((n) => labelChip(n))) : null;
}

/**
 * A searchable label picker in `panel`, opened by `button`: each label is a checkbox item whose
 * state `states()` gives (key -> "on" | "mixed"); choosing one calls `onToggle(label, on)` and
 * the picker stays open for the next. Leads and admins can create a label by typing its name
 * (`create: true`). Arrow keys move through the items; Enter on the search picks the first.
 */
export function labelPicker(button, panel, { title, states, onToggle, create = false }) {
  const search = h("input.menu-search", { type: "search", placeholder: t("Find a label"), "aria-label": t("Find a label"),
    autocomplete: "off" });
  const list = h("div.menu-list.label-options");
  const choose = async (label, on) => {
    const typed = document.activeElement === search; // Enter in the search: ready for the next name
    try { await onToggle(label, on); } catch (e) { toast(e.message, "error"); }
    if (typed) search.value = "";
    fill();
    if (typed && panel.isConnected && !panel.hidden) search.focus();
  };
  const fill = () => {
    const q = labelKey(search.value);
    const state = states();
    const items = L.items.filter((l) => !q || labelKey(l.name).includes(q)).map((l) => {
      const st = state.get(labelKey(l.name));
      return h("button.menu-item.label-option", { type: "button", role: "menuitemcheckbox", dataset: { label: l.name },
        "aria-checked": st === "on" ? "true" : st === "mixed" ? "mixed" : "false", onclick: () => choose(l, st !== "on") },
      h("span.label-box", { "aria-hidden": "true" }, st === "on" ? icon("check") : st === "mixed" ? "–" : null), labelChip(l.name));
    });
    if (q && create && canManageLabels() && !L.byKey.has(q)) {
      items.push(h("button.menu-item.label-create", { type: "button", role: "menuitem", onclick: async () => {
        try {
          const made = await api("/labels", { method: "POST", body: { name: search.value } });
          setLabels([...L.items.filter((l) => l.id !== made.id), made]);
          search.value = "";
          await choose(made, true);
        } catch (e) { toast(e.message, "error"); }
      } }, icon("plus"), h("span", t("Create label “{name}”", { name: search.value.trim() }))));
    }
    if (!items.length) {
      items.push(h("p.menu-note", !L.items.length
        ? (canManageLabels() ? t("No labels yet: type a name to create one.") : t("No labels yet. Team leads and admins add them."))
        : t("No label matches.")));
    }
    list.replaceChildren(...items);
  };
  search.addEventListener("input", fill);
  search.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") { e.preventDefault(); list.querySelector("button")?.focus(); }
    if (e.key === "Enter") { e.preventDefault(); list.querySelector("button")?.click(); }
  });
  list.addEventListener("keydown", (e) => {
    const dir = { ArrowDown: 1, ArrowUp: -1 }[e.key];
    if (!dir) return;
    e.preventDefault();
    const buttons = [...list.querySelectorAll("button")];
    const i = buttons.indexOf(document.activeElement) + dir;
    if (i < 0) search.focus(); else buttons[Math.min(i, buttons.length - 1)]?.focus();
  });
  panel.replaceChildren(...[title ? h("div.menu-title", title) : null, search, list,
    ...(canManageLabels() ? [h("div.menu-sep"), h("a.menu-item.label-manage", { href: "/admin/labels" }, icon("settings"), h("span", t("Manage labels")))] : []),
  ].filter(Boolean));
  const pop = popover(button, panel, { onOpen: () => { search.value = ""; fill(); } });
  return { open: pop.open, close: pop.close, refresh: fill, get isOpen() { return pop.isOpen; } };
}

// ------------------------------------------------------------------ changing conversations

/** Add and take off labels on conversations (by name); the server answers their new state. */
export async function changeLabels(ids, { add = [], remove = [] }) {
  const res = await api("/conversations/bulk", { method: "POST", body: { ids, action: "labels", add_labels: add, remove_labels: remove } });
  for (const conv of res.items) document.dispatchEvent(new CustomEvent("conv-changed", { detail: remember(conv) }));
  return res.items;
}

const bars = new Map(); // conversation id -> its header label bar (kept across re-renders)

/**
 * The open conversation's labels under its name: chips that can be removed and the picker
 * ("l"). The same element is handed back for the same conversation so that an open picker
 * stays open (and focused) when the header is drawn again by a live update.
 */
export function labelBar(conv) {
  let bar = bars.get(conv.id);
  if (!bar) {
    bars.clear();
    const btn = h("button.label-add", { type: "button", "aria-haspopup": "true", title: t("Labels") + " (l)" }, icon("tag"), h("span.lbl"));
    const panel = h("div.menu.label-menu", { role: "menu", hidden: true });
    const current = () => S.convs.get(conv.id) || conv;
    const picker = labelPicker(btn, panel, {
      title: t("Labels"),
      create: true,
      states: () => new Map(current().labels.map((n) => [labelKey(n), "on"])),
      onToggle: (label, on) => changeLabels([conv.id], on ? { add: [label.name] } : { remove: [label.name] }),
    });
    bar = { el: h("div.thread-labels"), chips: h("span.label-chips"), btn, picker };
    bar.el.append(bar.chips, h("div.menu-wrap", btn, panel));
    bars.set(conv.id, bar);
  }
  const focused = bar.el.contains(document.activeElement) ? document.activeElement : null;
  bar.chips.replaceChildren(...conv.labels.map((n) => labelChip(n, {
    onRemove: () => changeLabels([conv.id], { remove: [n] }).catch((e) => toast(e.message, "error")),
  })));
  bar.btn.querySelector(".lbl").textContent = conv.labels.length ? "" : t("Add label");
  bar.btn.setAttribute("aria-label", t("Labels"));
  if (bar.picker.isOpen) bar.picker.refresh();
  if (focused) queueMicrotask(() => focused.isConnected && focused.focus({ preventScroll: true }));
  return bar;
}

// ------------------------------------------------------------------ bulk bar

/** "Label…" in the bulk bar: a label every selected conversation has is ticked (some: mixed). */
export function bulkLabels(button, panel, { ids }) {
  return labelPicker(button, panel, {
    title: t("Label the selected conversations"),
    states: () => {
      const convs = ids().map((id) => S.convs.get(id)).filter(Boolean);
      const counts = new Map();
      for (const c of convs) for (const n of c.labels) counts.set(labelKey(n), (counts.get(labelKey(n)) || 0) + 1);
      return new Map([...counts].map(([k, n]) => [k, n === convs.length ? "on" : "mixed"]));
    },
    onToggle: async (label, on) => {
      const items = await changeLabels(ids(), on ? { add: [label.name] } : { remove: [label.name] });
      const n = items.length;
      const name = label.name;
      const said = on
        ? (n === 1 ? t("Label {name} added to 1 conversation", { name }) : t("Label {name} added to {n} conversations", { name, n }))
        : (n === 1 ? t("Label {name} removed from 1 conversation", { name }) : t("Label {name} removed from {n} conversations", { name, n }));
      toast(said, "success", { timeout: 2500 });
    },
  });
}

// ------------------------------------------------------------------ the list's filter

/** The list's label filter: a picker and the chosen labels as removable chips. */
export function labelFilter(button, panel, chipsRow, { onChange }) {
  const chosen = () => S.filter.labels || [];
  const picker = labelPicker(button, panel, {
    title: t("Show conversations with all of"),
    states: () => new Map(chosen().map((n) => [labelKey(n), "on"])),
    onToggle: (label, on) => {
      const rest = chosen().filter((n) => labelKey(n) !== labelKey(label.name));
      onChange(on ? [...rest, label.name] : rest);
    },
  });
  const render = () => {
    const names = chosen();
    button.classList.toggle("active", names.length > 0);
    button.querySelector(".count").textContent = names.length ? names.length : "";
    chipsRow.hidden = !names.length;
    chipsRow.replaceChildren(h("span.muted", t("Labels:")), ...names.map((n) => labelChip(n, {
      onRemove: () => onChange(chosen().filter((x) => labelKey(x) !== labelKey(n))),
    })), ...(names.length > 1 ? [h("button.btn.link.sm", { type: "button", onclick: () => onChange([]) }, t("Clear"))] : []));
    if (picker.isOpen) picker.refresh();
  };
  return { render, picker };
}

// ------------------------------------------------------------------ live changes to the list

/**
 * A `labels.updated` event: the new list; a renamed or deleted label is renamed in (or taken
 * off) the conversations already loaded (`more`: copies held elsewhere, such as the open
 * thread's) and the list's filter. Returns true when the filter lost a label (load the list again).
 */
export function applyLabelsEvent(payload, more = []) {
  setLabels(payload.items || []);
  const change = payload.change || {};
  const before = change.previous_name;
  if (!before || (change.action !== "renamed" && change.action !== "deleted")) return false;
  const key = labelKey(before);
  const after = change.action === "renamed" ? change.label.name : null;
  const swap = (names) => names.flatMap((n) => (labelKey(n) === key ? (after ? [after] : []) : [n]));
  for (const conv of new Set([...S.convs.values(), ...S.items, ...more])) if (conv && conv.labels) conv.labels = swap(conv.labels);
  const filter = S.filter.labels || [];
  if (!filter.some((n) => labelKey(n) === key)) return false;
  S.filter.labels = swap(filter);
  return change.action === "deleted";
}
