// Calls to the citystream API with the key from sessionStorage, as `Authorization: Bearer`.

const KEY_STORAGE = "citystream.apiKey";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

export function authHeaders(extra = {}) {
  const key = storedKey();
  return key ? { Authorization: `Bearer ${key}`, ...extra } : { ...extra };
}

// Return the API's own explanation of a failed answer (`detail`), or the status line.
async function errorDetail(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  } catch {
    // not JSON: fall through
  }
  return `${response.status} ${response.statusText}`;
}

export async function request(method, path, body) {
  const init = { method, headers: authHeaders(), cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `the API did not answer (${err.message}); check the connection`);
  }
  if (!response.ok) throw new ApiError(response.status, await errorDetail(response));
  if (response.status === 204) return null;
  return response.json();
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body ?? {});

// Build `path?name=value&...`, skipping empty values and repeating array values.
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== undefined && v !== null && v !== "") query.append(name, String(v));
    }
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
