// What every view shares: the page's notices, running an action with its controls
// disabled, the confirmation dialog, tables, reading forms, and formatting.

import { h } from "./dom.js";
import { ApiError } from "./api.js";

// A form value the console refuses before asking the API.
export class FormError extends Error {}

// Called with the ApiError of any refused call; app.js sends 401s back to sign-in.
let onAuthError = () => {};

export function setAuthErrorHandler(fn) {
  onAuthError = fn;
}

// The page-wide notices: errors in an alert region (read out at once), news in a status one.
export function showError(message) {
  const el = document.getElementById("alert");
  el.replaceChildren(h("p", { class: "error" }, message));
  el.hidden = false;
}

export function showStatus(message) {
  const el = document.getElementById("status");
  el.replaceChildren(h("p", {}, message));
  el.hidden = false;
}

export function clearNotices() {
  for (const id of ["alert", "status"]) hideNotice(id);
}

function hideNotice(id) {
  const el = document.getElementById(id);
  el.replaceChildren();
  el.hidden = true;
}

// The message to show for a failure.
export function describe(err) {
  if (err instanceof ApiError) {
    return err.status ? `${err.message} (HTTP ${err.status})` : err.message;
  }
  if (err instanceof FormError) return err.message;
  return `unexpected error: ${err && err.message ? err.message : err}`;
}

// Runs `action` with `controls` disabled (and busy) until it settles. A failure is shown in
// `errorEl` (next to the form) when given, else in the page's alert, and never swallowed.
// Resolves to the action's result, or undefined when it failed.
export async function run(controls, action, errorEl) {
  const list = (Array.isArray(controls) ? controls : [controls]).filter(Boolean);
  const was = list.map((c) => c.disabled);
  for (const c of list) {
    c.disabled = true;
    c.setAttribute("aria-busy", "true");
  }
  if (errorEl) {
    errorEl.replaceChildren();
    errorEl.hidden = true;
  }
  try {
    return await action();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      onAuthError(err);
      return undefined;
    }
    // An earlier success's news ("Saved ...") would read as this action's outcome.
    hideNotice("status");
    const message = describe(err);
    if (errorEl) {
      errorEl.replaceChildren(message);
      errorEl.hidden = false;
    } else {
      showError(message);
    }
    return undefined;
  } finally {
    list.forEach((c, i) => {
      c.disabled = was[i];
      c.removeAttribute("aria-busy");
    });
  }
}

// An error line for a form, empty and hidden until `run` fills it.
export function formError() {
  return h("p", { class: "error form-error", role: "alert", hidden: true });
}

// Asks before something is deleted, in the page's own modal dialog (no window.confirm, so
// nothing outside the page pops up). Resolves to true to go ahead.
export function confirmAction(message, okLabel = "Delete") {
  const dialog = document.getElementById("confirm");
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  document.getElementById("confirm-text").textContent = message;
  ok.textContent = okLabel;
  return new Promise((resolve) => {
    const done = (answer) => {
      ok.removeEventListener("click", yes);
      cancel.removeEventListener("click", no);
      dialog.removeEventListener("cancel", no);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const yes = () => done(true);
    const no = (e) => {
      if (e) e.preventDefault();
      done(false);
    };
    ok.addEventListener("click", yes);
    cancel.addEventListener("click", no);
    dialog.addEventListener("cancel", no);
    dialog.showModal();
    cancel.focus();
  });
}

// A table with a caption and column headers; `rows` are <tr> elements. Wrapped so that a
// wide table scrolls on its own on a narrow screen instead of widening the page.
export function table(caption, headers, rows, props = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      props,
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows),
    ),
  );
}

// The trimmed text of input `name` in `form`.
export function text(form, name) {
  return form.elements[name].value.trim();
}

// The number in input `name` of `form`, or null when empty; FormError when not a number.
export function number(form, name, label, { integer = false } = {}) {
  const input = form.elements[name];
  if (input.validity && input.validity.badInput) throw new FormError(`${label}: not a number`);
  const raw = input.value.trim();
  if (raw === "") return null;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new FormError(`${label}: not a number, got "${raw}"`);
  if (integer && !Number.isInteger(n)) {
    throw new FormError(`${label}: must be a whole number, got "${raw}"`);
  }
  return n;
}

// API stages written `apiId:stage`, separated by commas, spaces or new lines.
export function parseStages(raw) {
  return raw
    .split(/[\s,]+/)
    .filter((s) => s !== "")
    .map((s) => {
      const at = s.indexOf(":");
      if (at <= 0 || at === s.length - 1) {
        throw new FormError(`API stages are written apiId:stage, got "${s}"`);
      }
      return { apiId: s.slice(0, at), stage: s.slice(at + 1) };
    });
}

export function stageText(stages) {
  return (stages || []).map((s) => `${s.apiId}:${s.stage}`).join(", ");
}

// A dash for "none", so empty cells are not mistaken for missing data.
export const NONE = "—";

export function formatNumber(n) {
  return n === null || n === undefined ? NONE : Number(n).toLocaleString("en-US");
}

// Unix seconds as `YYYY-MM-DD HH:MM UTC`.
export function formatTime(unixSeconds) {
  if (!Number.isFinite(unixSeconds)) return NONE;
  return `${new Date(unixSeconds * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

// `YYYY-MM-DD` of a Date, in UTC.
export function isoDay(d) {
  return d.toISOString().slice(0, 10);
}

// The Date `n` days after `d` (UTC midnight arithmetic).
export function addDays(d, n) {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + n));
}

// The first day of the quota period holding day `d`: the day itself, its ISO week's
// Monday, or the 1st of its month, in UTC, as the server counts.
export function periodStart(d, period) {
  const day = addDays(d, 0);
  if (period === "WEEK") return addDays(day, -((day.getUTCDay() + 6) % 7));
  if (period === "MONTH") return new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), 1));
  return day;
}

// A link to a route of the console.
export function link(route, label, props = {}) {
  return h("a", { ...props, href: `#${route}` }, label);
}
