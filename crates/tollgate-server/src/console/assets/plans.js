// The usage plans page (#/plans): every plan with its throttle and quota, a form to create
// one, and deleting one after confirmation. Also the plan form the plan page edits with.

import { h, field } from "./dom.js";
import { call, listAll, seg } from "./api.js";
import {
  FormError,
  NONE,
  confirmAction,
  formError,
  formatNumber,
  link,
  number,
  parseStages,
  run,
  showStatus,
  stageText,
  table,
  text,
} from "./ui.js";

const PERIODS = ["DAY", "WEEK", "MONTH"];

// The fields of a plan, filled from `plan` when editing: name, description, API stages,
// throttle rate and burst, quota limit, period and first-period offset.
export function planFields(plan) {
  const p = plan || {};
  const t = p.throttle || {};
  const q = p.quota || {};
  const input = (name, props) => h("input", { name, ...props });
  const period = h(
    "select",
    { name: "period" },
    PERIODS.map((v) => h("option", { value: v, selected: (q.period || "DAY") === v }, v)),
  );
  return [
    field("Name", input("name", { required: true, value: p.name || "", autocomplete: "off" })),
    field("Description", input("description", { value: p.description || "", autocomplete: "off" })),
    field(
      "API stages",
      input("stages", { value: stageText(p.apiStages), autocomplete: "off", spellcheck: "false" }),
      "apiId:stage, separated by commas; checks name the API and stage they are for",
    ),
    h(
      "fieldset",
      { class: "row" },
      h("legend", {}, "Throttle (leave both empty for none)"),
      field(
        "Rate limit (requests/s)",
        input("rate", { type: "number", min: 0, step: "any", inputmode: "decimal", value: t.rateLimit ?? "" }),
      ),
      field(
        "Burst limit",
        input("burst", { type: "number", min: 0, step: 1, inputmode: "numeric", value: t.burstLimit ?? "" }),
      ),
    ),
    h(
      "fieldset",
      { class: "row" },
      h("legend", {}, "Quota (leave the limit and offset empty for none)"),
      field(
        "Quota limit (requests)",
        input("limit", { type: "number", min: 0, step: 1, inputmode: "numeric", value: q.limit ?? "" }),
      ),
      field("Period (UTC)", period),
      // No `min` here: the API judges the offset (at least 0, below the limit) and its
      // message is shown, where the browser would stop a negative one with a bubble of its
      // own. An offset of 0 shows as empty, which is how "no offset" is typed.
      field(
        "Offset (requests)",
        input("offset", { type: "number", step: 1, inputmode: "numeric", value: q.offset || "" }),
        "taken off the limit in the quota's first period only; empty for none",
      ),
    ),
  ];
}

// What the plan form says, as the API's create body.
export function readPlanForm(form) {
  const body = { name: text(form, "name") };
  const description = text(form, "description");
  if (description) body.description = description;
  body.apiStages = parseStages(text(form, "stages"));
  const rate = number(form, "rate", "Rate limit");
  const burst = number(form, "burst", "Burst limit", { integer: true });
  if ((rate === null) !== (burst === null)) {
    throw new FormError("a throttle needs both a rate limit and a burst limit (leave both empty for none)");
  }
  if (rate !== null) body.throttle = { rateLimit: rate, burstLimit: burst };
  const limit = number(form, "limit", "Quota limit", { integer: true });
  const offset = number(form, "offset", "Quota offset", { integer: true });
  if (limit === null && offset) {
    throw new FormError("a quota offset needs a quota limit (leave both empty for no quota)");
  }
  if (limit !== null) {
    body.quota = { limit, period: form.elements.period.value };
    // Sent as typed, so that the API judges the range and its refusal is what is shown.
    if (offset !== null) body.quota.offset = offset;
  }
  return body;
}

