/* Building DOM from data: every string becomes a text node, never parsed as markup. */

/* el("a", {href: "#/x", class: "y", onclick: fn}, "text", childNode, ...) */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/* Replace a node's children, skipping null/false (replaceChildren would print them as text). */
export function show(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/* A page heading with an optional subtitle and actions on the right. */
export function header(title, subtitle, ...actions) {
  return el("header", {class: "page-header"},
    el("div", {}, el("h1", {}, title), subtitle ? el("p", {class: "muted"}, subtitle) : null),
    actions.length ? el("div", {class: "actions"}, actions) : null);
}

export function panel(title, ...children) {
  return el("section", {class: "panel"}, title ? el("h2", {}, title) : null, children);
}

/* columns: [{title, cell: row => Node|string, numeric}] */
export function table(columns, rows, {empty = "Nothing here yet.", id, rowAttrs} = {}) {
  const head = el("tr", {}, columns.map((c) => el("th", {class: c.numeric ? "num" : null, scope: "col"}, c.title)));
  const body = rows.map((row) => el("tr", rowAttrs ? rowAttrs(row) : {},
    columns.map((c) => el("td", {class: c.numeric ? "num" : null}, c.cell(row)))));
  if (!rows.length) body.push(el("tr", {}, el("td", {colspan: columns.length, class: "empty"}, empty)));
  return el("div", {class: "table-wrap"}, el("table", {id}, el("thead", {}, head), el("tbody", {}, body)));
}

export function badge(status) {
  return el("span", {class: "badge badge-" + String(status).replace(/[^a-z_]/g, "")}, status);
}

/* A use bar: fill is fraction of the limit (capped at 100 %); the label says the exact figures. */
export function bar(fraction, label, title) {
  const fill = el("span", {class: "bar-fill"});
  const width = fraction === null || fraction === undefined ? 0 : Math.min(1, Math.max(0, fraction));
  fill.style.width = (width * 100).toFixed(1) + "%";
  const level = fraction >= 1 ? "full" : fraction >= 0.8 ? "high" : "ok";
  return el("div", {class: "bar bar-" + level, title: title || label},
    el("div", {class: "bar-track"}, fill), el("div", {class: "bar-label"}, label));
}

/* A labelled input for small forms. */
export function field(label, input, note) {
  return el("label", {class: "field"}, el("span", {class: "field-label"}, label), input,
    note ? el("span", {class: "field-note"}, note) : null);
}

export function message(kind, text) {
  return el("p", {class: "message message-" + kind, role: kind === "error" ? "alert" : "status"}, text);
}
