// Building DOM nodes: the console's only way of putting anything on the page.
// Text always goes in as text nodes, never as markup, so a record named like an HTML tag
// shows as the characters it is made of.

const SVG_NS = "http://www.w3.org/2000/svg";

// Applies `props` to element `el`: `class`, `text`, `on` (event listeners), `dataset`,
// `hidden`/`disabled`/`required` (properties), `value`/`checked`/`selected` (as the
// control's default too, so that form.reset() comes back to them), anything else as an
// attribute. null, undefined and false values are skipped.
function apply(el, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.setAttribute("class", value);
    else if (name === "text") el.textContent = String(value);
    else if (name === "on") {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "value") {
      if ("defaultValue" in el) el.defaultValue = String(value);
      el.value = value;
    } else if (name === "checked") {
      el.defaultChecked = true;
      el.checked = true;
    } else if (name === "selected") {
      el.defaultSelected = true;
      el.selected = true;
    } else if (["hidden", "disabled", "required"].includes(name)) {
      el[name] = value;
    } else el.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// An HTML element: h("td", {class: "num"}, "42").
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  apply(el, props);
  append(el, children);
  return el;
}

// An SVG element, for the usage chart.
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, props);
  append(el, children);
  return el;
}

let nextId = 0;

// A fresh element id, for pairing labels with their inputs.
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

// A labelled form field: <div class="field"><label for=…>…</label><input id=…></div>.
// `control` keeps its id if it has one; `hint` is optional help text tied to it.
export function field(label, control, hint) {
  const id = control.id || uid("f");
  control.id = id;
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}
