// The status tabs stay on one row in every language and at every width: the tabs that do
// not fit (long words, counts, a narrow window) wait under "More"; the chosen one always shows.

import { popover } from "./shell.js";

/** Keep `row`'s tabs on one line, the overflow in the "More" menu next to it. */
export function fitTabs(row) {
  const wrap = row.parentElement.querySelector(".status-more");
  const btn = wrap.querySelector(".status-more-btn");
  const panel = wrap.querySelector(".status-more-menu");
  const tabs = [...row.querySelectorAll("[data-status-tab]")];
  const pop = popover(btn, panel);
  panel.addEventListener("click", () => pop.close());

  const fits = () => row.scrollWidth <= row.clientWidth + 1;
  const fit = () => {
    tabs.forEach((tab) => { tab.setAttribute("role", "tab"); row.append(tab); });
    wrap.hidden = true;
    if (fits()) return;
    wrap.hidden = false;
    for (const tab of [...tabs].reverse()) {
      if (fits()) break;
      if (tab.getAttribute("aria-selected") === "true") continue;
      tab.setAttribute("role", "menuitemradio");
      panel.prepend(tab);
    }
  };
  // a narrower window, another choice, a count that grew: fit again
  new ResizeObserver(fit).observe(row.parentElement);
  const watch = new MutationObserver(fit);
  tabs.forEach((tab) => watch.observe(tab, { attributeFilter: ["aria-selected"], childList: true, characterData: true, subtree: true }));
  document.fonts && document.fonts.ready.then(fit);
  fit();
}
