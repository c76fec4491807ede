// The city map as SVG, drawn from the GeoJSON of GET /zones with a local equirectangular projection
// (x scaled by cos of the mid latitude, so shapes keep their proportions at this size): no tiles, no library.

import { SHAPES } from "./severity.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const WIDTH = 1000;
const PAD = 20;
const TRAIL_POINTS = 10;
const ZONE_ORDER = { district: 0, restricted: 1, nofly: 2 };

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.append(node);
  return node;
}

function rings(geometry) {
  if (geometry.type === "Polygon") return [geometry.coordinates];
  if (geometry.type === "MultiPolygon") return geometry.coordinates;
  return [];
}

export class CityMap {
  // handlers: onZone(feature), onAlert(alertId)
  constructor(container, geojson, handlers) {
    this.handlers = handlers;
    this.features = [...geojson.features].sort(
      (a, b) => (ZONE_ORDER[a.properties.kind] ?? 0) - (ZONE_ORDER[b.properties.kind] ?? 0),
    );
    this.fitProjection();
    this.svg = el("svg", {
      viewBox: `0 0 ${WIDTH} ${this.height}`,
      class: "city-map",
      role: "img",
      "aria-label": "Map of the Binhaiwan Bay Area zones, alerts and drones",
      preserveAspectRatio: "xMidYMid meet",
    });
    this.drawPatterns();
    this.zoneLayer = el("g", { class: "zones" }, this.svg);
    this.labelLayer = el("g", { class: "zone-labels" }, this.svg);
    this.droneLayer = el("g", { class: "drones" }, this.svg);
    this.alertLayer = el("g", { class: "alerts" }, this.svg);
    this.drawZones();
    this.trails = new Map(); // drone id -> [[x, y, t], ...]
    this.alertMarkers = new Map();
    container.replaceChildren(this.svg);
    this.unit = 1;
    this.alerts = [];
    this.selectedId = null;
    // Markers and labels keep their size on screen whatever the map's size: scale them by units per pixel.
    new ResizeObserver(() => this.rescale()).observe(container);
  }

  rescale() {
    const box = this.svg.getBoundingClientRect();
    if (!box.width || !box.height) return;
    const unit = 1 / Math.min(box.width / WIDTH, box.height / this.height);
    if (Math.abs(unit - this.unit) < 0.01) return;
    this.unit = unit;
    for (const label of this.labelLayer.children) label.setAttribute("font-size", (13 * unit).toFixed(1));
    this.setAlerts(this.alerts, this.selectedId);
    this.redrawDrones();
  }

