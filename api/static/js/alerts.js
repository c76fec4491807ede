// The alert board: the live list with its filters, the details of one alert with the operator actions,
// the header's counts per severity, and the cue for a new critical alert.

import { get, post, withQuery } from "./api.js";
import { fmt } from "./charts.js";
import { SEVERITIES, severityBadge, severityIcon, severityRank } from "./severity.js";

const LIST_LIMIT = 500;
const CUE_MS = 15000;
const SNOOZE_MINUTES = [15, 60, 240, 1440];

function text(tag, content, className) {
  const node = document.createElement(tag);
  node.textContent = content ?? "";
  if (className) node.className = className;
  return node;
}

function button(label, className, onClick) {
  const b = text("button", label, className);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

function time(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export class AlertBoard {
  constructor(nodes, handlers) {
    this.nodes = nodes; // rows, total, filters, error, detail, counts, banner, bannerText, bannerShow, bannerDismiss
    this.handlers = handlers; // onChange(visibleAlerts, selectedId), onSelect(alert)
    this.alerts = new Map();
    this.selectedId = null;
    this.cued = new Map(); // alert id -> time the critical cue started
    this.bannerAlertId = null;
    this.countTimer = null;
    nodes.filters.addEventListener("change", () => this.reload());
    nodes.filters.addEventListener("submit", (e) => {
      e.preventDefault();
      this.reload();
    });
    nodes.bannerShow.addEventListener("click", () => this.bannerAlertId && this.select(this.bannerAlertId));
    nodes.bannerDismiss.addEventListener("click", () => this.hideBanner());
  }

  filters() {
    const data = new FormData(this.nodes.filters);
    return {
      status: data.get("status") || "active",
      severity: data.get("severity") || "",
      domain: data.get("domain") || "",
      kind: (data.get("kind") || "").trim(),
      zone: data.get("zone") || "",
    };
  }

  query() {
    const f = this.filters();
    const status = { active: [], all: ["open", "acknowledged", "resolved"] }[f.status] ?? [f.status];
    return { status, severity: f.severity, domain: f.domain, kind: f.kind, zone: f.zone };
  }

  // Does an alert belong in the list under the current filters (as GET /alerts would decide)?
  matches(a) {
    const f = this.filters();
    const statuses = { active: ["open", "acknowledged"], all: ["open", "acknowledged", "resolved"] }[f.status] ?? [f.status];
    if (!statuses.includes(a.status)) return false;
    if (f.severity && a.severity !== f.severity) return false;
    if (f.domain && a.domain !== f.domain) return false;
    if (f.kind && a.kind !== f.kind) return false;
    if (f.zone && a.zone_id !== f.zone) return false;
    if (a.snoozed_until && Date.parse(a.snoozed_until) > Date.now()) return false;
    return true;
  }

  async reload() {
    try {
      const page = await get(withQuery("/alerts", { ...this.query(), limit: LIST_LIMIT }));
      this.alerts = new Map(page.items.map((a) => [a.id, a]));
      this.showError(null);
    } catch (err) {
      this.showError(`Could not load alerts: ${err.message}`);
    }
    this.render();
    this.refreshCounts();
  }

  // A change pushed by the stream: update the alert, cue it if it is a new critical one.
  onStreamAlert(alert) {
    const previous = this.alerts.get(alert.id);
    const becameOpenCritical = alert.severity === "critical" && alert.status === "open" && (!previous || previous.status !== "open");
    if (this.matches(alert)) this.alerts.set(alert.id, alert);
    else this.alerts.delete(alert.id);
    if (becameOpenCritical && alert.changed_by === "processor") this.cue(alert);
    this.render();
    if (this.selectedId === alert.id) this.renderDetail(alert);
    this.scheduleCounts();
  }

  cue(alert) {
    this.cued.set(alert.id, Date.now());
    this.bannerAlertId = alert.id;
    this.nodes.bannerText.textContent = `CRITICAL: ${alert.kind.replaceAll("_", " ")} · ${alert.source_id}${alert.zone_id ? ` · ${alert.zone_id}` : ""} — ${alert.description}`;
    this.nodes.banner.hidden = false;
    // Restart the flash for each new critical alert.
    this.nodes.banner.classList.remove("flash");
    void this.nodes.banner.offsetWidth;
    this.nodes.banner.classList.add("flash");
    setTimeout(() => this.render(), CUE_MS + 50);
  }

  hideBanner() {
    this.nodes.banner.hidden = true;
    this.bannerAlertId = null;
  }

  visible() {
    return [...this.alerts.values()]
      .filter((a) => this.matches(a))
      .sort((a, b) => severityRank(a.severity) - severityRank(b.severity) || (b.last_seen > a.last_seen ? 1 : b.last_seen < a.last_seen ? -1 : 0));
  }

  render() {
    const rows = this.visible();
    const now = Date.now();
    this.nodes.total.textContent = `${rows.length} shown`;
    const trs = rows.map((a) => {
      const tr = document.createElement("tr");
      tr.dataset.alertId = a.id;
      tr.className = `alert-row sev-row-${a.severity} status-${a.status}`;
      if (a.id === this.selectedId) tr.classList.add("selected");
      if (now - (this.cued.get(a.id) || 0) < CUE_MS) tr.classList.add("cue");
      tr.append(document.createElement("td"));
      tr.cells[0].append(severityBadge(a.severity));
      const what = document.createElement("td");
      const link = button(a.kind.replaceAll("_", " "), "link", () => this.select(a.id));
      link.title = a.description;
      what.append(link, text("div", a.source_id, "muted small"));
      if (a.flapping) what.append(text("span", `flapping ×${a.folded + 1}`, "tag"));
      tr.append(what, text("td", a.zone_id || "–"));
      const status = text("td", a.status, `status status-${a.status}`);
      status.dataset.status = a.status;
      if (a.assignee) status.append(text("div", `→ ${a.assignee}`, "muted small"));
      tr.append(status, text("td", time(a.last_seen), "small"));
      const actions = document.createElement("td");
      actions.className = "row-actions";
      if (a.status === "open") actions.append(button("Ack", "act-ack", () => this.act(a.id, "ack")));
      if (a.status !== "resolved") actions.append(button("Resolve", "act-resolve secondary", () => this.act(a.id, "resolve")));
      tr.append(actions);
      tr.addEventListener("click", (e) => {
        if (!(e.target instanceof HTMLButtonElement)) this.select(a.id);
      });
      return tr;
    });
    if (!trs.length) {
      const tr = document.createElement("tr");
      const td = text("td", "No alerts match these filters.", "muted");
      td.colSpan = 6;
      tr.append(td);
      trs.push(tr);
    }
    this.nodes.rows.replaceChildren(...trs);
    this.handlers.onChange(rows, this.selectedId);
  }

  async select(id) {
    this.selectedId = id;
    this.render();
    let alert = this.alerts.get(id);
    try {
      alert = await get(`/alerts/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!alert) {
        this.nodes.detail.replaceChildren(text("p", err.message, "error"));
        return;
      }
    }
    this.renderDetail(alert);
  }

  async act(id, action, body) {
    try {
      const updated = await post(`/alerts/${encodeURIComponent(id)}/${action}`, body);
      this.showError(null);
      if (this.matches(updated)) this.alerts.set(id, updated);
      else this.alerts.delete(id);
      this.render();
      if (this.selectedId === id) this.renderDetail(updated);
      this.refreshCounts();
    } catch (err) {
      this.showError(`${action} failed: ${err.message}`);
    }
  }

  async snooze(alert, minutes) {
    try {
      const snooze = await post("/snoozes", { kind: alert.kind, source_id: alert.source_id, minutes });
      this.showError(null);
      alert = { ...alert, snoozed_until: snooze.until };
      this.alerts.delete(alert.id);
      this.render();
      this.renderDetail(alert);
      this.refreshCounts();
    } catch (err) {
      this.showError(`snooze failed: ${err.message}`);
    }
  }

  showError(message) {
    this.nodes.error.hidden = !message;
    this.nodes.error.textContent = message || "";
  }

  renderDetail(a) {
    const box = document.createElement("article");
    box.className = `alert-detail sev-row-${a.severity}`;
    box.dataset.alertId = a.id;
    const head = document.createElement("h3");
    head.append(severityBadge(a.severity), text("span", ` ${a.kind.replaceAll("_", " ")}`));
    const status = text("span", a.status, `status status-${a.status}`);
    status.id = "detail-status";
    status.dataset.status = a.status;
    head.append(text("span", " · "), status);
    box.append(head, text("p", a.description));
    const dl = document.createElement("dl");
    dl.className = "evidence";
    const unit = a.unit ? ` ${a.unit}` : "";
    const direction = { UPPER: "upper limit", LOWER: "lower limit" }[a.threshold_type] || "limit";
    const rows = [
      ["measured", a.measured_value != null ? `${fmt(a.measured_value)}${unit}` : "–"],
      ["expected", a.expected_value != null ? `${fmt(a.expected_value)}${unit}` : "–"],
      ["threshold", a.threshold != null ? `${fmt(a.threshold)}${unit} (${direction})` : "–"],
      ["source", `${a.source_id} (${a.domain})`],
      ["zone", a.zone_id || "–"],
      ["first seen", time(a.first_seen)],
      ["last seen", time(a.last_seen)],
      ["readings", String(a.count)],
      ["assignee", a.assignee || "nobody"],
    ];
    if (a.location) rows.push(["location", `${a.location.coordinates[1].toFixed(5)} N, ${a.location.coordinates[0].toFixed(5)} E`]);
    if (a.snoozed_until) rows.push(["snoozed until", time(a.snoozed_until)]);
    if (a.resolved_at) rows.push(["resolved at", time(a.resolved_at)]);
    for (const [k, v] of Object.entries(a.data || {})) rows.push([k.replaceAll("_", " "), typeof v === "object" ? JSON.stringify(v) : String(v)]);
    for (const [k, v] of rows) dl.append(text("dt", k), text("dd", v));
    box.append(dl);

    const actions = document.createElement("div");
    actions.className = "detail-actions";
    actions.append(
      button("Acknowledge", "act-ack", () => this.act(a.id, "ack")),
      button("Resolve", "act-resolve secondary", () => this.act(a.id, "resolve")),
    );
    const assign = document.createElement("form");
    assign.className = "inline-form";
    const who = document.createElement("input");
    who.name = "operator";
    who.placeholder = "operator name";
    who.maxLength = 64;
    who.required = true;
    who.setAttribute("aria-label", "Assign to operator");
    if (a.assignee) who.value = a.assignee;
    const assignButton = text("button", "Assign", "act-assign");
    assignButton.type = "submit";
    assign.append(who, assignButton);
    assign.addEventListener("submit", (e) => {
      e.preventDefault();
      this.act(a.id, "assign", { operator: who.value.trim() });
    });
    const snooze = document.createElement("form");
    snooze.className = "inline-form";
    const minutes = document.createElement("select");
    minutes.setAttribute("aria-label", "Snooze for");
    for (const m of SNOOZE_MINUTES) {
      const o = text("option", m < 60 ? `${m} min` : `${m / 60} h`);
      o.value = String(m);
      minutes.append(o);
    }
    const snoozeButton = text("button", "Snooze rule at source", "act-snooze secondary");
    snoozeButton.type = "submit";
    snooze.append(minutes, snoozeButton);
    snooze.addEventListener("submit", (e) => {
      e.preventDefault();
      this.snooze(a, Number(minutes.value));
    });
    actions.append(assign, snooze);
    box.append(actions);

    const history = document.createElement("ol");
    history.className = "history";
    history.setAttribute("aria-label", "History");
    box.append(text("h4", "History"), history);
    this.nodes.detail.replaceChildren(box);
    this.handlers.onSelect(a);
    get(`/alerts/${encodeURIComponent(a.id)}/history`)
      .then((entries) => {
        history.replaceChildren(
          ...entries.map((h) => text("li", `${time(h.at)} · ${h.action}${h.value ? ` ${h.value}` : ""} by ${h.by} → ${h.status}`)),
        );
      })
      .catch((err) => history.replaceChildren(text("li", `history unavailable: ${err.message}`, "error")));
  }

  scheduleCounts() {
    if (this.countTimer) return;
    this.countTimer = setTimeout(() => {
      this.countTimer = null;
      this.refreshCounts();
    }, 500);
  }

  async refreshCounts() {
    let counts;
    try {
      counts = await get("/alerts/counts");
    } catch {
      return;
    }
    this.nodes.counts.replaceChildren(
      ...SEVERITIES.map((s) => {
        const li = document.createElement("li");
        li.className = `count sev-${s}`;
        li.dataset.severity = s;
        const n = counts.by_severity[s] || 0;
        if (n === 0) li.classList.add("zero");
        li.append(severityIcon(s), text("span", s, "count-label"), text("strong", String(n), "count-value"));
        li.title = `${n} active ${s} alerts`;
        return li;
      }),
    );
  }
}
