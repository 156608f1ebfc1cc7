/* The console's shell: sign-in and sign-out, and a hash router (#/users/3?...) that renders one page at a time.
   The admin token never appears in the address, a cookie or the console log. */

import {ApiError, api, onRefused, session} from "./api.js";
import {el, message} from "./dom.js";
import * as audit from "./audit.js";
import * as models from "./models.js";
import * as overview from "./overview.js";
import * as upstreams from "./upstreams.js";
import * as user from "./user.js";
import * as users from "./users.js";

const ROUTES = [
  {pattern: /^\/overview$/, name: "overview", page: overview},
  {pattern: /^\/users$/, name: "users", page: users},
  {pattern: /^\/users\/(?<id>[1-9][0-9]{0,9})$/, name: "user", nav: "users", page: user},
  {pattern: /^\/audit$/, name: "audit", page: audit},
  {pattern: /^\/models$/, name: "models", page: models},
  {pattern: /^\/upstreams$/, name: "upstreams", page: upstreams},
];

const view = () => document.getElementById("view");
let renderCount = 0;
let shownPath = null;
let charts = [];
let flash = null;

function parseHash() {
  const raw = window.location.hash.replace(/^#/, "") || "/overview";
  const [path, search] = raw.split("?");
  return {path, params: Object.fromEntries(new URLSearchParams(search || ""))};
}

function setState(state, name) {
  document.body.dataset.state = state;
  if (name) document.body.dataset.page = name;
}

/* What a page may do: know it was superseded, register charts, navigate, reload with a message. */
function pageContext(id) {
  return {
    stale: () => id !== renderCount,
    chart: (chart) => charts.push(chart),
    go: (hash) => { if (window.location.hash === hash) render(); else window.location.hash = hash; },
    reload: (info) => { if (info) flash = {kind: "info", text: info}; render(); },
    flash: (kind, text) => { flash = {kind, text}; },
    flashed: () => { const shown = flash ? message(flash.kind, flash.text) : null; flash = null; return shown; },
  };
}

async function render() {
  if (!session.token()) return showSignIn();
  const id = ++renderCount;
  const {path, params} = parseHash();
  const route = ROUTES.find((r) => r.pattern.test(path));
  charts.forEach((chart) => chart.destroy());
  charts = [];
  document.querySelectorAll("[data-nav]").forEach((link) =>
    link.classList.toggle("active", route && link.dataset.nav === (route.nav || route.name)));
  if (!route) {
    view().replaceChildren(message("error", "No such page. Use the menu on the left."));
    return setState("ready", "missing");
  }
  setState("loading", route.name);
  if (path !== shownPath) window.scrollTo(0, 0);
  shownPath = path;
  const match = route.pattern.exec(path);
  const context = pageContext(id);
  if (!view().firstChild) view().append(el("p", {class: "muted"}, "Loading\u2026"));
  try {
    await route.page.render(view(), {...params, ...(match.groups || {})}, context);
    if (!context.stale()) {
      const pending = context.flashed();
      if (pending) view().prepend(pending);
      setState("ready", route.name);
    }
  } catch (error) {
    if (context.stale() || !session.token()) return;
    view().replaceChildren(message("error", error instanceof ApiError ? error.message
      : "The page failed: " + error.message));
    setState("error", route.name);
  }
}

function showSignIn(reason) {
  renderCount += 1;
  charts.forEach((chart) => chart.destroy());
  charts = [];
  document.getElementById("shell").hidden = true;
  view().replaceChildren();
  document.getElementById("signin").hidden = false;
  const error = document.getElementById("signin-error");
  error.hidden = !reason;
  error.textContent = reason || "";
  setState("signin", "signin");
  document.getElementById("signin-token").focus();
}

function showShell() {
  document.getElementById("signin").hidden = true;
  document.getElementById("shell").hidden = false;
  render();
}

function refusalText(error) {
  if (error.status === 401) return "That admin token was refused. Paste the gateway's ADMIN_TOKEN exactly " +
    "(with `make run` it is in data/admin_token).";
  if (error.status === 429) return "Too many wrong tokens from this address: wait a minute, then try again.";
  return error.message;
}

async function signIn(event) {
  event.preventDefault();
  const input = document.getElementById("signin-token");
  const button = document.getElementById("signin-submit");
  const token = input.value.trim();
  if (!token) return showSignIn("Enter the admin token.");
  button.disabled = true;
  try {
    await api("admin/users?limit=1", {token});
    session.save(token);
    input.value = "";
    showShell();
  } catch (error) {
    input.value = "";
    showSignIn(refusalText(error));
  } finally {
    button.disabled = false;
  }
}

function signOut() {
  session.clear();
  showSignIn();
}

function start() {
  document.getElementById("signin-form").addEventListener("submit", signIn);
  document.getElementById("signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", () => { if (session.token()) render(); });
  onRefused(() => { session.clear(); showSignIn("The admin token is no longer accepted; sign in again."); });
  if (session.token()) showShell(); else showSignIn();
}

start();
