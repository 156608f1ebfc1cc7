/* Dominion Gateway API docs: renders /openapi.json into plain HTML. No dependencies, no network but
   the document itself, no innerHTML (every text from the document is set as text). */
"use strict";

(function () {
  const MAX_DEPTH = 6;
  const METHODS = ["get", "post", "put", "patch", "delete"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  /* Text with `code` spans, built as nodes. */
  function prose(text) {
    const span = el("span");
    String(text || "").split("`").forEach((part, i) => span.append(i % 2 ? el("code", {}, part) : part));
    return span;
  }

  function specUrl() {
    const base = window.location.pathname.replace(/\/docs\/?$/, "");
    return base + "/openapi.json";
  }

  function resolve(spec, schema) {
    let seen = 0;
    while (schema && schema.$ref && seen < 20) {
      const path = schema.$ref.replace(/^#\//, "").split("/");
      schema = path.reduce((node, key) => (node ? node[key] : undefined), spec);
      seen += 1;
    }
    return schema || {};
  }

  function refName(schema) {
    return schema && schema.$ref ? schema.$ref.split("/").pop() : null;
  }

  function typeLabel(spec, raw) {
    const schema = resolve(spec, raw);
    const parts = [];
    if (schema.type === "array") {
      const items = schema.items || {};
      parts.push("array of " + (refName(items) || typeLabel(spec, items)));
    } else if (schema.oneOf || schema.anyOf) {
      parts.push("one of: " + (schema.oneOf || schema.anyOf).map((s) => refName(s) || typeLabel(spec, s)).join(" | "));
    } else {
      parts.push(refName(raw) || schema.type || "any");
    }
    if (schema.format) parts.push("(" + schema.format + ")");
    if (schema.nullable) parts.push("or null");
    return parts.join(" ");
  }

  function constraints(schema) {
    const notes = [];
    if (schema.enum) notes.push("one of " + schema.enum.map((v) => JSON.stringify(v)).join(", "));
    if (schema.minimum !== undefined) notes.push("≥ " + schema.minimum);
    if (schema.maximum !== undefined) notes.push("≤ " + schema.maximum);
    if (schema.minLength !== undefined) notes.push("min length " + schema.minLength);
    if (schema.maxLength !== undefined) notes.push("max length " + schema.maxLength);
    if (schema.minItems !== undefined) notes.push("min items " + schema.minItems);
    if (schema.maxItems !== undefined) notes.push("max items " + schema.maxItems);
    if (schema.pattern) notes.push("pattern " + schema.pattern);
    if (schema.default !== undefined) notes.push("default " + JSON.stringify(schema.default));
    if (schema.additionalProperties === false) notes.push("no other fields");
    return notes.join("; ");
  }

  function schemaTree(spec, raw, depth) {
    const schema = resolve(spec, raw);
    if (depth > MAX_DEPTH) return el("span", { class: "note" }, "…");
    if (schema.type === "array" && schema.items) {
      const inner = resolve(spec, schema.items);
      return inner.properties ? schemaTree(spec, schema.items, depth + 1) : el("span");
    }
    if (schema.oneOf || schema.anyOf) {
      const list = el("ul", { class: "schema" });
      (schema.oneOf || schema.anyOf).forEach((option) => {
        list.append(el("li", {}, el("span", { class: "type" }, typeLabel(spec, option)), " ",
          el("span", { class: "note" }, constraints(resolve(spec, option))), schemaTree(spec, option, depth + 1)));
      });
      return list;
    }
    if (!schema.properties) return el("span");
    const required = new Set(schema.required || []);
    const list = el("ul", { class: "schema" });
    for (const [name, prop] of Object.entries(schema.properties)) {
      const resolved = resolve(spec, prop);
      list.append(el("li", {},
        el("span", { class: "name" }, name),
        required.has(name) ? el("span", { class: "req" }, "required") : null, " ",
        el("span", { class: "type" }, typeLabel(spec, prop)), " ",
        el("span", { class: "note" }, constraints(resolved)),
        resolved.description ? el("div", { class: "note" }, prose(resolved.description)) : null,
        schemaTree(spec, prop, depth + 1)));
    }
    if (schema.additionalProperties === true) list.append(el("li", { class: "note" }, "… and possibly more fields"));
    return list;
  }

  function parametersTable(spec, parameters) {
    const table = el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"),
      el("th", {}, "details")));
    for (const raw of parameters) {
      const p = resolve(spec, raw);
      const schema = p.schema || {};
      table.append(el("tr", {},
        el("td", {}, el("span", { class: "name" }, p.name), p.required ? el("span", { class: "req" }, "required") : null),
        el("td", {}, p.in), el("td", {}, el("span", { class: "type" }, typeLabel(spec, schema))),
        el("td", {}, constraints(resolve(spec, schema)), p.description ? el("div", { class: "note" }, prose(p.description)) : null)));
    }
    return table;
  }

  function contentBlock(spec, content) {
    const block = el("div");
    for (const [media, body] of Object.entries(content || {})) {
      block.append(el("div", {}, el("code", {}, media), " ",
        el("span", { class: "type" }, typeLabel(spec, body.schema || {}))), schemaTree(spec, body.schema || {}, 0));
      if (body.example !== undefined) {
        block.append(el("div", { class: "note" }, "Example"), el("pre", {}, JSON.stringify(body.example, null, 2)));
      }
    }
    return block;
  }

  function securityText(spec, op) {
    if (!op.security || !op.security.length) return "No credentials needed.";
    const schemes = (spec.components && spec.components.securitySchemes) || {};
    const names = op.security.map((req) => Object.keys(req).map((n) => {
      const s = schemes[n] || {};
      return s.type === "apiKey" ? `${s.name} header` : `Bearer (${n})`;
    }).join(" + ") || "none");
    return "Credentials: " + names.join(" or ") + ".";
  }

  function operationCard(spec, path, method, op, pathParams) {
    const id = op.operationId || method + path;
    const card = el("article", { id },
      el("h3", {}, el("span", { class: "method " + method }, method.toUpperCase()), path),
      el("p", { class: "summary" }, prose(op.summary || "")),
      el("div", { class: "auth" }, securityText(spec, op)));
    const params = [...(pathParams || []), ...(op.parameters || [])];
    if (params.length) card.append(el("h4", {}, "Parameters"), parametersTable(spec, params));
    if (op.requestBody) card.append(el("h4", {}, "Request body"), contentBlock(spec, op.requestBody.content));
    card.append(el("h4", {}, "Responses"));
    for (const [status, raw] of Object.entries(op.responses || {})) {
      const response = resolve(spec, raw);
      const details = el("details", {}, el("summary", {}, el("span", { class: "status" }, status),
        prose(response.description || "")), contentBlock(spec, response.content));
      if (status.startsWith("2")) details.open = true;
      card.append(details);
    }
    return card;
  }

  function render(spec) {
    const info = spec.info || {};
    document.getElementById("title").textContent = `${info.title || "API"} ${info.version || ""}`;
    const subtitle = document.getElementById("subtitle");
    subtitle.textContent = "";
    subtitle.append(prose(info.description || ""), " ", el("a", { href: specUrl() }, "OpenAPI document"));
    const toc = document.getElementById("toc");
    const content = document.getElementById("content");
    const tags = (spec.tags || []).map((t) => t.name);
    const byTag = {};
    for (const [path, item] of Object.entries(spec.paths || {})) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const tag = (op.tags && op.tags[0]) || "other";
        if (!tags.includes(tag)) tags.push(tag);
        (byTag[tag] = byTag[tag] || []).push([path, method, op, item.parameters]);
      }
    }
    for (const tag of tags) {
      if (!byTag[tag]) continue;
      const meta = (spec.tags || []).find((t) => t.name === tag) || {};
      const section = el("section", { class: "tag", id: "tag-" + tag }, el("h2", {}, tag),
        meta.description ? el("p", {}, prose(meta.description)) : null);
      toc.append(el("h2", {}, tag));
      for (const [path, method, op, pathParams] of byTag[tag]) {
        const card = operationCard(spec, path, method, op, pathParams);
        section.append(card);
        toc.append(el("a", { href: "#" + card.id }, `${method.toUpperCase()} ${path}`));
      }
      content.append(section);
    }
  }

  fetch(specUrl(), { headers: { Accept: "application/json" } })
    .then((response) => {
      if (!response.ok) throw new Error(`GET ${specUrl()} answered ${response.status}`);
      return response.json();
    })
    .then(render)
    .catch((error) => {
      const subtitle = document.getElementById("subtitle");
      subtitle.textContent = "Could not load the OpenAPI document: " + error.message;
      subtitle.className = "error";
    });
})();
