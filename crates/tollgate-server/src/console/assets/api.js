// The management API as the console calls it: the admin token, JSON in and out, the API's
// own error messages, pages followed to the end, and the server's clock.

const TOKEN_KEY = "tollgate.adminToken";

// An answer other than 2xx, or no answer at all (status 0). `message` is the API's own
// `{"message"}` when it sent one.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }

  // Whether signing in (again) could help.
  get isAuth() {
    return this.status === 401 || this.status === 403;
  }
}

// The token lives in sessionStorage only: it goes when the tab closes, and is never written
// anywhere that outlives it.
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// Milliseconds the server's clock is ahead of this browser's, from the Date header of the
// last answer: usage days are the server's UTC days, whatever this machine's clock says.
let skewMs = 0;

export function serverNow() {
  return new Date(Date.now() + skewMs);
}

// One call. `body` is sent as JSON. Resolves to the parsed answer (null when empty);
// rejects with ApiError. `tokenOverride` tries a token before it is kept.
export async function call(method, path, body, tokenOverride) {
  const headers = { Accept: "application/json" };
  const t = tokenOverride === undefined ? token() : tokenOverride;
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, `cannot reach tollgate (${e.message}); is it running?`);
  }
  const date = Date.parse(res.headers.get("Date") || "");
  if (!Number.isNaN(date)) skewMs = date - Date.now();
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const message =
      data && typeof data.message === "string" && data.message
        ? data.message
        : `${res.status} ${res.statusText || "error"}`.trim();
    throw new ApiError(res.status, message);
  }
  return data;
}

// `path` with the query `params` (values encoded; null and undefined left out).
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined) q.set(k, String(v));
  }
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

// A path segment, encoded.
export function seg(id) {
  return encodeURIComponent(id);
}

// Every item of a paged list (`item` plus `position`), at most 500 a page.
export async function listAll(path, params = {}) {
  const items = [];
  let position;
  for (let page = 0; page < 1000; page += 1) {
    const data = await call("GET", withQuery(path, { ...params, limit: 500, position }));
    items.push(...((data && data.item) || []));
    position = data && data.position;
    if (!position) return items;
  }
  throw new ApiError(0, `${path} did not stop paging`);
}

// The usage report of a plan: key id -> [[used, remaining], ...] per day, every page.
export async function usage(planId, startDate, endDate) {
  const values = {};
  let position;
  for (let page = 0; page < 1000; page += 1) {
    const data = await call(
      "GET",
      withQuery(`/usageplans/${seg(planId)}/usage`, { startDate, endDate, limit: 500, position }),
    );
    Object.assign(values, (data && data.values) || {});
    position = data && data.position;
    if (!position) return values;
  }
  throw new ApiError(0, "the usage report did not stop paging");
}
