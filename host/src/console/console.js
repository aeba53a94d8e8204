// The wasmrpc console: polls /v1/status every second and renders it; the form calls a method
// through the gateway (/v1/call/... and /v1/cast/...). Every text from the host goes in with
// textContent, never as HTML: error messages and compiler output are shown as they are.
"use strict";

const POLL_MS = 1000;

// What was rendered last, so an unchanged table is not rebuilt (a selection or a scrolled
// <pre> stays put) and new history entries can be marked.
let shown = { endpoints: "", history: "", lastSeq: null, callable: "" };
let endpointsByKey = new Map();

const $ = (id) => document.getElementById(id);

// An element with attributes and children (strings become text nodes).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

// "2026-12-01T06:07:03.123456Z" -> "2026-12-01 06:07:03"
function when(iso) {
  return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace(/Z$|[+-]\d\d:\d\d$/, "") : "";
}

function sha(hex) {
  return hex ? el("span", { class: "sha256", title: hex }, hex.slice(0, 12)) : "";
}

async function poll() {
  try {
    const response = await fetch("/v1/status", { cache: "no-store" });
    if (!response.ok) throw new Error(`/v1/status answered ${response.status}`);
    render(await response.json());
  } catch (e) {
    const badge = $("readiness");
    badge.textContent = "unreachable";
    badge.className = "badge bad";
    $("updated").textContent = String(e.message || e);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function render(status) {
  $("server").textContent = status.server ? `server ${status.server} · v${status.version}` : `v${status.version}`;
  const badge = $("readiness");
  badge.textContent = status.ready ? "ready" : "not ready";
  badge.className = status.ready ? "badge ok" : "badge bad";
  const notReady = $("not-ready");
  notReady.hidden = status.ready || status.not_ready.length === 0;
  notReady.textContent = status.not_ready.join("; ");
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  renderEndpoints(status.endpoints);
  renderCallForm(status.endpoints);
  renderHistory(status.history);
}

function renderEndpoints(endpoints) {
  const text = JSON.stringify(endpoints);
  if (text === shown.endpoints) return;
  shown.endpoints = text;
  const rows = endpoints.map((e) =>
    el("tr", { dataset: { endpoint: e.name } },
      el("td", { class: "name" }, e.name),
      el("td", { class: "topic" }, e.topic ?? (e.role === "listener" ? "(listener)" : "")),
      el("td", { class: "server" }, e.server ?? ""),
      el("td", { class: "exchange" }, e.exchange ?? ""),
      el("td", { class: "version" }, e.version ?? ""),
      el("td", { class: "mode" }, e.instance_mode + (e.max_invocations ? ` (${e.max_invocations})` : "")),
      el("td", {}, el("ul", { class: "methods" }, Object.entries(e.calls).map(([method, c]) =>
        el("li", { dataset: { method } },
          el("code", {}, method), " ",
          el("span", { class: "count-ok" }, c.ok), " / ",
          el("span", { class: "count-error" + (c.error ? "" : " zero") }, c.error))))),
      el("td", { class: "sha256" }, sha(e.sha256)),
      el("td", { class: "loaded-at" }, when(e.loaded_at))));
  $("endpoints").tBodies[0].replaceChildren(...rows);
  $("no-endpoints").hidden = endpoints.length > 0;
}

// The form lists RPC endpoints (listeners take no calls); a choice survives the updates as long
// as the endpoint and method are still there.
function renderCallForm(endpoints) {
  const callable = endpoints.filter((e) => e.topic);
  const text = JSON.stringify(callable.map((e) => [e.name, e.topic, e.server, e.exchange, e.namespace, e.version, e.methods]));
  if (text === shown.callable) return;
  shown.callable = text;
  endpointsByKey = new Map(callable.map((e) => [e.name, e]));
  const select = $("call-endpoint");
  const chosen = select.value;
  select.replaceChildren(...callable.map((e) => el("option", { value: e.name }, `${e.name} (${e.topic})`)));
  if (endpointsByKey.has(chosen)) select.value = chosen;
  renderMethods();
  for (const id of ["call", "cast"]) $(id).disabled = callable.length === 0;
}

function renderMethods() {
  const endpoint = endpointsByKey.get($("call-endpoint").value);
  const select = $("call-method");
  const chosen = select.value;
  const methods = endpoint ? endpoint.methods : [];
  select.replaceChildren(...methods.map((m) => el("option", { value: m }, m)));
  if (methods.includes(chosen)) select.value = chosen;
}

function renderHistory(history) {
  const text = JSON.stringify(history);
  if (text === shown.history) return;
  shown.history = text;
  const before = shown.lastSeq;
  shown.lastSeq = history.length ? history[history.length - 1].seq : before;
  const rows = [...history].reverse().map((h) =>
    el("tr", { class: before !== null && h.seq > before ? "fresh" : null, dataset: { seq: h.seq, outcome: h.outcome, endpoint: h.endpoint } },
      el("td", { class: "at" }, when(h.at)),
      el("td", { class: "endpoint" }, h.endpoint),
      el("td", { class: "manifest" }, el("code", {}, h.manifest)),
      el("td", {}, el("span", { class: `outcome ${h.outcome}` }, h.outcome.replace("_", " "))),
      el("td", { class: "details" }, details(h))));
  $("history").tBodies[0].replaceChildren(...rows);
  $("no-history").hidden = history.length > 0;
}

function details(h) {
  switch (h.outcome) {
    case "loaded":
      return h.previous_sha256
        ? ["sha256 ", sha(h.sha256), " (was ", sha(h.previous_sha256), ")"]
        : ["sha256 ", sha(h.sha256)];
    case "failed":
      return el("pre", { class: "error" }, h.message);
    case "build_failed":
      return el("pre", { class: "error" }, h.output);
    default:
      return "";
  }
}

async function send(event) {
  event.preventDefault();
  const verb = event.submitter && event.submitter.value === "cast" ? "cast" : "call";
  const endpoint = endpointsByKey.get($("call-endpoint").value);
  const method = $("call-method").value;
  if (!endpoint || !method) return;
  const body = $("call-args").value;
  try {
    if (body.trim() !== "") JSON.parse(body);
  } catch (e) {
    showResult("error", "the arguments are not valid JSON", String(e.message || e));
    return;
  }
  // Address this host's endpoint as it is served: its server, exchange, namespace and version.
  const query = new URLSearchParams();
  for (const key of ["server", "exchange", "namespace", "version"]) {
    if (endpoint[key]) query.set(key, endpoint[key]);
  }
  const url = `/v1/${verb}/${encodeURIComponent(endpoint.topic)}/${encodeURIComponent(method)}?${query}`;
  const buttons = [$("call"), $("cast")];
  buttons.forEach((b) => (b.disabled = true));
  showResult("", `${verb} ${endpoint.name}.${method}…`, "");
  try {
    const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body });
    const text = await response.text();
    let shownBody = text;
    try {
      shownBody = text ? JSON.stringify(JSON.parse(text), null, 2) : "";
    } catch (_) {
      // not JSON: shown as it came
    }
    const line = `${response.status} ${response.statusText}` + (verb === "cast" && response.ok ? ": cast sent" : "");
    showResult(response.ok ? "ok" : "error", line, shownBody);
  } catch (e) {
    showResult("error", "the request failed", String(e.message || e));
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

function showResult(kind, line, body) {
  $("call-result").hidden = false;
  const status = $("call-status");
  status.textContent = line;
  status.className = kind;
  const pre = $("result");
  pre.textContent = body;
  pre.className = kind === "error" ? "error" : "";
  pre.hidden = body === "";
}

document.addEventListener("DOMContentLoaded", () => {
  $("call-endpoint").addEventListener("change", renderMethods);
  $("call-form").addEventListener("submit", send);
  poll();
});
