// One usage plan's page (#/plans/<id>): its limits and an edit form, its usage over the last
// seven days as a chart, its keys with their use of the current quota period, setting what
// a key has left of that period, and adding or removing a key.

import { h, field, uid } from "./dom.js";
import { call, listAll, seg, serverNow, usage } from "./api.js";
import {
  FormError,
  NONE,
  addDays,
  confirmAction,
  formError,
  formatNumber,
  isoDay,
  link,
  number,
  periodStart,
  run,
  showStatus,
  stageText,
  table,
  text,
} from "./ui.js";
import { deletePlan, planFields, planPatch, quotaText, throttleText } from "./plans.js";
import { usageChart } from "./chart.js";

const DAYS_SHOWN = 7;

// What a key of the plan has used: today, in the current quota period, and what is left.
function keyUsage(days, firstDay, today, periodFirst) {
  const out = { today: 0, period: 0, remaining: null, chart: [] };
  (days || []).forEach(([used, remaining], i) => {
    const day = addDays(firstDay, i);
    const u = used || 0;
    if (day >= periodFirst) out.period += u;
    if (isoDay(day) === isoDay(today)) {
      out.today = u;
      out.remaining = remaining;
    }
  });
  return out;
}

// The use of the quota period as a meter, with the numbers beside it. The period allows
// what it used plus what the server says remains: less than the plan's limit in a first
// period with an offset, more after an operator's grant. With nothing left, that sum is
// just the use, so the plan's limit caps it (a limit lowered below the use shows as such).
function periodAllows(key, quota) {
  if (typeof key.remaining !== "number") return quota.limit;
  if (key.remaining > 0) return key.period + key.remaining;
  return Math.min(quota.limit, key.period);
}

function quotaBar(key, quota) {
  if (!quota) return h("span", { class: "muted" }, "no quota");
  const limit = periodAllows(key, quota);
  const used = key.period;
  const when = quota.period === "DAY" ? "today" : `this ${quota.period.toLowerCase()}`;
  const label = `${formatNumber(used)} of ${formatNumber(limit)} used ${when}`;
  return h(
    "div",
    { class: "quota" },
    h("meter", {
      min: 0,
      max: Math.max(limit, 1),
      low: limit * 0.75,
      high: limit * 0.9,
      optimum: 0,
      value: Math.min(used, limit),
      "aria-label": label,
    }),
    h("span", { class: "quota-text" }, label),
  );
}

// Setting what a key has left of the current quota period (AWS UpdateUsage): a button for
// the key's row, and a small form in a row of its own under it, hidden until asked for.
// The input has no `min`: the API decides what a valid number is, so a negative one gets
// the API's own refusal, which names the range, rather than a browser bubble.
function remainingControls(plan, key, u, refresh) {
  const formId = uid("remaining");
  const when = plan.quota.period === "DAY" ? "today" : `this ${plan.quota.period.toLowerCase()}`;
  const open = h(
    "button",
    { type: "button", class: "small set-remaining", "aria-expanded": "false", "aria-controls": formId },
    "Set remaining",
  );
  open.setAttribute("aria-label", `Set the remaining quota of API key ${key.name}`);
  const input = h("input", {
    name: "remaining",
    type: "number",
    step: 1,
    inputmode: "numeric",
    required: true,
    autocomplete: "off",
    value: u.remaining ?? "",
  });
  const error = formError();
  const submit = h("button", { type: "submit" }, "Set");
  const cancel = h("button", { type: "button", class: "small" }, "Cancel");
  const form = h(
    "form",
    { id: formId, class: "inline set-remaining", "aria-label": `Set the remaining quota of API key ${key.name}` },
    field(
      `Remaining ${when}`,
      input,
      `calls ${key.name} may still make before the ${plan.quota.period.toLowerCase()} ends (UTC); replaces what is left now`,
    ),
    h("div", { class: "actions" }, submit, cancel),
    error,
  );
  const row = h(
    "tr",
    { class: "set-remaining-row", hidden: true, dataset: { remainingFor: key.id } },
    h("td", { colspan: 7 }, form),
  );
  const show = (on) => {
    row.hidden = !on;
    open.setAttribute("aria-expanded", String(on));
    if (on) {
      input.focus();
      return;
    }
    form.reset();
    error.replaceChildren();
    error.hidden = true;
    open.focus();
  };
  open.addEventListener("click", () => show(row.hidden));
  cancel.addEventListener("click", () => show(false));
  form.addEventListener("keydown", (e) => {
    if (e.key === "Escape") show(false);
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const set = await run(
      [submit, cancel, input],
      async () => {
        number(form, "remaining", "Remaining quota", { integer: true });
        const value = text(form, "remaining");
        if (value === "") throw new FormError("Remaining quota: enter a whole number");
        await call("PATCH", `/usageplans/${seg(plan.id)}/keys/${seg(key.id)}/usage`, {
          patchOperations: [{ op: "replace", path: "/remaining", value }],
        });
        return value;
      },
      error,
    );
    if (set) {
      showStatus(`API key "${key.name}" may make ${formatNumber(Number(set))} more calls ${when}.`);
      // The row and its meter are drawn again from what the server now reports.
      await run([], refresh);
    }
  });
  return { open, row };
}

