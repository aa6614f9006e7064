// The API keys page (#/keys): every key, creating one (its value shown once), enabling and
// disabling, reading a kept value back on demand, and deleting after confirmation.

import { h, field } from "./dom.js";
import { call, listAll, seg } from "./api.js";
import { confirmAction, formError, formatTime, run, showStatus, table, text } from "./ui.js";

// The value of a key, in a box that selects whole on click, for copying.
function secret(value) {
  return h("code", { class: "secret" }, value);
}

function valueCell(key) {
  const cell = h("td", { class: "value" });
  const reveal = h("button", { type: "button", class: "small" }, "Reveal");
  reveal.setAttribute("aria-label", `Reveal the value of API key ${key.name}`);
  const hidden = () => cell.replaceChildren(reveal);
  reveal.addEventListener("click", async () => {
    const got = await run(reveal, () =>
      call("GET", `/apikeys/${seg(key.id)}?includeValue=true`),
    );
    if (!got) return;
    const hide = h("button", { type: "button", class: "small" }, "Hide");
    hide.addEventListener("click", hidden);
    if (got.value) {
      cell.replaceChildren(secret(got.value), " ", hide);
    } else {
      cell.replaceChildren(
        h(
          "span",
          { class: "muted not-kept" },
          "Not kept: this server stores only a hash of each value (start it with " +
            "--keep-key-values to read values back). The value was shown once, at creation.",
        ),
        " ",
        hide,
      );
    }
  });
  hidden();
  return cell;
}

function keyRow(key, refresh) {
  const toggle = h("button", { type: "button", class: "small toggle" }, key.enabled ? "Disable" : "Enable");
  toggle.setAttribute("aria-label", `${key.enabled ? "Disable" : "Enable"} API key ${key.name}`);
  toggle.addEventListener("click", async () => {
    const updated = await run(toggle, () =>
      call("PATCH", `/apikeys/${seg(key.id)}`, {
        patchOperations: [{ op: "replace", path: "/enabled", value: String(!key.enabled) }],
      }),
    );
    if (updated) {
      showStatus(`API key "${updated.name}" is ${updated.enabled ? "enabled" : "disabled"}.`);
      await run([], refresh);
    }
  });
  const del = h("button", { type: "button", class: "small danger" }, "Delete");
  del.setAttribute("aria-label", `Delete API key ${key.name}`);
  del.addEventListener("click", async () => {
    const ok = await confirmAction(
      `Delete API key "${key.name}" (${key.id})? Calls with it are refused from now on, ` +
        "and it leaves every usage plan.",
    );
    if (!ok) return;
    const done = await run(del, async () => {
      await call("DELETE", `/apikeys/${seg(key.id)}`);
      return true;
    });
    if (done) {
      showStatus(`Deleted API key "${key.name}".`);
      await run([], refresh);
    }
  });
  return h(
    "tr",
    { dataset: { keyId: key.id }, class: key.enabled ? "" : "disabled" },
    h("th", { scope: "row", class: "name" }, key.name),
    h("td", {}, h("code", {}, key.id)),
    h("td", { class: "enabled" }, key.enabled ? "yes" : "no"),
    h("td", { class: "created" }, formatTime(key.createdDate)),
    valueCell(key),
    h("td", { class: "actions-cell" }, toggle, " ", del),
  );
}

export async function keysView(container) {
  const list = h("div", { id: "keys-list" });
  const refresh = async () => {
    const keys = await listAll("/apikeys");
    keys.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    list.replaceChildren(
      keys.length
        ? table(
            `${keys.length} API key${keys.length === 1 ? "" : "s"}`,
            ["Name", "Id", "Enabled", "Created", "Value", "Actions"],
            keys.map((k) => keyRow(k, refresh)),
            { id: "keys-table" },
          )
        : h("p", { class: "empty" }, "No API keys yet. Create one below."),
    );
  };
  await refresh();

  const created = h("div", { id: "key-created", class: "card notice", hidden: true, "aria-live": "polite" });
  const error = formError();
  const submit = h("button", { type: "submit" }, "Create key");
  const form = h(
    "form",
    { id: "key-create", class: "card", "aria-labelledby": "key-create-title" },
    h("h2", { id: "key-create-title" }, "Create an API key"),
    field("Name", h("input", { name: "name", autocomplete: "off" }), "Leave empty to name the key after its id."),
    field(
      "Value",
      h("input", { name: "value", autocomplete: "off", spellcheck: "false" }),
      "20 to 128 printable characters; leave empty to generate 40.",
    ),
    h(
      "div",
      { class: "field check" },
      h("input", { type: "checkbox", name: "enabled", id: "key-create-enabled", checked: true }),
      h("label", { for: "key-create-enabled" }, "Enabled"),
    ),
    error,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { enabled: form.elements.enabled.checked };
    const name = text(form, "name");
    const value = form.elements.value.value;
    if (name) body.name = name;
    if (value) body.value = value;
    const key = await run([submit], () => call("POST", "/apikeys", body), error);
    if (!key) return;
    form.reset();
    created.replaceChildren(
      h("p", {}, `Created API key "${key.name}" (${key.id}). Its value, shown once:`),
      h("p", {}, secret(key.value || "")),
      h("p", { class: "muted" }, "Copy it now: unless the server keeps values, it cannot be read back."),
    );
    created.hidden = false;
    await run([], refresh);
  });

  container.replaceChildren(h("h1", { tabindex: -1 }, "API keys"), created, list, form);
}
