// Small inline SVG line charts of one metric over time; a gap of more than a window breaks the line.

const SVG_NS = "http://www.w3.org/2000/svg";
const W = 320;
const H = 120;
const M = { left: 44, right: 8, top: 8, bottom: 20 };

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.append(node);
  return node;
}

function fmt(value) {
  if (!Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  if (abs >= 1000) return value.toFixed(0);
  if (abs >= 100) return value.toFixed(1);
  return value.toFixed(2).replace(/\.?0+$/, "") || "0";
}

function hhmm(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// Return a <figure> with a line chart of points [{t: epoch ms, v: number}] from `fromMs` to `toMs`.
export function lineChart({ title, unit, points, fromMs, toMs, stepMs }) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  const caption = document.createElement("figcaption");
  const last = points[points.length - 1];
  caption.textContent = `${title} (${unit})`;
  const now = document.createElement("strong");
  now.textContent = last ? ` ${fmt(last.v)}` : " no data";
  caption.append(now);
  figure.append(caption);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title} over the last hours` });
  figure.append(svg);
  const values = points.map((p) => p.v);
  let lo = Math.min(0, ...values);
  let hi = Math.max(...values, lo + 1e-9);
  if (hi === lo) hi = lo + 1;
  hi += (hi - lo) * 0.05;
  const x = (t) => M.left + ((t - fromMs) / Math.max(1, toMs - fromMs)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - ((v - lo) / (hi - lo)) * (H - M.top - M.bottom);
  el("line", { x1: M.left, x2: W - M.right, y1: y(lo), y2: y(lo), class: "axis" }, svg);
  el("line", { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom, class: "axis" }, svg);
  for (const [v, dy] of [[hi, 4], [lo, 0]]) {
    el("text", { x: M.left - 4, y: y(v) + dy, class: "tick", "text-anchor": "end" }, svg).textContent = fmt(v);
  }
  el("text", { x: M.left, y: H - 4, class: "tick" }, svg).textContent = hhmm(fromMs);
  el("text", { x: W - M.right, y: H - 4, class: "tick", "text-anchor": "end" }, svg).textContent = hhmm(toMs);
  let d = "";
  let prev = null;
  for (const p of points) {
    const cmd = prev === null || p.t - prev > stepMs * 1.5 ? "M" : "L";
    d += `${cmd}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`;
    prev = p.t;
  }
  if (d) el("path", { d, class: "series" }, svg);
  if (last) el("circle", { cx: x(last.t), cy: y(last.v), r: 2.5, class: "series-dot" }, svg);
  return figure;
}

export { fmt };
