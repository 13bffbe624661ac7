// The REST API as the pages see it: same-origin fetch with the session cookie, and the
// page's CSRF token on every request (the server requires it on writes by cookie).
const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

function csrf() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/** JSON from `path` under /api/v1 (`site: true`: a path of the site itself, such as
 * /logout); throws ApiError. */
export async function api(path, { method = "GET", body, site = false } = {}) {
  const headers = { Accept: "application/json" };
  const token = csrf();
  if (token) headers["X-CSRF-Token"] = token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const url = site ? path : `${API}${path}`;
  const res = await fetch(url, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (res.status === 401) {
    // The session expired or its key was revoked: back to the login page.
    const next = location.pathname + location.search;
    location.assign(`/login?next=${encodeURIComponent(next)}`);
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** A query-language string literal holding `text` (backslash and quote escaped). */
export function quoted(text) {
  return '"' + String(text).replace(/\\/g, "\\\\").replace(/"/g, '\\"')
    .replace(/\n/g, "\\n").replace(/\t/g, "\\t") + '"';
}