// A key's row, and under it the row of its remaining-quota form when the plan has a quota.
function keyRows(plan, key, u, refresh) {
  const remove = h("button", { type: "button", class: "small remove" }, "Remove");
  remove.setAttribute("aria-label", `Remove API key ${key.name} from this plan`);
  remove.addEventListener("click", async () => {
    const ok = await confirmAction(
      `Remove API key "${key.name}" (${key.id}) from usage plan "${plan.name}"? ` +
        "Its calls are refused there from now on; the key itself stays.",
      "Remove",
    );
    if (!ok) return;
    const done = await run(remove, async () => {
      await call("DELETE", `/usageplans/${seg(plan.id)}/keys/${seg(key.id)}`);
      return true;
    });
    if (done) {
      showStatus(`Removed API key "${key.name}" from the plan.`);
      await run([], refresh);
    }
  });
  const remaining = plan.quota ? remainingControls(plan, key, u, refresh) : null;
  return [
    h(
      "tr",
      { dataset: { keyId: key.id } },
      h("th", { scope: "row", class: "name" }, key.name),
      h("td", {}, h("code", {}, key.id)),
      h("td", { class: "enabled" }, key.enabled === undefined ? NONE : key.enabled ? "yes" : "no"),
      h("td", { class: "num used-today" }, formatNumber(u.today)),
      h("td", { class: "num remaining" }, plan.quota ? formatNumber(u.remaining) : NONE),
      h("td", { class: "bar-cell" }, quotaBar(u, plan.quota)),
      h("td", { class: "actions-cell" }, remaining && remaining.open, " ", remove),
    ),
    remaining && remaining.row,
  ];
}

