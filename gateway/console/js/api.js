/* The /admin API with the admin token as a Bearer header. The token lives in sessionStorage (this tab only),
   is never put in a URL, a cookie or the console log, and sign-out forgets it. */

const TOKEN_KEY = "dominion.adminToken";

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  save: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, error, fallback) {
    super((error && error.message) || fallback || "The gateway answered " + status + ".");
    this.status = status;
    this.code = error ? error.code : null;
    this.requestId = error ? error.request_id : null;
  }
}

/* Query string from a plain object, skipping empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? "?" + text : "";
}

/* Listeners told when the stored token stops working (401): the app signs out. */
const refusedListeners = [];
export function onRefused(listener) { refusedListeners.push(listener); }

/* path is relative to the console's own address ("admin/users" -> /admin/users), so a path prefix works. */
export async function api(path, {method = "GET", body, token} = {}) {
  const bearer = token || session.token();
  const headers = {"Accept": "application/json", "Authorization": "Bearer " + bearer};
  const init = {method, headers, credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer"};
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (failure) {
    throw new ApiError(0, null, "Cannot reach the gateway (" + failure.message + ").");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError(response.status, data && data.error);
    if (response.status === 401 && !token) refusedListeners.forEach((listener) => listener(error));
    throw error;
  }
  return data;
}
