/* Upstreams: what the router of the answering worker sees now (states, cooldowns, per deployment), and how
   today's requests went per upstream across every worker (from the audit log). */

import {api} from "./api.js";
import {badge, el, header, panel, show, table} from "./dom.js";
import {count, when} from "./format.js";

export async function render(view, _params, page) {
  const [live, today] = await Promise.all([api("admin/upstreams"), api("admin/usage/upstreams")]);
  if (page.stale()) return;
  const deployments = live.data.flatMap((upstream) =>
    upstream.deployments.map((deployment) => ({upstream: upstream.name, ...deployment})));
  show(view,
    header("Upstreams", "Router state in worker " + live.pid + " (cooldowns are per process), and today's " +
      "outcomes (" + today.day + ", UTC) from the audit log."),
    panel("Upstreams", table([
      {title: "Upstream", cell: (u) => el("code", {}, u.name)},
      {title: "Kind", cell: (u) => u.kind},
      {title: "State", cell: (u) => badge(u.state)},
      {title: "Base URL", cell: (u) => u.base_url || "—"},
      {title: "Key variable", cell: (u) => u.api_key_env || "—"},
      {title: "Requests", cell: (u) => count(u.requests), numeric: true},
      {title: "Failures", cell: (u) => count(u.failures), numeric: true},
      {title: "Why unavailable", cell: (u) => u.unavailable_reason || "—"},
    ], live.data, {id: "upstreams-table"})),
    panel("Deployments", table([
      {title: "Upstream", cell: (d) => el("code", {}, d.upstream)},
      {title: "Model", cell: (d) => el("code", {}, d.model)},
      {title: "Upstream model", cell: (d) => d.upstream_model},
      {title: "Weight", cell: (d) => count(d.weight), numeric: true},
      {title: "State", cell: (d) => badge(d.state)},
      {title: "Cooling down until", cell: (d) => when(d.cooldown_until)},
      {title: "Failures in a row", cell: (d) => count(d.failures_in_a_row), numeric: true},
      {title: "Last error", cell: (d) => d.last_error ? d.last_error.type + ": " + d.last_error.message : "—"},
    ], deployments, {id: "deployments-table", empty: "No deployments."})),
    panel("Today", table([
      {title: "Upstream", cell: (p) => el("code", {}, p.name)},
      {title: "Configured", cell: (p) => badge(p.configured ? "configured" : "not_configured")},
      {title: "Catalog models", cell: (p) => count(p.models), numeric: true},
      {title: "Requests today", cell: (p) => count(p.requests_today), numeric: true},
      {title: "Upstream errors today", cell: (p) => count(p.upstream_errors_today), numeric: true},
      {title: "Last upstream error", cell: (p) => when(p.last_upstream_error_at)},
      {title: "Mean upstream latency", numeric: true,
        cell: (p) => p.mean_upstream_latency_ms === null ? "—" : count(p.mean_upstream_latency_ms) + " ms"},
    ], today.providers, {id: "outcomes-table"})),
  );
}
