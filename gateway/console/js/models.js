/* Models and prices: the catalog as the gateway prices it (USD per 1M tokens), and which providers are on. */

import {api} from "./api.js";
import {badge, el, header, panel, show, table} from "./dom.js";
import {count, usd} from "./format.js";

export async function render(view, _params, page) {
  const models = await api("admin/models");
  if (page.stale()) return;
  show(view, 
    header("Models and prices", "USD per 1M tokens. Cost of a request = tokens x these prices, exact to 1e-9 USD."),
    panel(null, table([
      {title: "Model", cell: (m) => el("code", {}, m.id)},
      {title: "Provider", cell: (m) => m.provider},
      {title: "Available", cell: (m) => badge(m.available ? "configured" : "not_configured")},
      {title: "Aliases", cell: (m) => m.aliases.join(", ") || "—"},
      {title: "Context", cell: (m) => count(m.context_window), numeric: true},
      {title: "Max output", cell: (m) => count(m.max_output_tokens), numeric: true},
      {title: "Input", cell: (m) => usd(m.pricing.input_per_1m), numeric: true},
      {title: "Cached input", cell: (m) => usd(m.pricing.cached_input_per_1m), numeric: true},
      {title: "Output", cell: (m) => usd(m.pricing.output_per_1m), numeric: true},
      {title: "Price version", cell: (m) => m.pricing.price_version || "—"},
    ], models.data, {id: "models-table"})),
  );
}
