/* Overview: this month's spend, today's requests and errors, spend per day, per model, top users, near caps. */

import {api} from "./api.js";
import {dailySpendChart, modelChart} from "./charts.js";
import {el, header, panel, show, table} from "./dom.js";
import {count, percent, usd} from "./format.js";
import {quotaBar, quotaTitle} from "./quotas.js";

function card(id, title, value, note) {
  return el("div", {class: "card", id},
    el("div", {class: "card-title"}, title), el("div", {class: "card-value"}, value),
    note ? el("div", {class: "card-note"}, note) : null);
}

function userLink(row) {
  return el("a", {href: "#/users/" + row.user_id}, row.name);
}

export async function render(view, _params, page) {
  const [month, daily, byModel, top, near] = await Promise.all([
    api("admin/usage"),
    api("admin/usage/daily"),
    api("admin/usage?group_by=model"),
    api("admin/usage/users?limit=10"),
    api("admin/quotas/near-caps?threshold=0.8&limit=10"),
  ]);
  if (page.stale()) return;
  const today = daily.data[daily.data.length - 1];
  const dailyCanvas = el("canvas", {id: "chart-daily", role: "img",
    "aria-label": "Spend per day from " + daily.from + " to " + daily.to});
  const modelCanvas = el("canvas", {id: "chart-models", role: "img", "aria-label": "Spend and requests by model"});
  show(view, 
    header("Overview", "All times UTC. Month so far: " + month.from + " to " + month.to + "."),
    el("div", {class: "cards"},
      card("kpi-spend-month", "Spend this month", usd(month.totals.cost_usd),
        count(month.totals.requests) + " requests, " + count(month.totals.total_tokens) + " tokens"),
      card("kpi-requests-today", "Requests today", count(today.requests), today.day),
      card("kpi-errors-today", "Errors today", count(today.errors),
        today.requests ? percent(today.errors / (today.requests + today.errors)) + " of today's rows" : today.day),
      card("kpi-spend-today", "Spend today", usd(today.cost_usd), count(today.total_tokens) + " tokens")),
    el("div", {class: "grid-2"},
      panel("Spend per day, last 30 days", el("div", {class: "chart-box"}, dailyCanvas)),
      panel("Spend and requests by model, this month", el("div", {class: "chart-box"}, modelCanvas))),
    el("div", {class: "grid-2"},
      panel("Top users by spend, this month", table([
        {title: "User", cell: userLink},
        {title: "Requests", cell: (r) => count(r.requests), numeric: true},
        {title: "Errors", cell: (r) => count(r.errors), numeric: true},
        {title: "Tokens", cell: (r) => count(r.total_tokens), numeric: true},
        {title: "Spend", cell: (r) => usd(r.cost_usd), numeric: true},
      ], top.data, {id: "top-users", empty: "No usage this month."})),
      panel("Users near their caps (80 % or more)", table([
        {title: "User", cell: userLink},
        {title: "Nearest cap", cell: (r) => quotaTitle(r.nearest.quota)},
        {title: "Use", cell: (r) => quotaBar(r.nearest.quota, r.quotas[r.nearest.quota])},
      ], near.data, {id: "near-caps", empty: "No user is at 80 % of a quota."}))),
  );
  page.chart(dailySpendChart(dailyCanvas, daily.data));
  page.chart(modelChart(modelCanvas, byModel.groups));
}
