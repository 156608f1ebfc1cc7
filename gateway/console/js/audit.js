/* Audit log: filter by user, status, model and UTC dates; page through newest first; a row's full detail,
   its price snapshot and its prompt record (as stored under PROMPT_LOGGING). */

import {api, query} from "./api.js";
import {badge, el, field, header, panel, show, table} from "./dom.js";
import {count, usd, when} from "./format.js";

const STATUSES = ["", "ok", "pending", "upstream_error", "client_disconnected", "internal_error", "quota_exceeded",
  "concurrency_limited", "invalid_request", "reconciled", "released"];
const FILTERS = ["user_id", "status", "model", "from", "to"];

function filterForm(params, models, page) {
  const inputs = {
    user_id: el("input", {name: "user_id", type: "number", min: "1", step: "1", value: params.user_id || ""}),
    status: el("select", {name: "status"}, STATUSES.map((value) =>
      el("option", {value, selected: value === (params.status || "")}, value || "any status"))),
    model: el("input", {name: "model", list: "audit-models", value: params.model || "", maxlength: 100,
      autocomplete: "off"}),
    from: el("input", {name: "from", type: "date", value: params.from || ""}),
    to: el("input", {name: "to", type: "date", value: params.to || ""}),
  };
  const form = el("form", {class: "inline-form", id: "audit-filter", novalidate: true},
    field("User id", inputs.user_id), field("Status", inputs.status), field("Model", inputs.model),
    field("From (UTC)", inputs.from), field("To (UTC)", inputs.to),
    el("datalist", {id: "audit-models"}, models.map((m) => el("option", {value: m.id}))),
    el("button", {type: "submit"}, "Filter"),
    el("a", {class: "button ghost", href: "#/audit"}, "Clear"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = {};
    for (const name of FILTERS) chosen[name] = inputs[name].value.trim();
    page.go("#/audit" + query(chosen));
  });
  return form;
}

function pairs(object, id) {
  if (!object) return el("p", {class: "muted", id}, "none recorded");
  return el("dl", {class: "pairs", id}, Object.entries(object).map(([name, value]) =>
    [el("dt", {}, name), el("dd", {}, typeof value === "object" && value !== null ? JSON.stringify(value) : String(value))]));
}

function detail(record) {
  const fields = {...record};
  delete fields.price_snapshot;
  delete fields.prompt_record;
  fields.cost_usd = usd(record.cost_usd);
  return el("div", {class: "record-detail", id: "record-detail"},
    el("div", {class: "detail-head"}, el("h3", {}, "Request " + record.request_id),
      el("button", {type: "button", class: "ghost small", id: "close-detail",
        onclick: (event) => event.target.closest(".record-detail").remove()}, "Close")),
    el("div", {class: "grid-3"},
      el("div", {}, el("h4", {}, "Row"), pairs(fields, "record-fields")),
      el("div", {}, el("h4", {}, "Price snapshot"), pairs(record.price_snapshot, "price-snapshot")),
      el("div", {}, el("h4", {}, "Prompt record"),
        record.prompt_record ? el("pre", {id: "prompt-record"}, JSON.stringify(record.prompt_record, null, 2))
          : el("p", {class: "muted"}, "none recorded (PROMPT_LOGGING=off, or refused before it was read)"))));
}

export async function render(view, params, page) {
  const filters = Object.fromEntries(FILTERS.map((name) => [name, params[name]]));
  const [records, models] = await Promise.all([
    api("admin/usage/records" + query({...filters, cursor: params.cursor, limit: 50})), api("admin/models"),
  ]);
  if (page.stale()) return;
  const slot = el("div", {id: "detail-slot"});
  const rowFor = new Map(records.data.map((r) => [r.request_id, r]));
  const list = table([
    {title: "Time", cell: (r) => when(r.created_at)},
    {title: "Request id", cell: (r) => el("button", {type: "button", class: "link", "data-request-id": r.request_id,
      onclick: () => { slot.replaceChildren(detail(rowFor.get(r.request_id))); slot.scrollIntoView(); }},
      r.request_id)},
    {title: "User", cell: (r) => el("a", {href: "#/users/" + r.user_id}, "#" + r.user_id)},
    {title: "Model", cell: (r) => r.model || "—"},
    {title: "Status", cell: (r) => badge(r.status)},
    {title: "HTTP", cell: (r) => r.http_status === null ? "—" : String(r.http_status), numeric: true},
    {title: "Tokens", cell: (r) => count(r.prompt_tokens + r.completion_tokens), numeric: true},
    {title: "Cost", cell: (r) => usd(r.cost_usd), numeric: true},
    {title: "Latency", cell: (r) => r.latency_ms === null ? "—" : count(r.latency_ms) + " ms", numeric: true},
  ], records.data, {id: "audit-table", empty: "No audit rows match.",
    rowAttrs: (r) => ({"data-status": r.status})});
  const next = records.next_cursor
    ? el("a", {class: "button ghost", id: "audit-next", href: "#/audit" + query({...filters, cursor: records.next_cursor})},
      "Older") : null;
  const newest = params.cursor
    ? el("a", {class: "button ghost", href: "#/audit" + query(filters)}, "Newest") : null;
  show(view, 
    header("Audit log", "One row per authenticated request, newest first. Dates are UTC days."),
    panel(null, filterForm(params, models.data, page), list, el("div", {class: "pager"}, newest, next)),
    slot,
  );
}
