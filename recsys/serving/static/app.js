// The recsys page: plain JavaScript over the API's JSON routes (no build step, no third-party code).
"use strict";

const KEY_STORE = "recsys.apiKey";
const state = { user: null, k: 10, category: "", items: [], recId: null, catalogOffset: 0, catalogLimit: 15,
  activity: [] };

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function notice(message) {
  const box = $("notice");
  box.textContent = message || "";
  box.hidden = !message;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers["x-api-key"] = key;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (options.raw) {
    if (!response.ok) throw new ApiError(response.status, `${response.status} ${response.statusText}`);
    return response;
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    if (response.status === 403 && body && body.message) {
      // API Gateway's answer without a valid API key
      notice("This API needs an API key: enter it with the “API key” button.");
      openKeyDialog();
    }
    const message = body && body.error ? body.error.message : (body && body.message) || response.statusText;
    throw new ApiError(response.status, message);
  }
  return body;
}

function fmt(n, digits = 3) {
  return n === null || n === undefined ? "–" : Number(n).toFixed(digits);
}

function duration(seconds) {
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m}:${String(s % 60).padStart(2, "0")}`;
}

// ----- the production model
async function loadModel() {
  const body = $("model-body");
  try {
    const model = await api("model");
    renderModel(model);
    fillCategories(model.serving ? model.serving.categories : []);
    renderExampleUsers(model.example_users);
    if (!state.user && model.example_users.length) {
      $("user-input").value = model.example_users[0];
      showRecommendations(model.example_users[0]);
    }
  } catch (err) {
    $("model-badge").textContent = "no model";
    body.replaceChildren(el("p", { class: "muted", text: `No production model: ${err.message}` }));
  }
}

function renderModel(model) {
  $("model-badge").textContent = `model ${model.version}`;
  const m = model.metrics || {};
  const tt = m.two_tower || {};
  const pop = m.popularity || {};
  const rk = m.ranker || {};
  const rows = [
    ["Recall@100", tt["recall@100"], pop["recall@100"]],
    ["nDCG@100", tt["ndcg@100"], pop["ndcg@100"]],
    ["Recall@10", tt["recall@10"], pop["recall@10"]],
  ];
  const metricTable = el("table", { class: "metrics" },
    el("caption", { text: "Offline evaluation (held-out interactions)" }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Metric" }),
      el("th", { scope: "col", text: "Two-tower" }), el("th", { scope: "col", text: "Popularity" }))),
    el("tbody", {}, ...rows.filter((r) => r[1] !== undefined).map(([name, a, b]) =>
      el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: fmt(a) }), el("td", { text: fmt(b) })))));
  const gates = model.gates;
  const gateList = gates ? el("ul", { class: "gates", "aria-label": "Deployment gates" },
    ...gates.checks.map((g) => el("li", { class: g.passed ? "pass" : "fail" },
      el("span", { class: "gate-mark", "aria-hidden": "true", text: g.passed ? "✓" : "✗" }),
      el("span", { class: "visually-hidden", text: g.passed ? "passed: " : "failed: " }),
      el("span", { class: "gate-name", text: g.name.replaceAll("_", " ") }),
      el("span", { class: "gate-value", text: `${fmt(g.value)} ≥ ${fmt(g.threshold)}` })))) : null;
  const serving = model.serving;
  const facts = el("dl", { class: "facts" },
    el("dt", { text: "Version" }), el("dd", { text: model.version }),
    el("dt", { text: "Promoted" }), el("dd", { text: (model.promoted_at || "–").replace("T", " ").slice(0, 19) }),
    el("dt", { text: "Catalogue" }), el("dd", { text: serving ? `${serving.videos} videos, ${serving.users} users` : "–" }),
    el("dt", { text: "Retrieval" }), el("dd", { text: serving ? `${serving.retrieval}${serving.ranker ? " + ranker" : ""}` : "–" }),
    el("dt", { text: "Ranker AUC" }), el("dd", { text: fmt(rk.auc) }));
  $("model-body").replaceChildren(
    facts,
    el("h3", {}, "Gates ", el("span", { class: gates && gates.passed ? "tag pass" : "tag fail",
      text: gates ? (gates.passed ? "all passed" : "failed") : "none" })),
    gateList || el("p", { class: "muted", text: "No gate results recorded." }),
    metricTable,
    el("button", { type: "button", id: "report-button", onclick: openReport, disabled: !model.report_available,
      text: "Open the evaluation report" }));
}

async function openReport() {
  const tab = window.open("", "_blank");
  try {
    const response = await api("model/report", { raw: true, headers: { Accept: "text/html" } });
    const blob = new Blob([await response.text()], { type: "text/html" });
    const url = URL.createObjectURL(blob);
    if (tab) tab.location.href = url; else window.location.href = url;
  } catch (err) {
    if (tab) tab.close();
    notice(`The evaluation report could not be opened: ${err.message}`);
  }
}

function fillCategories(categories) {
  for (const id of ["category-input", "catalog-category"]) {
    const select = $(id);
    select.replaceChildren(el("option", { value: "", text: "all" }),
      ...categories.map((c) => el("option", { value: c, text: c })));
  }
}

function renderExampleUsers(users) {
  $("user-list").replaceChildren(...users.map((u) => el("option", { value: u })));
  $("example-users").replaceChildren(
    users.length ? el("span", { class: "muted", text: "Try: " }) : null,
    ...users.slice(0, 8).map((u) => el("button", { type: "button", class: "chip", "data-user": u, text: u,
      "aria-label": `Show recommendations for user ${u}`,
      onclick: () => { $("user-input").value = u; showRecommendations(u); } })));
}

// ----- recommendations
async function showRecommendations(user, previous = null, action = null) {
  state.user = user;
  const params = new URLSearchParams({ k: String(state.k) });
  if (state.category) params.set("category", state.category);
  $("recs-status").textContent = `Loading recommendations for ${user}…`;
  const started = performance.now();
  try {
    const data = await api(`recommendations/${encodeURIComponent(user)}?${params}`);
    const ms = Math.round(performance.now() - started);
    state.items = data.items;
    state.recId = data.recommendation_id;
    renderRecommendations(data, previous, ms, action);
    notice("");
  } catch (err) {
    $("recs-status").textContent = `Could not load recommendations: ${err.message}`;
    $("recs-list").replaceChildren();
  }
}

function renderRecommendations(data, previous, ms, action) {
  const before = new Map((previous || []).map((item) => [item.video_id, item.rank]));
  let changed = 0;
  const items = data.items.map((item) => {
    let move = null;
    if (previous) {
      const old = before.get(item.video_id);
      if (old === undefined) { move = el("span", { class: "move new", text: "new" }); changed += 1; }
      else if (old > item.rank) { move = el("span", { class: "move up", text: `↑${old - item.rank}`, title: `was #${old}` }); changed += 1; }
      else if (old < item.rank) { move = el("span", { class: "move down", text: `↓${item.rank - old}`, title: `was #${old}` }); changed += 1; }
    }
    const source = item.source || data.source;
    return el("li", { class: "rec", "data-video": item.video_id },
      el("div", { class: "rank", "aria-hidden": "true", text: String(item.rank) }),
      el("div", { class: "rec-main" },
        el("div", { class: "rec-title" },
          el("span", { class: "video", text: `Video ${item.video_id}` }),
          el("span", { class: `cat cat-${item.category}`, text: item.category }), move),
        el("div", { class: "reason", text: item.reason }),
        el("div", { class: "meta" },
          el("span", {}, "score ", el("strong", { text: fmt(item.score) })),
          el("span", {}, "source ", el("strong", { text: source })))),
      el("div", { class: "actions", role: "group", "aria-label": `Tell the recommender about video ${item.video_id}` },
        actionButton(item, "like", "♥ Like"),
        actionButton(item, "complete", "▶ Watched"),
        actionButton(item, "skip", "✕ Skip")));
  });
  $("recs-list").replaceChildren(...items);
  const parts = [`User ${data.user_id}`, `${data.items.length} items`, `source ${data.source}`,
    `model ${data.model_version || "none"}`, `${ms} ms`];
  if (action) parts.push(`after “${action}”: ${changed} of ${data.items.length} changed`);
  $("recs-status").textContent = parts.join(" · ");
}

