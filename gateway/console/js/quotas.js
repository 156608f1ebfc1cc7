/* Quota use as bars against limits, shared by the Users list, a user's page and the overview. */

import {bar, el} from "./dom.js";
import {count, percent, usd} from "./format.js";

export const QUOTAS = [
  {name: "daily_requests", title: "Requests today", format: count},
  {name: "daily_tokens", title: "Tokens today", format: count},
  {name: "monthly_spend_usd", title: "Spend this month", format: usd},
  {name: "concurrent_requests", title: "In flight", format: count},
];

export function quotaTitle(name) {
  const quota = QUOTAS.find((q) => q.name === name);
  return quota ? quota.title : name;
}

/* "used (+ reserved in flight) of limit"; a limit of null (concurrency with max_concurrent_requests 0) has no bar. */
export function quotaBar(name, entry) {
  const quota = QUOTAS.find((q) => q.name === name);
  if (entry.limit === null) {
    return el("div", {class: "bar bar-none"}, el("div", {class: "bar-label"},
      quota.format(entry.used) + " · no limit"));
  }
  const reserved = entry.reserved ? " (+" + quota.format(entry.reserved) + " in flight)" : "";
  const label = quota.format(entry.used) + reserved + " of " + quota.format(entry.limit);
  return bar(entry.fraction, label, label + " — " + percent(entry.fraction));
}
