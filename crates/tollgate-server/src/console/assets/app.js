// The console's entry point: signing in and out, and the routes (#/plans, #/plans/<id>,
// #/keys), each drawn by its view module into <main>.

import { h, field } from "./dom.js";
import { ApiError, call, setToken, token } from "./api.js";
import {
  FormError,
  clearNotices,
  describe,
  formError,
  run,
  setAuthErrorHandler,
  showStatus,
} from "./ui.js";
import { plansView } from "./plans.js";
import { planView } from "./plan.js";
import { keysView } from "./keys.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signOut = document.getElementById("sign-out");

// Counts renders, so a slow view that finishes after the user has moved on is dropped.
let generation = 0;

// Whether the last probe found the API open to calls without a token.
let open = false;

function setSignedIn(signedIn) {
  nav.hidden = !signedIn;
  signOut.hidden = !signedIn || open;
}

// Asks the API whether `t` (or no token) may call it. Resolves to null when it may, else to
// the ApiError.
async function probe(t) {
  try {
    await call("GET", "/usageplans?limit=1", undefined, t);
    return null;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
}

function signInView(problem) {
  generation += 1;
  setSignedIn(false);
  const input = h("input", {
    id: "signin-token",
    type: "password",
    name: "token",
    autocomplete: "current-password",
    required: true,
    spellcheck: "false",
  });
  const error = formError();
  error.id = "signin-error";
  if (problem) {
    error.replaceChildren(problem);
    error.hidden = false;
  }
  const submit = h("button", { type: "submit", id: "signin-submit" }, "Sign in");
  const form = h(
    "form",
    { id: "signin", class: "card narrow", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h(
      "p",
      {},
      "Enter the management API's admin token (TOLLGATE_ADMIN_TOKEN). It is kept in this " +
        "tab only and forgotten when the tab closes or you sign out.",
    ),
    field("Admin token", input),
    error,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const candidate = input.value.trim();
    await run(
      [submit, input],
      async () => {
        const err = await probe(candidate);
        // A FormError, not the ApiError: a refused sign-in is shown on this form, while a
        // 401 anywhere else means the kept token went stale.
        if (err) throw new FormError(`Sign-in refused: ${describe(err)}`);
        setToken(candidate);
        input.value = "";
        showStatus("Signed in.");
        await route();
      },
      error,
    );
  });
  clearNotices();
  main.replaceChildren(form);
  input.focus();
}

// Back to the sign-in form after the API refused the kept token mid-session.
setAuthErrorHandler((err) => {
  setToken(null);
  signInView(`The API refused the token: ${err.message}. Sign in again.`);
});

signOut.addEventListener("click", () => {
  setToken(null);
  signInView(null);
  showStatus("Signed out; the token is forgotten.");
});

// The view of the current location.
function viewOf(hash) {
  const path = hash.replace(/^#/, "") || "/plans";
  const plan = /^\/plans\/([^/]+)$/.exec(path);
  if (plan) {
    let id;
    try {
      id = decodeURIComponent(plan[1]);
    } catch {
      return null;
    }
    return (container) => planView(container, id);
  }
  if (path === "/plans") return plansView;
  if (path === "/keys") return keysView;
  return null;
}

async function route() {
  generation += 1;
  const mine = generation;
  setSignedIn(true);
  const view = viewOf(location.hash);
  for (const a of nav.querySelectorAll("a")) {
    const current = location.hash.startsWith(a.getAttribute("href"));
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!view) {
    main.replaceChildren(
      h("h1", {}, "Not found"),
      h("p", {}, "There is no such page in the console. ", h("a", { href: "#/plans" }, "Usage plans")),
    );
    return;
  }
  main.setAttribute("aria-busy", "true");
  main.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  const container = h("div", { class: "view" });
  try {
    await view(container);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      if (mine === generation) {
        setToken(null);
        signInView(`The API refused the token: ${err.message}. Sign in again.`);
      }
      return;
    }
    container.replaceChildren(h("p", { class: "error", role: "alert" }, describe(err)));
  } finally {
    if (mine === generation) main.removeAttribute("aria-busy");
  }
  if (mine === generation) {
    main.replaceChildren(container);
    const heading = container.querySelector("h1");
    if (heading && document.activeElement === document.body) heading.focus();
  }
}

window.addEventListener("hashchange", () => {
  if (!nav.hidden) {
    clearNotices();
    route();
  }
});

async function start() {
  main.replaceChildren(h("p", { class: "loading" }, "Connecting…"));
  const kept = token();
  const err = await probe(kept);
  if (!err) {
    open = !kept;
    if (open) {
      showStatus("The management API is open (--admin-unauthenticated): no token is needed.");
    }
    await route();
    return;
  }
  if (kept && err.isAuth) setToken(null);
  if (err.status === 0 || !err.isAuth) {
    signInView(describe(err));
    return;
  }
  // Without a token the API answers 401; that is the normal start, not an error to show.
  signInView(kept || err.status === 403 ? describe(err) : null);
}

start();
