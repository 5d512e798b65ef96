// Small accessible charts drawn as inline SVG: a line chart over days, a weekday x hour heat
// map and horizontal bars. Each chart is a <figure> whose SVG has a <title> and <desc>, marks
// its series by shape and dash as well as colour, writes its numbers in the picture, and comes
// with the same figures as a table (under "Show the figures") for screen readers and anyone.
// In right-to-left languages the picture is mirrored: time runs from right to left.

import { RTL, h, t } from "./core.js";

const NS = "http://www.w3.org/2000/svg";
let serial = 0;

/** An SVG element: s("rect", {x: 1}, child, "text"). */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** The physical x of a logical one (distance from the inline start) in a chart `width` wide. */
const px = (width, x, w = 0) => (RTL ? width - x - w : x);

/** A round upper bound for an axis, and its steps. */
function axis(max, steps = 4) {
  if (max <= 0) return { top: steps, step: 1 };
  const raw = max / steps;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * mag).find((m) => m >= raw)); // whole counts
  return { top: step * steps, step };
}

/** The SVG root with its <title> and <desc> (the accessible name and description). */
function root(width, height, title, desc, cls) {
  const id = "chart-" + ++serial;
  return s("svg", { class: "chart-svg " + cls, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-labelledby": `${id}-t ${id}-d`, direction: RTL ? "rtl" : "ltr", preserveAspectRatio: "xMidYMid meet" },
  s("title", { id: `${id}-t` }, title), s("desc", { id: `${id}-d` }, desc));
}

/** The figures behind a chart as a table, folded under "Show the figures". */
function figures(caption, head, rows) {
  return h("details.chart-figures",
    h("summary", t("Show the figures")),
    h("div.table-scroll", h("table.table.compact",
      h("caption.visually-hidden", caption),
      h("thead", h("tr", head.map((c, i) => h("th", { scope: "col", class: i ? "num" : null }, c)))),
      h("tbody", rows.map((r) => h("tr", r.map((c, i) => (i ? h("td.num", c) : h("th", { scope: "row" }, c)))))))));
}

/** The series' marks and names: the mark repeats the line's dash and its points' shape. */
function legend(series) {
  return h("ul.chart-legend", series.map((ser, n) => h("li",
    s("svg", { width: 26, height: 12, viewBox: "0 0 26 12", "aria-hidden": "true", class: "series " + ser.cls },
      s("line", { x1: 1, x2: 25, y1: 6, y2: 6, class: "line" }),
      n % 2 ? s("rect", { x: 10, y: 3, width: 6, height: 6, class: "dot" }) : s("circle", { cx: 13, cy: 6, r: 3, class: "dot" })),
    ser.label)));
}

/**
 * Lines over days. `days`: [{label, values: [..]}]; `series`: [{key, label, cls}] in the order
 * of `values` (the first is drawn with round marks and a solid line, the second square and dashed).
 */
export function lineChart({ title, desc, days, series }) {
  const W = 560, H = 220, top = 14, bottom = 30, start = 40, end = 14;
  const plotW = W - start - end, plotH = H - top - bottom;
  const max = Math.max(0, ...days.flatMap((d) => d.values));
  const { top: yTop, step } = axis(max);
  const y = (v) => top + plotH - (v / yTop) * plotH;
  const x = (i) => start + (days.length > 1 ? (i / (days.length - 1)) * plotW : plotW / 2);
  const svg = root(W, H, title, desc, "line-chart");
  for (let v = 0; v <= yTop; v += step) {
    svg.append(s("line", { x1: px(W, start), x2: px(W, W - end), y1: y(v), y2: y(v), class: "grid" + (v ? "" : " base") }),
      s("text", { x: px(W, start - 6), y: y(v) + 4, "text-anchor": "end", class: "tick" }, v));
  }
  const every = Math.max(1, Math.ceil(days.length / 7));
  days.forEach((d, i) => {
    if (i % every === 0 || i === days.length - 1 && days.length <= 7) {
      svg.append(s("text", { x: px(W, x(i)), y: H - 10, "text-anchor": "middle", class: "tick" }, d.label));
    }
  });
  series.forEach((ser, n) => {
    const points = days.map((d, i) => `${px(W, x(i))},${y(d.values[n])}`).join(" ");
    const g = s("g", { class: "series " + ser.cls }, s("polyline", { points, class: "line" }));
    days.forEach((d, i) => {
      const tip = s("title", {}, `${d.label}: ${ser.label} ${d.values[n]}`);
      g.append(n % 2
        ? s("rect", { x: px(W, x(i)) - 3, y: y(d.values[n]) - 3, width: 6, height: 6, class: "dot" }, tip)
        : s("circle", { cx: px(W, x(i)), cy: y(d.values[n]), r: 3.2, class: "dot" }, tip));
    });
    svg.append(g);
  });
  return h("figure.chart-figure", svg,
    legend(series),
    figures(title, [t("Day"), ...series.map((ser) => ser.label)], days.map((d) => [d.label, ...d.values])));
}

/**
 * A heat map: `rows` (weekdays) x 24 hours; `cells[r][hour]` counts. Each cell with
 * something in it shows its number, so the picture reads without its shades.
 */
export function heatMap({ title, desc, rows, cells, hourLabel }) {
  const W = 560, start = 46, end = 4, top = 22, cell = (W - start - end) / 24, rowH = 24;
  const H = top + rows.length * rowH + 6;
  const max = Math.max(0, ...cells.flat());
  const svg = root(W, H, title, desc, "heat-map");
  for (let hour = 0; hour < 24; hour += 3) {
    svg.append(s("text", { x: px(W, start + hour * cell + cell / 2), y: 14, "text-anchor": "middle", class: "tick" }, hourLabel(hour)));
  }
  rows.forEach((label, r) => {
    const yy = top + r * rowH;
    svg.append(s("text", { x: px(W, start - 6), y: yy + rowH / 2 + 4, "text-anchor": "end", class: "tick" }, label));
    for (let hour = 0; hour < 24; hour++) {
      const v = cells[r][hour];
      const level = max ? v / max : 0;
      const g = s("g", { class: "cell" + (v ? "" : " empty") + (level > 0.55 ? " strong" : "") },
        s("title", {}, t("{day} {hour}: {n} new", { day: label, hour: hourLabel(hour), n: v })),
        s("rect", { x: px(W, start + hour * cell + 1, cell - 2), y: yy + 1, width: cell - 2, height: rowH - 2, rx: 3,
          style: v ? `fill-opacity:${(0.15 + 0.85 * level).toFixed(3)}` : null }));
      if (v) g.append(s("text", { x: px(W, start + hour * cell + cell / 2), y: yy + rowH / 2 + 4, "text-anchor": "middle" }, v));
      svg.append(g);
    }
  });
  const hours = Array.from({ length: 24 }, (_, n) => hourLabel(n));
  return h("figure.chart-figure", svg,
    figures(title, [t("Day"), ...hours], rows.map((label, r) => [label, ...cells[r]])));
}

/**
 * Horizontal bars from the inline start: `rows` [{label, value, text}] where `text` is the
 * value as read (a duration, a count), written at the end of its bar.
 */
export function barChart({ title, desc, rows, valueHead, cls = "" }) {
  const W = 560, start = 170, end = 70, rowH = 30, top = 6;
  const H = top + Math.max(1, rows.length) * rowH + 4;
  const max = Math.max(0, ...rows.map((r) => r.value || 0));
  const plotW = W - start - end;
  const svg = root(W, H, title, desc, "bar-chart " + cls);
  rows.forEach((r, i) => {
    const yy = top + i * rowH;
    const w = max && r.value ? Math.max(2, (r.value / max) * plotW) : 0;
    svg.append(s("g", { class: "bar" },
      s("title", {}, `${r.label}: ${r.text}`),
      s("text", { x: px(W, start - 8), y: yy + rowH / 2 + 4, "text-anchor": "end", class: "label" }, r.label),
      s("rect", { x: px(W, start, w), y: yy + 5, width: w, height: rowH - 10, rx: 3 }),
      s("text", { x: px(W, start + w + 6), y: yy + rowH / 2 + 4, "text-anchor": "start", class: "value" }, r.text)));
  });
  return h("figure.chart-figure", svg, figures(title, ["", valueHead], rows.map((r) => [r.label, r.text])));
}

/** What a chart shows when there is nothing to draw. */
export function empty(text) {
  return h("p.chart-empty", text);
}
