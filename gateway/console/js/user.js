/* One user: status, quota use, spend per day, keys (create: plaintext shown once; revoke) and limits. */

import {api, query} from "./api.js";
import {dailySpendChart} from "./charts.js";
import {badge, el, field, header, message, panel, show, table} from "./dom.js";
import {when} from "./format.js";
import {QUOTAS, quotaBar} from "./quotas.js";
import {keyCreator, revokeButton} from "./keys.js";

const LIMITS = [
  {name: "daily_requests", title: "Requests per day", step: "1"},
  {name: "daily_tokens", title: "Tokens per day", step: "1"},
  {name: "monthly_spend_cap_usd", title: "Spend cap per month (USD)", step: "0.000001"},
  {name: "rate_limit_max", title: "Requests per rate-limit window", step: "1"},
  {name: "max_concurrent_requests", title: "Requests in flight at once (0 = unlimited)", step: "1"},
];

function statusButton(user, page) {
  const action = user.status === "active" ? "suspend" : "activate";
  const button = el("button", {type: "button", id: "user-status-action", class: action === "suspend" ? "danger" : ""},
    action === "suspend" ? "Suspend user" : "Activate user");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api("admin/users/" + user.id + "/" + action, {method: "POST"});
      page.reload();
    } catch (error) {
      page.flash("error", error.message);
      button.disabled = false;
    }
  });
  return button;
}

/* Limits: a value per field (blank = leave as is), Save sends what changed, Reset puts one back to the default. */
function limitsForm(user, page) {
  const overrides = new Set(user.limits.overrides);
  const inputs = {};
  const status = el("div", {class: "form-status", id: "limits-status"});
  const send = async (changes, done) => {
    try {
      await api("admin/limits", {method: "POST", body: {user_id: user.id, ...changes}});
      page.reload(done);
    } catch (error) {
      status.replaceChildren(message("error", error.message));
    }
  };
  const rows = LIMITS.map((limit) => {
    const input = el("input", {name: limit.name, type: "number", min: "0", step: limit.step, inputmode: "decimal",
      value: String(user.limits[limit.name]), id: "limit-" + limit.name});
    inputs[limit.name] = input;
    const reset = el("button", {type: "button", class: "ghost small", id: "reset-" + limit.name,
      disabled: !overrides.has(limit.name)}, "Reset to default");
    reset.addEventListener("click", () => send({[limit.name]: null}, limit.title + " is back to the default."));
    return el("div", {class: "limit-row"}, field(limit.title, input,
      overrides.has(limit.name) ? "override" : "default"), reset);
  });
  const form = el("form", {id: "limits-form", novalidate: true}, el("div", {class: "limit-rows"}, rows),
    el("div", {class: "form-actions"}, el("button", {type: "submit"}, "Save limits")), status);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const changes = {};
    for (const limit of LIMITS) {
      const raw = inputs[limit.name].value.trim();
      if (raw === "" || raw === String(user.limits[limit.name])) continue;
      changes[limit.name] = limit.name === "monthly_spend_cap_usd" ? raw : Number(raw);
    }
    if (!Object.keys(changes).length) {
      status.replaceChildren(message("info", "Nothing changed."));
      return;
    }
    send(changes, "Limits saved.");
  });
  return form;
}

function keysTable(user, refreshKeys, page) {
  return table([
    {title: "Name", cell: (k) => k.name},
    {title: "Prefix", cell: (k) => el("code", {}, k.prefix)},
    {title: "Status", cell: (k) => badge(k.status)},
    {title: "Created", cell: (k) => when(k.created_at)},
    {title: "Last used", cell: (k) => when(k.last_used_at)},
    {title: "Expires", cell: (k) => when(k.expires_at)},
    {title: "", cell: (k) => k.status === "active" ? revokeButton(k, refreshKeys, page) : null},
  ], user.keys, {id: "keys-table", empty: "No keys yet.", rowAttrs: (k) => ({"data-key-id": k.id})});
}

export async function render(view, params, page) {
  const id = params.id;
  const [user, quotas, daily] = await Promise.all([
    api("admin/users/" + id), api("admin/quotas/" + id), api("admin/usage/daily" + query({user_id: id})),
  ]);
  if (page.stale()) return;
  const keysSlot = el("div", {id: "keys-slot"});
  const refreshKeys = async () => {
    const fresh = await api("admin/users/" + id);
    keysSlot.replaceChildren(keysTable(fresh, refreshKeys, page));
  };
  keysSlot.append(keysTable(user, refreshKeys, page));
  const canvas = el("canvas", {id: "chart-user-daily", role: "img", "aria-label": "Spend per day of this user"});
  show(view, 
    header(user.name, user.email, badge(user.status), statusButton(user, page),
      el("a", {class: "button ghost", href: "#/audit" + query({user_id: user.id})}, "Audit log")),
    page.flashed(),
    el("div", {class: "grid-2"},
      panel("Quota use", el("div", {class: "quota-list", id: "user-quotas"}, QUOTAS.map((q) =>
        el("div", {class: "quota-row"}, el("span", {class: "quota-title"}, q.title),
          quotaBar(q.name, quotas.quotas[q.name]))))),
      panel("Spend per day, last 30 days", el("div", {class: "chart-box"}, canvas))),
    panel("Keys", keyCreator(user, refreshKeys), keysSlot),
    panel("Limits", limitsForm(user, page)),
  );
  page.chart(dailySpendChart(canvas, daily.data));
}
