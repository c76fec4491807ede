// The operations dashboard: asks for an API key once per tab, then wires the map, the alert board,
// the live alert stream, the drone positions and the zone figures together.

import { ApiError, forgetKey, get, storeKey, storedKey } from "./api.js";
import { AlertBoard } from "./alerts.js";
import { CityMap } from "./map.js";
import { AlertStream } from "./sse.js";
import { ZonePanel } from "./zone.js";

const DRONE_POLL_MS = 2000;
const COUNTS_POLL_MS = 30000;

const $ = (id) => document.getElementById(id);

let stream = null;
let timers = [];

function setConnection(state, detail) {
  const node = $("connection");
  node.dataset.state = state;
  node.textContent = { live: "● live", reconnecting: "◌ reconnecting…", denied: "✕ no alert access", idle: "not connected" }[state] || state;
  node.title = detail || "";
}

function showNotice(message) {
  $("notice").hidden = !message;
  $("notice").textContent = message || "";
}

function askForKey(message) {
  stream?.stop();
  timers.forEach(clearInterval);
  timers = [];
  $("dashboard").hidden = true;
  $("sign-out").hidden = true;
  $("key-form").hidden = false;
  $("key-error").textContent = message || "";
  $("key-input").value = "";
  $("key-input").focus();
  setConnection("idle");
}

async function open() {
  // The map needs /zones (operator or planner); the list needs /alerts (operator).
  let zones;
  try {
    zones = await get("/zones");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) forgetKey();
    askForKey(err.message);
    return;
  }
  let alertsAllowed = true;
  try {
    await get("/alerts/counts");
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      alertsAllowed = false;
      showNotice(`Alerts are hidden: ${err.message}`);
    } else {
      showNotice(err.message);
    }
  }
  $("key-form").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;

  const zoneFilter = $("zone-filter");
  for (const f of zones.features.filter((z) => z.properties.kind === "district")) {
    const o = document.createElement("option");
    o.value = f.properties.id;
    o.textContent = f.properties.name;
    zoneFilter.append(o);
  }

  let board = null;
  const panel = new ZonePanel({ title: $("zone-title"), summary: $("zone-summary"), charts: $("zone-charts"), updated: $("zone-updated") });
  const map = new CityMap($("map"), zones, {
    onZone: (feature) => {
      map.selectZone(feature.properties.id);
      panel.show(feature);
    },
    onAlert: (id) => board?.select(id),
  });

  const pollDrones = async () => {
    try {
      const page = await get("/drones");
      map.setDrones(page.items);
      $("drone-count").textContent = `${page.items.length} drone${page.items.length === 1 ? "" : "s"} airborne`;
    } catch (err) {
      $("drone-count").textContent = `drones unavailable: ${err.message}`;
    }
  };
  pollDrones();
  timers.push(setInterval(pollDrones, DRONE_POLL_MS));

  const firstDistrict = zones.features.find((z) => z.properties.kind === "district");
  if (firstDistrict) map.handlers.onZone(firstDistrict);

  if (!alertsAllowed) {
    setConnection("denied", "this key cannot read alerts");
    return;
  }
  board = new AlertBoard(
    {
      rows: $("alert-rows"),
      total: $("alert-total"),
      filters: $("filters"),
      error: $("action-error"),
      detail: $("alert-detail"),
      counts: $("counts"),
      banner: $("critical-banner"),
      bannerText: $("critical-text"),
      bannerShow: $("critical-show"),
      bannerDismiss: $("critical-dismiss"),
    },
    { onChange: (alerts, selectedId) => map.setAlerts(alerts, selectedId), onSelect: () => {} },
  );
  let loaded = false;
  stream = new AlertStream("/alerts/stream", {
    onEvent: (name, data) => {
      if (name === "alert") board.onStreamAlert(data);
    },
    onState: (state, detail) => {
      setConnection(state, detail);
      // Load the list once the stream is connected, so no change falls between the two.
      if (state === "live" && !loaded) {
        loaded = true;
        board.reload();
      }
    },
    onReset: (detail) => {
      showNotice(`Live updates restarted: ${detail}`);
      board.reload();
    },
  });
  stream.start();
  timers.push(setInterval(() => board.refreshCounts(), COUNTS_POLL_MS));
}

function init() {
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    storeKey(key);
    open();
  });
  $("sign-out").addEventListener("click", () => {
    forgetKey();
    location.reload();
  });
  if (storedKey()) open();
  else askForKey();
}

init();
