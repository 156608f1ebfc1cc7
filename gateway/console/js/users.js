/* Users: create, search, filter by status, and each quota's use as a bar against its limit. */

import {api, query} from "./api.js";
import {badge, el, field, header, message, panel, show, table} from "./dom.js";
import {quotaBar} from "./quotas.js";

function createForm(page) {
  const name = el("input", {name: "name", required: true, maxlength: 200, autocomplete: "off"});
  const email = el("input", {name: "email", type: "email", required: true, maxlength: 254, autocomplete: "off"});
  const status = el("div", {class: "form-status"});
  const form = el("form", {class: "inline-form", id: "create-user", novalidate: true},
    field("Name", name), field("Email", email), el("button", {type: "submit"}, "Create user"), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const user = await api("admin/users", {method: "POST", body: {name: name.value, email: email.value}});
      page.go("#/users/" + user.id);
    } catch (error) {
      status.replaceChildren(message("error", error.message));
    }
  });
  return form;
}

function filterForm(params, page) {
  const search = el("input", {name: "search", type: "search", value: params.search || "",
    placeholder: "name or email", maxlength: 200});
  const status = el("select", {name: "status"},
    ["", "active", "suspended"].map((value) => el("option", {value, selected: value === (params.status || "")},
      value || "any status")));
  const form = el("form", {class: "inline-form", id: "user-filter"},
    field("Search", search), field("Status", status), el("button", {type: "submit"}, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    page.go("#/users" + query({search: search.value.trim(), status: status.value}));
  });
  return form;
}

export async function render(view, params, page) {
  const result = await api("admin/quotas" + query({search: params.search, status: params.status,
    cursor: params.cursor, limit: 50}));
  if (page.stale()) return;
  const next = result.next_cursor
    ? el("a", {class: "button ghost", href: "#/users" + query({...params, cursor: result.next_cursor})}, "Next page")
    : null;
  const first = params.cursor
    ? el("a", {class: "button ghost", href: "#/users" + query({...params, cursor: ""})}, "First page") : null;
  show(view, 
    header("Users", "Quota use right now: today's requests and tokens, this month's spend, requests in flight."),
    panel("New user", createForm(page)),
    panel(null, filterForm(params, page), table([
      {title: "Name", cell: (u) => el("a", {href: "#/users/" + u.user_id, class: "user-name"}, u.name)},
      {title: "Email", cell: (u) => u.email},
      {title: "Status", cell: (u) => badge(u.status)},
      {title: "Requests today", cell: (u) => quotaBar("daily_requests", u.quotas.daily_requests)},
      {title: "Tokens today", cell: (u) => quotaBar("daily_tokens", u.quotas.daily_tokens)},
      {title: "Spend this month", cell: (u) => quotaBar("monthly_spend_usd", u.quotas.monthly_spend_usd)},
      {title: "In flight", cell: (u) => quotaBar("concurrent_requests", u.quotas.concurrent_requests)},
    ], result.data, {id: "users-table", empty: "No users match.", rowAttrs: (u) => ({"data-user-id": u.user_id})}),
    el("div", {class: "pager"}, first, next)),
  );
}
