/* Numbers as the ledger has them: money to the nano-dollar (the ledger's unit), never rounded to cents. */

/* USD with every non-zero digit down to 1e-9 and at least cents: 0.000018 -> "$0.000018", 12.5 -> "$12.50". */
export function usd(value) {
  const fixed = Number(value || 0).toFixed(9);
  let [whole, fraction] = fixed.split(".");
  fraction = fraction.replace(/0+$/, "").padEnd(2, "0");
  return "$" + whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + fraction;
}

export function count(value) {
  return Number(value || 0).toLocaleString("en-US");
}

export function percent(fraction) {
  if (fraction === null || fraction === undefined) return "—";
  const value = fraction * 100;
  return (value < 10 && value > 0 ? value.toFixed(1) : Math.round(value)) + "%";
}

/* 2026-11-29T10:00:00.123456Z -> "2026-11-29 10:00:00 UTC" */
export function when(iso) {
  if (!iso) return "—";
  return String(iso).replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, " UTC");
}

export function todayUtc() {
  return new Date().toISOString().slice(0, 10);
}
