// Severity is never shown by colour alone: each has a text label, a shape and a colour from the
// Okabe-Ito palette (safe for the common colour-vision deficiencies). Colours live in the CSS classes.

export const SEVERITIES = ["critical", "high", "medium", "low", "informational"];

const SVG_NS = "http://www.w3.org/2000/svg";

// Shapes drawn around (0,0) with a radius of about 7: diamond, triangle, square, circle, ring.
export const SHAPES = {
  critical: "M0,-8 L8,0 L0,8 L-8,0 Z",
  high: "M0,-8 L7.5,6 L-7.5,6 Z",
  medium: "M-6,-6 H6 V6 H-6 Z",
  low: "M0,-6.5 A6.5,6.5 0 1 1 0,6.5 A6.5,6.5 0 1 1 0,-6.5 Z",
  informational: "M0,-6.5 A6.5,6.5 0 1 1 0,6.5 A6.5,6.5 0 1 1 0,-6.5 Z M0,-3 A3,3 0 1 0 0,3 A3,3 0 1 0 0,-3 Z",
};

export const ICONS = { critical: "◆", high: "▲", medium: "■", low: "●", informational: "○" };

export function severityRank(severity) {
  const i = SEVERITIES.indexOf(severity);
  return i < 0 ? SEVERITIES.length : i;
}

// Return an inline <svg> shape of a severity (decorative: the label says it in words).
export function severityIcon(severity) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "-9 -9 18 18");
  svg.setAttribute("class", `sev-shape sev-${severity}`);
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", SHAPES[severity] || SHAPES.informational);
  path.setAttribute("fill-rule", "evenodd");
  svg.append(path);
  return svg;
}

// Return a badge: shape + text label, coloured by class.
export function severityBadge(severity) {
  const span = document.createElement("span");
  span.className = `sev-badge sev-${severity}`;
  span.append(severityIcon(severity), document.createTextNode(severity));
  return span;
}
