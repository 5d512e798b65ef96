// The list's own tools: hiding automated mail, and on narrow screens (no sidebar) the inbox
// and channel filters in a menu and a selection mode (tap rows to select them for the bulk bar).

import { caps, channelIcon, channelName, h, t } from "./core.js";
import { popover } from "./shell.js";
import { S } from "./state.js";

let setFilter = () => {};

const listApp = () => document.getElementById("list-app");
const selecting = () => listApp().classList.contains("select-mode");

/** Wire the buttons; `change(filter)` sets the list's filter, `redraw()` draws the list again. */
export function bindListTools({ change, redraw }) {
  setFilter = change;
  const menu = document.getElementById("filter-menu");
  const pop = popover(document.getElementById("filters-btn"), menu);
  menu.addEventListener("click", (e) => { if (e.target.closest("[data-inbox], [data-channel]")) pop.close(); });
  document.getElementById("automated-filter").addEventListener("click", () =>
    change({ automated: S.filter.automated === "hide" ? "show" : "hide" }));

  const select = document.getElementById("select-btn");
  const setMode = (on) => {
    listApp().classList.toggle("select-mode", on);
    select.setAttribute("aria-pressed", String(on));
    if (!on) S.checked.clear();
    redraw();
  };
  select.addEventListener("click", () => setMode(!selecting()));
  document.querySelector("#bulk-bar .bulk-clear").addEventListener("click", () => setMode(false));
  // in selection mode a tap on a row selects it instead of opening it
  document.getElementById("conv-list").addEventListener("click", (e) => {
    const row = selecting() && e.target.closest(".conv-row");
    if (!row) return;
    e.preventDefault();
    row.parentElement.querySelector(".conv-check").click();
  });
}

/** The sidebar's inbox and channel filters again, for the menu narrow screens use. */
export function renderFilterMenu(inboxes, channels) {
  const item = (data, change, ...label) => h("button.menu-item", { type: "button", dataset: data, "aria-pressed": "false",
    onclick: () => setFilter(change) }, ...label);
  document.getElementById("filter-menu").replaceChildren(
    h("div.menu-title", t("Inboxes")),
    item({ inbox: "" }, { inbox: null, channel: null }, h("span", t("All inboxes"))),
    ...inboxes.map((i) => item({ inbox: i.id }, { inbox: i.id, channel: null }, channelIcon(i.channel), h("span", { dir: "auto" }, i.name))),
    ...(channels.length > 1 ? [h("div.menu-title", t("Channels")),
      ...channels.map((c) => item({ channel: c }, { channel: c, inbox: null }, channelIcon(c), h("span", channelName(c))))] : []));
  // only inboxes that receive mail get automated messages
  document.getElementById("automated-filter").hidden = !inboxes.some((i) => caps(i).mail) && S.filter.automated !== "hide";
}

/** Show which of these tools are on. */
export function renderListTools() {
  const hide = S.filter.automated === "hide";
  const auto = document.getElementById("automated-filter");
  auto.setAttribute("aria-pressed", String(hide));
  auto.classList.toggle("active", hide);
  document.getElementById("filters-btn").classList.toggle("active", !!(S.filter.inbox || S.filter.channel));
}