  fitProjection() {
    let [minLon, minLat, maxLon, maxLat] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const f of this.features) {
      for (const poly of rings(f.geometry)) {
        for (const [lon, lat] of poly.flat()) {
          minLon = Math.min(minLon, lon);
          maxLon = Math.max(maxLon, lon);
          minLat = Math.min(minLat, lat);
          maxLat = Math.max(maxLat, lat);
        }
      }
    }
    const kx = Math.cos((((minLat + maxLat) / 2) * Math.PI) / 180);
    this.scale = (WIDTH - 2 * PAD) / ((maxLon - minLon) * kx);
    this.kx = kx;
    this.minLon = minLon;
    this.maxLat = maxLat;
    this.height = Math.round((maxLat - minLat) * this.scale + 2 * PAD);
  }

  project(lon, lat) {
    return [PAD + (lon - this.minLon) * this.kx * this.scale, PAD + (this.maxLat - lat) * this.scale];
  }

  drawPatterns() {
    const defs = el("defs", {}, this.svg);
    const hatch = el("pattern", { id: "pat-nofly", width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
    el("rect", { width: 8, height: 8, class: "pat-nofly-bg" }, hatch);
    el("line", { x1: 0, y1: 0, x2: 0, y2: 8, class: "pat-nofly-line" }, hatch);
    const dots = el("pattern", { id: "pat-restricted", width: 8, height: 8, patternUnits: "userSpaceOnUse" }, defs);
    el("rect", { width: 8, height: 8, class: "pat-restricted-bg" }, dots);
    el("circle", { cx: 4, cy: 4, r: 1.6, class: "pat-restricted-dot" }, dots);
  }

  pathOf(geometry) {
    return rings(geometry)
      .map((poly) =>
        poly
          .map((ring) => ring.map(([lon, lat], i) => `${i ? "L" : "M"}${this.project(lon, lat).map((v) => v.toFixed(1)).join(",")}`).join("") + "Z")
          .join(""),
      )
      .join("");
  }

  drawZones() {
    for (const f of this.features) {
      const { id, name, kind } = f.properties;
      const path = el("path", {
        d: this.pathOf(f.geometry),
        class: `zone zone-${kind}`,
        "data-zone-id": id,
        "data-kind": kind,
        tabindex: 0,
        role: "button",
        "aria-label": `${kind} ${name}`,
        "fill-rule": "evenodd",
      }, this.zoneLayer);
      el("title", {}, path).textContent = `${name} (${kind})`;
      const open = () => this.handlers.onZone(f);
      path.addEventListener("click", open);
      path.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          open();
        }
      });
      if (kind === "district") {
        const ring = rings(f.geometry)[0][0];
        const pts = ring.slice(0, -1).map(([lon, lat]) => this.project(lon, lat));
        const cx = pts.reduce((s, p) => s + p[0], 0) / pts.length;
        const cy = pts.reduce((s, p) => s + p[1], 0) / pts.length;
        el("text", { x: cx.toFixed(1), y: cy.toFixed(1), class: "zone-label", "text-anchor": "middle", "font-size": 13 }, this.labelLayer).textContent = name;
      }
    }
  }

  selectZone(zoneId) {
    for (const node of this.zoneLayer.querySelectorAll(".zone")) {
      node.classList.toggle("selected", node.dataset.zoneId === zoneId);
    }
  }

  // Show these alerts (those with a location) as shaped markers; most severe drawn last, on top.
  setAlerts(alerts, selectedId) {
    this.alerts = alerts;
    this.selectedId = selectedId;
    const shown = alerts.filter((a) => a.location && Array.isArray(a.location.coordinates));
    const keep = new Set(shown.map((a) => a.id));
    for (const [id, node] of this.alertMarkers) {
      if (!keep.has(id)) {
        node.remove();
        this.alertMarkers.delete(id);
      }
    }
    for (const a of shown) {
      const [x, y] = this.project(a.location.coordinates[0], a.location.coordinates[1]);
      let node = this.alertMarkers.get(a.id);
      if (!node) {
        node = el("g", { "data-alert-id": a.id, tabindex: 0, role: "button" });
        el("path", { class: "marker-shape", "fill-rule": "evenodd" }, node);
        el("title", {}, node);
        node.addEventListener("click", () => this.handlers.onAlert(a.id));
        node.addEventListener("keydown", (e) => {
          if (e.key === "Enter") this.handlers.onAlert(a.id);
        });
        this.alertMarkers.set(a.id, node);
      }
      node.setAttribute("class", `alert-marker sev-${a.severity} status-${a.status}${a.id === selectedId ? " selected" : ""}`);
      node.setAttribute("transform", `translate(${x.toFixed(1)},${y.toFixed(1)}) scale(${this.unit.toFixed(3)})`);
      node.setAttribute("aria-label", `${a.severity} ${a.kind} at ${a.source_id}, ${a.status}`);
      node.firstChild.setAttribute("d", SHAPES[a.severity] || SHAPES.informational);
      node.lastChild.textContent = `${a.severity.toUpperCase()} · ${a.kind} · ${a.source_id} · ${a.status}`;
    }
    // Order: least severe first, so critical markers sit on top.
    const rank = { informational: 0, low: 1, medium: 2, high: 3, critical: 4 };
    const ordered = shown.map((a) => [rank[a.severity] ?? 0, a.id === selectedId ? 1 : 0, this.alertMarkers.get(a.id)]);
    ordered.sort((p, q) => p[0] - q[0] || p[1] - q[1]);
    for (const [, , node] of ordered) this.alertLayer.append(node);
  }

  // Move each drone to its latest fix, with a short trail of its previous fixes; forget drones no longer listed.
  setDrones(drones) {
    const now = Date.now();
    const seen = new Set();
    for (const d of drones) {
      seen.add(d.drone_id);
      const [x, y] = this.project(d.lon, d.lat);
      const trail = this.trails.get(d.drone_id) || [];
      const last = trail[trail.length - 1];
      if (!last || Math.hypot(last[0] - x, last[1] - y) > 0.2) trail.push([x, y, now]);
      while (trail.length > TRAIL_POINTS) trail.shift();
      this.trails.set(d.drone_id, trail);
    }
    for (const id of [...this.trails.keys()]) if (!seen.has(id)) this.trails.delete(id);
    this.redrawDrones();
  }

  redrawDrones() {
    this.droneLayer.replaceChildren();
    for (const [id, trail] of this.trails) {
      const [x, y] = trail[trail.length - 1];
      if (trail.length > 1) {
        el("polyline", { class: "drone-trail", points: trail.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(" ") }, this.droneLayer);
      }
      let angle = 0;
      if (trail.length > 1) {
        const [px, py] = trail[trail.length - 2];
        angle = (Math.atan2(x - px, py - y) * 180) / Math.PI;
      }
      const g = el("g", { class: "drone", "data-drone-id": id, transform: `translate(${x.toFixed(1)},${y.toFixed(1)}) rotate(${angle.toFixed(0)}) scale(${this.unit.toFixed(3)})` }, this.droneLayer);
      el("path", { class: "drone-icon", d: "M0,-6 L5,5 L0,2 L-5,5 Z" }, g);
      el("title", {}, g).textContent = `drone ${id}`;
    }
  }
}