function actionButton(item, eventType, label) {
  return el("button", { type: "button", class: `act act-${eventType}`, "data-event": eventType,
    "aria-label": `${label.replace(/^\W+\s*/u, "")} video ${item.video_id}`, text: label,
    onclick: () => interact(item, eventType) });
}

async function interact(item, eventType) {
  if (!state.user) return;
  const previous = state.items.slice();
  const body = { user_id: state.user, video_id: item.video_id, event_type: eventType, category: item.category };
  if (state.recId) body.recommendation_id = state.recId;
  const buttons = document.querySelectorAll("#recs-list .act");
  for (const button of buttons) button.disabled = true;
  try {
    await api("interactions", { method: "POST", body });
    state.activity.unshift({ type: eventType, video: item.video_id, category: item.category, user: state.user });
    renderActivity();
    await showRecommendations(state.user, previous, `${eventType} ${item.video_id}`);
  } catch (err) {
    notice(`The interaction was not recorded: ${err.message}`);
    for (const button of buttons) button.disabled = false;
  }
}

function renderActivity() {
  $("activity-count").textContent = String(state.activity.length);
  $("activity-list").replaceChildren(...state.activity.map((a) =>
    el("li", { text: `${a.user}: ${a.type} video ${a.video} (${a.category})` })));
}

