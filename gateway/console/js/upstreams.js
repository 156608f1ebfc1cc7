/* Upstreams: configured providers and today's outcomes from the audit log. Routing (named upstreams with
   health checks) is not in the gateway yet; when it lands, its health shows here next to these columns. */

import {api} from "./api.js";
import {badge, el, header, message, panel, show, table} from "./dom.js";
import {count, when} from "./format.js";

export async function render(view, _params, page) {
  const status = await api("admin/upstreams");
  if (page.stale()) return;
  show(view, 
    header("Upstreams", "Today (" + status.day + ", UTC), from the audit log."),
    status.routing_configured ? null : message("info",
      "Routing is not configured: each model goes to its catalog provider. Upstream health checks appear here " +
      "once routing lands; until then this page shows which providers are configured and how today's requests went."),
    panel(null, table([
      {title: "Provider", cell: (p) => el("code", {}, p.name)},
      {title: "Configured", cell: (p) => badge(p.configured ? "configured" : "not_configured")},
      {title: "Catalog models", cell: (p) => count(p.models), numeric: true},
      {title: "Requests today", cell: (p) => count(p.requests_today), numeric: true},
      {title: "Upstream errors today", cell: (p) => count(p.upstream_errors_today), numeric: true},
      {title: "Last upstream error", cell: (p) => when(p.last_upstream_error_at)},
      {title: "Mean upstream latency", numeric: true,
        cell: (p) => p.mean_upstream_latency_ms === null ? "—" : count(p.mean_upstream_latency_ms) + " ms"},
    ], status.providers, {id: "upstreams-table"})),
  );
}
