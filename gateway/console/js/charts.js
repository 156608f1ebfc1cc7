/* Charts drawn by the vendored Chart.js (vendor/chart.umd.min.js, MIT): no animation, so what a screenshot
   or a test reads is the final picture; tooltips show the same exact figures as the tables. */

import {count, usd} from "./format.js";

const SPEND = "#2563eb";
const REQUESTS = "#f59e0b";

function chartLibrary() {
  if (!window.Chart) throw new Error("The charting library did not load (console/assets/vendor/chart.umd.min.js).");
  return window.Chart;
}

function base(scales) {
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    interaction: {mode: "index", intersect: false},
    plugins: {legend: {display: Object.keys(scales).length > 1, position: "bottom"}},
    scales,
  };
}

function moneyAxis(position) {
  return {position, beginAtZero: true, ticks: {callback: (value) => usd(value)}, grid: {color: "#eef2f7"}};
}

/* One bar per day: labels are ISO dates, values USD. */
export function dailySpendChart(canvas, days) {
  const Chart = chartLibrary();
  const options = base({x: {grid: {display: false}, ticks: {maxRotation: 0, autoSkipPadding: 12,
    callback(value) { return this.getLabelForValue(value).slice(5); }}}, y: moneyAxis("left")});
  options.plugins.tooltip = {callbacks: {label: (item) => " spend " + usd(item.raw)}};
  return new Chart(canvas, {
    type: "bar",
    data: {labels: days.map((d) => d.day),
      datasets: [{label: "Spend (USD)", data: days.map((d) => d.cost_usd), backgroundColor: SPEND, borderRadius: 3}]},
    options,
  });
}

/* Spend (left axis) and requests (right axis) per model. */
export function modelChart(canvas, groups) {
  const Chart = chartLibrary();
  const options = base({x: {grid: {display: false}}, spend: moneyAxis("left"),
    requests: {position: "right", beginAtZero: true, grid: {display: false}, ticks: {precision: 0}}});
  options.plugins.tooltip = {callbacks: {
    label: (item) => item.dataset.yAxisID === "spend" ? " spend " + usd(item.raw) : " requests " + count(item.raw)}};
  return new Chart(canvas, {
    type: "bar",
    data: {labels: groups.map((g) => g.key === null ? "(no model)" : g.key),
      datasets: [
        {label: "Spend (USD)", data: groups.map((g) => g.cost_usd), backgroundColor: SPEND, yAxisID: "spend",
          borderRadius: 3},
        {label: "Requests", data: groups.map((g) => g.requests), backgroundColor: REQUESTS, yAxisID: "requests",
          borderRadius: 3},
      ]},
    options,
  });
}
