/* Keys of one user: create (the plaintext is shown once, with a copy button, and kept nowhere) and revoke. */

import {api} from "./api.js";
import {el, field, message} from "./dom.js";

/* Shows a new key's plaintext until dismissed or the page changes; the console never stores it. */
function revealed(created, onDone) {
  const value = el("input", {id: "new-key-value", type: "text", readonly: true, value: created.api_key,
    spellcheck: "false", "aria-label": "The new key"});
  const copy = el("button", {type: "button", id: "copy-key"}, "Copy");
  const copied = el("span", {class: "muted", role: "status"});
  copy.addEventListener("click", async () => {
    value.select();
    try {
      await navigator.clipboard.writeText(value.value);
      copied.textContent = "Copied.";
    } catch (_error) {
      copied.textContent = document.execCommand("copy") ? "Copied." : "Select the key and copy it by hand.";
    }
  });
  const done = el("button", {type: "button", class: "ghost", id: "dismiss-key"}, "Done");
  done.addEventListener("click", onDone);
  return el("div", {class: "new-key", id: "new-key", role: "status"},
    el("strong", {}, "Key \u201c" + created.name + "\u201d created. Copy it now: it is shown only this once."),
    el("div", {class: "copy-row"}, value, copy, done), copied);
}

export function keyCreator(user, refreshKeys) {
  const name = el("input", {name: "name", id: "new-key-name", required: true, maxlength: 200, autocomplete: "off"});
  const expires = el("input", {name: "expires_at", id: "new-key-expires", type: "date"});
  const slot = el("div", {});
  const form = el("form", {class: "inline-form", id: "create-key", novalidate: true},
    field("Key name", name), field("Expires (UTC, optional)", expires), el("button", {type: "submit"}, "Create key"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {user_id: user.id, name: name.value};
    if (expires.value) body.expires_at = expires.value + "T00:00:00Z";
    try {
      const created = await api("admin/keys", {method: "POST", body});
      name.value = "";
      expires.value = "";
      await refreshKeys();
      slot.replaceChildren(revealed(created, () => slot.replaceChildren()));
    } catch (error) {
      slot.replaceChildren(message("error", error.message));
    }
  });
  return el("div", {class: "key-creator"}, form, slot);
}

/* Two clicks: "Revoke", then "Confirm revoke" (no browser dialog). */
export function revokeButton(key, refreshKeys, page) {
  const button = el("button", {type: "button", class: "ghost small danger-text", "data-revoke": key.id}, "Revoke");
  button.addEventListener("click", async () => {
    if (button.dataset.armed !== "1") {
      button.dataset.armed = "1";
      button.textContent = "Confirm revoke";
      return;
    }
    button.disabled = true;
    try {
      await api("admin/keys/" + key.id, {method: "DELETE"});
      await refreshKeys();
    } catch (error) {
      page.flash("error", error.message);
      page.reload();
    }
  });
  return button;
}