// The PATCH operations that turn `plan` into what the form says, in the API's terms.
export function planPatch(plan, form) {
  const want = readPlanForm(form);
  const ops = [];
  if (want.name !== plan.name) ops.push({ op: "replace", path: "/name", value: want.name });
  if ((want.description || "") !== (plan.description || "")) {
    ops.push(
      want.description
        ? { op: "replace", path: "/description", value: want.description }
        : { op: "remove", path: "/description" },
    );
  }
  const had = (plan.apiStages || []).map((s) => `${s.apiId}:${s.stage}`);
  const wanted = want.apiStages.map((s) => `${s.apiId}:${s.stage}`);
  for (const s of had) if (!wanted.includes(s)) ops.push({ op: "remove", path: "/apiStages", value: s });
  for (const s of wanted) if (!had.includes(s)) ops.push({ op: "add", path: "/apiStages", value: s });
  const t = plan.throttle;
  if (!want.throttle) {
    if (t) ops.push({ op: "remove", path: "/throttle" });
  } else {
    if (want.throttle.rateLimit !== (t && t.rateLimit)) {
      ops.push({ op: "replace", path: "/throttle/rateLimit", value: String(want.throttle.rateLimit) });
    }
    if (want.throttle.burstLimit !== (t && t.burstLimit)) {
      ops.push({ op: "replace", path: "/throttle/burstLimit", value: String(want.throttle.burstLimit) });
    }
  }
  const q = plan.quota;
  if (!want.quota) {
    if (q) ops.push({ op: "remove", path: "/quota" });
  } else {
    if (want.quota.limit !== (q && q.limit)) {
      ops.push({ op: "replace", path: "/quota/limit", value: String(want.quota.limit) });
    }
    if (want.quota.period !== (q && q.period)) {
      ops.push({ op: "replace", path: "/quota/period", value: want.quota.period });
    }
    // The API reports an offset of 0 for none, and an empty field means none.
    const offset = want.quota.offset ?? 0;
    if (offset !== ((q && q.offset) || 0)) {
      ops.push({ op: "replace", path: "/quota/offset", value: String(offset) });
    }
  }
  return ops;
}

export function throttleText(t) {
  return t ? `${formatNumber(t.rateLimit)}/s, burst ${formatNumber(t.burstLimit)}` : NONE;
}

export function quotaText(q) {
  if (!q) return NONE;
  const offset = q.offset ? ` (offset ${formatNumber(q.offset)})` : "";
  return `${formatNumber(q.limit)} per ${q.period}${offset}`;
}

// Deletes `plan` after asking; resolves to true when it is gone.
export async function deletePlan(plan, button) {
  const ok = await confirmAction(
    `Delete usage plan "${plan.name}" (${plan.id})? Its keys stay, but lose this plan's access.`,
  );
  if (!ok) return false;
  const done = await run(button, async () => {
    await call("DELETE", `/usageplans/${seg(plan.id)}`);
    return true;
  });
  if (done) showStatus(`Deleted usage plan "${plan.name}".`);
  return Boolean(done);
}

function planRow(plan, refresh) {
  const del = h("button", { type: "button", class: "danger small" }, "Delete");
  del.setAttribute("aria-label", `Delete usage plan ${plan.name}`);
  del.addEventListener("click", async () => {
    if (await deletePlan(plan, del)) await refresh();
  });
  const t = plan.throttle;
  const q = plan.quota;
  return h(
    "tr",
    { dataset: { planId: plan.id } },
    h("th", { scope: "row", class: "name" }, link(`/plans/${seg(plan.id)}`, plan.name)),
    h("td", { class: "num" }, t ? formatNumber(t.rateLimit) : NONE),
    h("td", { class: "num" }, t ? formatNumber(t.burstLimit) : NONE),
    h("td", { class: "num" }, q ? formatNumber(q.limit) : NONE),
    h("td", {}, q ? q.period : NONE),
    h("td", { class: "stages" }, stageText(plan.apiStages) || NONE),
    h("td", { class: "description" }, plan.description || ""),
    h("td", { class: "actions-cell" }, del),
  );
}

export async function plansView(container) {
  const list = h("div", { id: "plans-list" });
  const refresh = async () => {
    const plans = await listAll("/usageplans");
    plans.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    list.replaceChildren(
      plans.length
        ? table(
            `${plans.length} usage plan${plans.length === 1 ? "" : "s"}`,
            ["Name", "Rate (req/s)", "Burst", "Quota", "Period", "API stages", "Description", "Actions"],
            plans.map((p) => planRow(p, () => run([], refresh))),
            { id: "plans-table" },
          )
        : h("p", { class: "empty" }, "No usage plans yet. Create one below."),
    );
  };
  await refresh();

  const error = formError();
  const submit = h("button", { type: "submit" }, "Create plan");
  const form = h(
    "form",
    { id: "plan-create", class: "card", "aria-labelledby": "plan-create-title" },
    h("h2", { id: "plan-create-title" }, "Create a usage plan"),
    planFields(null),
    error,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const created = await run(
      [submit],
      async () => call("POST", "/usageplans", readPlanForm(form)),
      error,
    );
    if (created) {
      form.reset();
      showStatus(`Created usage plan "${created.name}" (${created.id}).`);
      await run([], refresh);
    }
  });

  container.replaceChildren(h("h1", { tabindex: -1 }, "Usage plans"), list, form);
}
