// Languages: the one a conversation is in (detected by the server) and the ones I speak.

import { LANG, ME, api, dialog, h, icon, t, toast } from "./core.js";

let names = null;
/** A language's name in the agent's interface language ("portugais"), from its code ("pt"). */
export function languageName(code) {
  try {
    names ||= new Intl.DisplayNames([LANG], { type: "language" });
    return names.of(code) || code;
  } catch {
    return code;
  }
}

/** The conversation's language as a chip (null when not known). */
export function languageChip(code, { compact = false } = {}) {
  if (!code) return null;
  const name = languageName(code);
  return h("span.chip.plain.lang-chip", { title: t("The customer writes in {language}", { language: name }), lang: code, dataset: { language: code } },
    icon("globe"), compact ? code.toUpperCase() : name);
}

/** The languages a teammate speaks, short ("PT · EN"), for menus. */
export function spokenCodes(user) {
  return (user.languages || []).map((c) => c.toUpperCase()).join(" · ");
}

/** "Languages I speak": a dialog from the user menu; automatic assignment prefers speakers. */
export async function editSpokenLanguages(codes) {
  const mine = new Set(ME.languages || []);
  const boxes = codes.map((code) => h("label.toggle-row", h("input", { type: "checkbox", value: code, checked: mine.has(code) || null }),
    h("span", { lang: code }, languageName(code))));
  const ok = await dialog({
    title: t("Languages I speak"),
    body: h("div.spoken-langs", h("p.muted", t("Conversations in these languages go to you first when they are assigned automatically.")), boxes),
    buttons: [{ label: t("Cancel"), value: false }, { label: t("Save"), value: true, kind: "primary" }],
  });
  if (!ok) return;
  const languages = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
  try {
    const me = await api("/me", { method: "PATCH", body: { languages } });
    ME.languages = me.languages;
    toast(t("Saved"), "success");
  } catch (e) {
    toast(e.message, "error");
  }
}

/** The user menu's "Languages I speak" item (its codes are in `data-languages`). */
export function bindSpokenLanguages() {
  const item = document.getElementById("menu-languages");
  if (!item) return;
  item.addEventListener("click", () => {
    document.getElementById("user-menu").hidden = true;
    editSpokenLanguages(item.dataset.languages.split(" ").filter(Boolean));
  });
}
