// Mentions in private notes: "@" offers the teammates who can see the conversation,
// inserts @[Name](user:<id>), and the thread shows each mention as a chip.

import { ME, avatar, h, t } from "./core.js";
import { S, assignable } from "./state.js";

/** The markup the server reads (app/inbox/mentions.py): the name as shown, then the user id. */
const MENTION = /@\[([^[\]\n]{1,120})\]\(user:(\d{1,12})\)/g;
const MAX_SHOWN = 8;

const fold = (s) => String(s || "").normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();

/** Teammates who can see a conversation of `inboxId`, without me. */
export function mentionable(inboxId) {
  return assignable(inboxId).filter((u) => u.id !== ME.id);
}

/** A note's text as nodes: plain text, with each mention as a chip (never parsed as HTML). */
export function withMentions(text) {
  const out = [];
  let at = 0;
  for (const m of String(text || "").matchAll(MENTION)) {
    if (m.index > at) out.push(text.slice(at, m.index));
    const id = Number(m[2]);
    const now = S.users.find((u) => u.id === id);
    out.push(h("span.mention" + (id === ME.id ? ".me" : ""), { dir: "auto", dataset: { userId: id },
      title: now && now.name !== m[1] ? now.name : null }, "@" + m[1]));
    at = m.index + m[0].length;
  }
  if (at < String(text || "").length) out.push(text.slice(at));
  return out;
}

/**
 * Offer teammates while `@name` is typed in `text` (a textarea inside `form`).
 * `enabled()` says whether mentions apply now (private notes only); `inboxId()` whose
 * members to offer. Arrow keys move, Enter or Tab insert, Escape closes.
 */
export function attachMentions(form, text, { enabled, inboxId }) {
  const pop = h("div.canned-pop.mention-pop", { hidden: true, role: "listbox", id: "mention-pop", "aria-label": t("Mention a teammate") });
  text.after(pop);
  const foot = form.querySelector(".composer-foot .composer-hint");
  if (foot) foot.after(h("span.composer-hint.mention-hint.muted", h("kbd", "@"), " ", t("mention a teammate")));
  let matches = [];
  let active = 0;

  const query = () => {
    if (!enabled()) return null;
    const upto = text.value.slice(0, text.selectionStart);
    const m = /(^|\s)@([^\s@[\]()]{0,30})$/u.exec(upto);
    return m ? { q: fold(m[2]), start: upto.length - m[2].length - 1 } : null;
  };
  const close = () => {
    pop.hidden = true;
    matches = [];
    text.removeAttribute("aria-activedescendant");
  };
  const draw = () => {
    if (!matches.length) {
      pop.replaceChildren(h("div.canned-empty.muted", t("No teammate matches")));
      text.removeAttribute("aria-activedescendant");
      return;
    }
    pop.replaceChildren(...matches.map((u, i) => h("div.canned-item.mention-item" + (i === active ? ".active" : ""), {
      role: "option", id: "mention-" + u.id, "aria-selected": i === active ? "true" : "false",
      onmousedown: (e) => { e.preventDefault(); insert(u); },
    }, avatar(u.name, { size: "xs", presence: u.availability }), h("span.canned-title", { dir: "auto" }, u.name),
    u.role !== "agent" ? h("span.muted", u.role === "admin" ? t("Admin") : t("Team lead")) : null)));
    text.setAttribute("aria-activedescendant", "mention-" + matches[active].id);
    pop.querySelector(".active")?.scrollIntoView({ block: "nearest" });
  };
  const lookup = () => {
    const found = query();
    if (!found) { close(); return; }
    const people = mentionable(inboxId());
    matches = people.filter((u) => fold(u.name).split(/\s+/).some((w) => w.startsWith(found.q)) || fold(u.name).includes(found.q))
      .sort((a, b) => a.name.localeCompare(b.name)).slice(0, MAX_SHOWN);
    active = 0;
    pop.hidden = false;
    draw();
  };
  const insert = (u) => {
    const found = query();
    if (!found) return;
    const name = u.name.replace(/[[\]\n]/g, " ").trim().slice(0, 120);
    const before = text.value.slice(0, found.start);
    const after = text.value.slice(text.selectionStart);
    const chip = `@[${name}](user:${u.id}) `;
    text.value = before + chip + after.replace(/^ /, "");
    const caret = (before + chip).length;
    text.setSelectionRange(caret, caret);
    close();
    text.dispatchEvent(new Event("input")); // the composer keeps the draft
    text.focus();
  };

  text.addEventListener("input", lookup);
  text.addEventListener("click", lookup);
  text.addEventListener("blur", () => setTimeout(close, 150));
  // capture: the popup's keys win over the composer's (Enter, Escape)
  form.addEventListener("keydown", (e) => {
    if (e.target !== text || pop.hidden) return;
    let handled = true;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (matches.length) active = (active + (e.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
      draw();
    } else if ((e.key === "Enter" && !e.ctrlKey && !e.metaKey) || e.key === "Tab") {
      if (matches.length) insert(matches[active]); else handled = false;
    } else if (e.key === "Escape") {
      close();
    } else {
      handled = false;
    }
    if (handled) { e.preventDefault(); e.stopPropagation(); }
  }, true);
  return { close };
}