// ----- catalogue
async function loadCatalog() {
  const params = new URLSearchParams({ limit: String(state.catalogLimit), offset: String(state.catalogOffset) });
  const q = $("catalog-q").value.trim();
  const category = $("catalog-category").value;
  if (q) params.set("q", q);
  if (category) params.set("category", category);
  try {
    const page = await api(`catalog?${params}`);
    const body = $("catalog-table").querySelector("tbody");
    body.replaceChildren(...page.items.map((v) => el("tr", {},
      el("th", { scope: "row", text: v.video_id }),
      el("td", {}, el("span", { class: `cat cat-${v.category}`, text: v.category })),
      el("td", { text: `#${v.popularity_rank}` }),
      el("td", { text: fmt(v.trending, 2) }),
      el("td", { text: duration(v.duration) }),
      el("td", { text: new Date(v.upload_ts * 1000).toISOString().slice(0, 10) }),
      el("td", {}, el("button", { type: "button", class: "act act-like",
        "aria-label": `Like video ${v.video_id} as the current user`, text: "♥ Like",
        onclick: () => state.user ? interact(v, "like") : notice("Pick a user first.") })))));
    const last = Math.min(page.offset + page.items.length, page.total);
    $("catalog-status").textContent = page.total
      ? `${page.offset + 1}–${last} of ${page.total} videos` : "No video matches.";
    $("catalog-prev").disabled = page.offset === 0;
    $("catalog-next").disabled = last >= page.total;
  } catch (err) {
    $("catalog-status").textContent = `Could not load the catalogue: ${err.message}`;
  }
}

// ----- the API key (kept in this tab's session storage only)
function openKeyDialog() {
  const dialog = $("key-dialog");
  $("key-input").value = sessionStorage.getItem(KEY_STORE) || "";
  if (!dialog.open) dialog.showModal();
}

function init() {
  $("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const user = $("user-input").value.trim();
    if (user) showRecommendations(user);
  });
  $("k-input").addEventListener("change", () => {
    state.k = Number($("k-input").value);
    if (state.user) showRecommendations(state.user);
  });
  $("category-input").addEventListener("change", () => {
    state.category = $("category-input").value;
    if (state.user) showRecommendations(state.user);
  });
  $("catalog-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.catalogOffset = 0;
    loadCatalog();
  });
  $("catalog-category").addEventListener("change", () => { state.catalogOffset = 0; loadCatalog(); });
  $("catalog-prev").addEventListener("click", () => {
    state.catalogOffset = Math.max(0, state.catalogOffset - state.catalogLimit);
    loadCatalog();
  });
  $("catalog-next").addEventListener("click", () => { state.catalogOffset += state.catalogLimit; loadCatalog(); });
  $("key-button").addEventListener("click", openKeyDialog);
  $("key-form").addEventListener("submit", () => {
    const key = $("key-input").value.trim();
    if (key) sessionStorage.setItem(KEY_STORE, key); else sessionStorage.removeItem(KEY_STORE);
    notice("");
    loadModel();
    loadCatalog();
  });
  $("key-clear").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    $("key-input").value = "";
    $("key-dialog").close();
  });
  state.k = Number($("k-input").value);
  loadModel();
  loadCatalog();
}

document.addEventListener("DOMContentLoaded", init);
