// The zone panel: a district's latest figures per domain and its last hours of window aggregates as charts.

import { get, withQuery } from "./api.js";
import { fmt, lineChart } from "./charts.js";

export const CHART_HOURS = 3;
const WINDOW_S = 60;
const REFRESH_MS = 30000;
const CHARTS = [
  { domain: "traffic", metric: "avg_speed_kmh", title: "Traffic: average speed", unit: "km/h" },
  { domain: "traffic", metric: "vehicle_count", title: "Traffic: vehicles", unit: "vehicles" },
  { domain: "drone", metric: "drones_airborne", title: "Drones airborne", unit: "drones" },
  { domain: "energy", metric: "energy_kwh", title: "Energy used", unit: "kWh" },
  { domain: "energy", metric: "peak_kw", title: "Energy: peak power", unit: "kW" },
];

function text(tag, content, className) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  return node;
}

// "avg speed kmh 41.2 km/h" reads badly: name the metric, then the value with a unit unless the name says it.
function figure(a) {
  const noun = a.unit.replace(/e?s$/, "");
  const unit = a.metric.includes(noun) ? "" : ` ${a.unit}`;
  return `${a.metric.replace(/_(kmh|kwh|kw|v)$/, "").replaceAll("_", " ")}: ${fmt(a.value)}${unit}`;
}

export class ZonePanel {
  constructor({ title, summary, charts, updated, onError }) {
    Object.assign(this, { titleNode: title, summaryNode: summary, chartsNode: charts, updatedNode: updated, onError });
    this.feature = null;
    this.timer = null;
  }

  show(feature) {
    this.feature = feature;
    clearInterval(this.timer);
    const p = feature.properties;
    this.titleNode.textContent = `${p.name} (${p.kind})`;
    this.summaryNode.dataset.zoneId = p.id;
    if (p.kind !== "district") {
      this.showArea(p);
      return;
    }
    this.summaryNode.replaceChildren(text("p", "Loading figures…", "muted"));
    this.chartsNode.replaceChildren();
    this.refresh();
    // Windows close every minute: refresh twice a minute to show each soon after it closes.
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  showArea(p) {
    const dl = document.createElement("dl");
    const rows = [
      ["kind", p.kind === "nofly" ? "no-fly zone: no drone flights" : "restricted airspace"],
      ["reason", p.reason || "–"],
    ];
    if (p.floor_m !== undefined || p.ceiling_m !== undefined) {
      rows.push(["applies", `${p.floor_m ?? 0} m to ${p.ceiling_m ?? "∞"} m above ground`]);
    }
    for (const [k, v] of rows) dl.append(text("dt", k), text("dd", v));
    this.summaryNode.replaceChildren(dl);
    this.chartsNode.replaceChildren();
    this.updatedNode.textContent = "";
  }

  async refresh() {
    const feature = this.feature;
    if (!feature) return;
    const toMs = Date.now();
    const fromMs = toMs - CHART_HOURS * 3600 * 1000;
    let items;
    try {
      const page = await get(withQuery("/aggregates", { zone: feature.properties.id, window: WINDOW_S, from: new Date(fromMs).toISOString(), limit: 50000 }));
      items = page.items;
    } catch (err) {
      this.summaryNode.replaceChildren(text("p", `Figures unavailable: ${err.message}`, "error"));
      return;
    }
    if (feature !== this.feature) return; // another zone was picked meanwhile
    const series = new Map();
    for (const a of items) {
      const key = `${a.domain}/${a.metric}`;
      if (!series.has(key)) series.set(key, []);
      series.get(key).push(a);
    }
    this.renderSummary(series);
    this.chartsNode.replaceChildren(
      ...CHARTS.map((c) => {
        const rows = series.get(`${c.domain}/${c.metric}`) || [];
        const chart = lineChart({
          title: c.title,
          unit: rows[0]?.unit || c.unit,
          points: rows.map((a) => ({ t: Date.parse(a.window_start), v: a.value })),
          fromMs,
          toMs,
          stepMs: WINDOW_S * 1000,
        });
        chart.dataset.metric = `${c.domain}/${c.metric}`;
        return chart;
      }),
    );
    this.updatedNode.textContent = `updated ${new Date(toMs).toLocaleTimeString()}`;
  }

  renderSummary(series) {
    const table = document.createElement("table");
    table.className = "figures";
    const head = table.createTHead().insertRow();
    for (const h of ["Domain", "Latest window", "Figures"]) head.append(text("th", h));
    const body = table.createTBody();
    for (const domain of ["traffic", "drone", "energy"]) {
      const rows = [...series.entries()].filter(([k]) => k.startsWith(`${domain}/`)).map(([, v]) => v[v.length - 1]);
      const tr = body.insertRow();
      tr.dataset.domain = domain;
      tr.append(text("th", domain));
      if (!rows.length) {
        tr.append(text("td", "–"), text("td", "no windows in the last hours", "muted"));
        continue;
      }
      const end = rows.reduce((m, a) => (a.window_end > m ? a.window_end : m), "");
      tr.append(text("td", new Date(end).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
      const latest = rows.filter((a) => a.window_end === end);
      tr.append(text("td", latest.map(figure).join(" · ")));
    }
    this.summaryNode.replaceChildren(table);
  }
}
