// Server-Sent Events over fetch(): EventSource cannot send the Authorization header, so the stream is read
// as a ReadableStream and parsed here. The last event id is kept and sent as Last-Event-ID on reconnect,
// so no change is missed or seen twice across a dropped connection.

import { authHeaders } from "./api.js";

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;

// Parse one SSE block (the lines between blank lines) into {id, event, data}, or null for a comment.
export function parseBlock(block) {
  const out = { id: null, event: "message", data: [] };
  let any = false;
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") out.id = value;
    else if (field === "event") out.event = value;
    else if (field === "data") out.data.push(value);
    else continue;
    any = true;
  }
  return any ? { ...out, data: out.data.join("\n") } : null;
}

export class AlertStream {
  // handlers: onEvent(name, data), onState(state, detail), onReset() when changes were lost (reload the list)
  constructor(path, handlers) {
    this.path = path;
    this.handlers = handlers;
    this.lastEventId = null;
    this.controller = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
  }

  async loop() {
    let delay = RETRY_MIN_MS;
    while (!this.stopped) {
      this.controller = new AbortController();
      try {
        const headers = authHeaders({ Accept: "text/event-stream" });
        if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
        const response = await fetch(this.path, { headers, signal: this.controller.signal, cache: "no-store" });
        if (response.status === 401 || response.status === 403) {
          const body = await response.json().catch(() => ({}));
          this.handlers.onState("denied", body.detail || `${response.status}`);
          return;
        }
        if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
        this.handlers.onState("live", this.lastEventId ? "resumed" : "connected");
        delay = RETRY_MIN_MS;
        await this.read(response.body);
        if (!this.stopped) this.handlers.onState("reconnecting", "the server closed the stream");
      } catch (err) {
        if (this.stopped) return;
        this.handlers.onState("reconnecting", err.message);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
      buffer = blocks.pop();
      for (const block of blocks) {
        const event = parseBlock(block);
        if (!event) continue;
        if (event.event === "error") {
          // The stream no longer holds what came after our id: start afresh and reload.
          this.lastEventId = null;
          this.handlers.onReset(JSON.parse(event.data || "{}").detail || "changes were lost");
          return;
        }
        if (event.id) this.lastEventId = event.id;
        let data = null;
        try {
          data = JSON.parse(event.data);
        } catch {
          continue;
        }
        this.handlers.onEvent(event.event, data);
      }
    }
  }
}