export async function planView(container, planId) {
  const path = `/usageplans/${seg(planId)}`;
  const [plan, members, allKeys] = await Promise.all([
    call("GET", path),
    listAll(`${path}/keys`),
    listAll("/apikeys"),
  ]);
  // Usage of today and the days before it, and back to the start of the quota period so
  // that the period's use is exact (the period is at most a month).
  const today = addDays(serverNow(), 0);
  const chartFirst = addDays(today, -(DAYS_SHOWN - 1));
  const periodFirst = plan.quota ? periodStart(today, plan.quota.period) : today;
  const firstDay = periodFirst < chartFirst ? periodFirst : chartFirst;
  const values = members.length ? await usage(planId, isoDay(firstDay), isoDay(today)) : {};
  const byId = new Map(allKeys.map((k) => [k.id, k]));

  const refresh = () => planView(container, planId);
  const title = h("h1", { tabindex: -1 }, plan.name);

  // Limits, and the edit and delete controls.
  const summary = h(
    "dl",
    { class: "summary" },
    h("dt", {}, "Id"),
    h("dd", {}, h("code", {}, plan.id)),
    h("dt", {}, "Throttle"),
    h("dd", { id: "plan-throttle" }, throttleText(plan.throttle)),
    h("dt", {}, "Quota"),
    h("dd", { id: "plan-quota" }, quotaText(plan.quota)),
    h("dt", {}, "API stages"),
    h("dd", {}, stageText(plan.apiStages) || NONE),
    h("dt", {}, "Description"),
    h("dd", {}, plan.description || NONE),
  );
  const editError = formError();
  const save = h("button", { type: "submit" }, "Save changes");
  const edit = h(
    "form",
    { id: "plan-edit", "aria-label": "Edit usage plan" },
    planFields(plan),
    editError,
    h("div", { class: "actions" }, save),
  );
  edit.addEventListener("submit", async (e) => {
    e.preventDefault();
    const updated = await run(
      [save],
      async () => {
        const ops = planPatch(plan, edit);
        if (!ops.length) return "unchanged";
        return call("PATCH", path, { patchOperations: ops });
      },
      editError,
    );
    if (updated === "unchanged") showStatus("Nothing to change.");
    else if (updated) {
      showStatus(`Saved usage plan "${updated.name}".`);
      await run([], refresh);
    }
  });
  const del = h("button", { type: "button", class: "danger" }, "Delete plan");
  del.addEventListener("click", async () => {
    if (await deletePlan(plan, del)) location.hash = "#/plans";
  });

  // Usage over the last days, all keys together.
  const chartDays = [];
  for (let i = 0; i < DAYS_SHOWN; i += 1) {
    const day = addDays(chartFirst, i);
    const index = Math.round((day - firstDay) / 86400000);
    let used = 0;
    for (const days of Object.values(values)) used += (days[index] && days[index][0]) || 0;
    chartDays.push({ day: isoDay(day), used });
  }

  // The keys and their use.
  const rows = members
    .map((m) => ({ ...m, ...(byId.get(m.id) || {}) }))
    .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
    .map((k) => keyRows(plan, k, keyUsage(values[k.id], firstDay, today, periodFirst), refresh));
  const keysTable = rows.length
    ? table(
        `${rows.length} API key${rows.length === 1 ? "" : "s"}; usage of ${isoDay(today)} (UTC)`,
        ["Name", "Key id", "Enabled", "Used today", "Remaining", "Quota this period", "Actions"],
        rows,
        { id: "plan-keys" },
      )
    : h("p", { class: "empty" }, "No API keys in this plan yet.");

  // Adding a key that is not in the plan yet.
  const inPlan = new Set(members.map((m) => m.id));
  const candidates = allKeys
    .filter((k) => !inPlan.has(k.id))
    .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  let addForm;
  if (candidates.length) {
    const select = h(
      "select",
      { name: "keyId", required: true },
      candidates.map((k) => h("option", { value: k.id }, `${k.name} (${k.id})`)),
    );
    const addError = formError();
    const add = h("button", { type: "submit" }, "Add key");
    addForm = h(
      "form",
      { id: "plan-add-key", class: "inline", "aria-label": "Add an API key to this plan" },
      field("API key", select),
      h("div", { class: "actions" }, add),
      addError,
    );
    addForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const added = await run(
        [add, select],
        () => call("POST", `${path}/keys`, { keyId: select.value, keyType: "API_KEY" }),
        addError,
      );
      if (added) {
        showStatus(`Added API key "${added.name}" to the plan.`);
        await run([], refresh);
      }
    });
  } else {
    addForm = h(
      "p",
      { class: "muted" },
      allKeys.length ? "Every API key is in this plan. " : "There are no API keys yet. ",
      link("/keys", "Create one on the API keys page."),
    );
  }

  container.replaceChildren(
    h("p", { class: "crumbs" }, link("/plans", "← All usage plans")),
    title,
    h("section", { "aria-labelledby": "plan-limits" }, h("h2", { id: "plan-limits" }, "Limits"), summary,
      h("details", { class: "card" }, h("summary", {}, "Edit plan"), edit),
      h("div", { class: "actions" }, del)),
    h(
      "section",
      { "aria-labelledby": "plan-usage" },
      h("h2", { id: "plan-usage" }, `Usage, last ${DAYS_SHOWN} days (UTC)`),
      h("figure", { class: "chart-box" },
        usageChart(chartDays, "Requests admitted per day, all keys of the plan"),
        h("figcaption", {}, "Requests admitted per day, all keys of the plan together.")),
    ),
    h(
      "section",
      { "aria-labelledby": "plan-keys-title" },
      h("h2", { id: "plan-keys-title" }, "API keys"),
      keysTable,
      addForm,
    ),
  );
}
