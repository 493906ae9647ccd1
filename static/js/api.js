// Shared helpers for every page: API calls (with the CSRF token), toasts, DOM building,
// icons, formatting, confirmation dialogs, and the hooks the shell's shortcuts call.

const API = "/api/v1";

/** The session's CSRF token, from <meta name="csrf-token">. */
function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/** An API answer that is not 2xx: `message` is the server's `{"error"}` text. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function withQuery(path, query) {
  const url = new URL(path.startsWith("/api/") ? path : API + path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  return url.pathname + url.search;
}

/**
 * Call the API. `path` is under /api/v1 ("/bookmarks") unless it starts with /api/.
 * `json` is sent as JSON, `body` as is (FormData). Resolves to {data, response}; rejects
 * with an ApiError carrying the server's message.
 */
async function request(method, path, { json, body, query } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(withQuery(path, query), {
      method, headers, body, credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, "Trackeep cannot be reached; check that it is still running.");
  }
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    if (response.status === 401) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname);
    }
    const message = (data && data.error) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, data);
  }
  return { data, response };
}

/**
 * POST a multipart form with XMLHttpRequest, which (unlike fetch) reports upload progress:
 * `onProgress(fraction)` as the bytes go. Resolves to the JSON answer; rejects with an
 * ApiError carrying the server's message.
 */
export function upload(path, form, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", withQuery(path));
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(xhr.response);
      } else {
        const message = (xhr.response && xhr.response.error) ||
          `${xhr.status} ${xhr.statusText || "upload failed"}`;
        reject(new ApiError(xhr.status, message, xhr.response));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0,
      "Trackeep cannot be reached; check that it is still running.")));
    xhr.send(form);
  });
}

export const api = {
  get: async (path, query) => (await request("GET", path, { query })).data,
  post: async (path, json) => (await request("POST", path, { json })).data,
  patch: async (path, json) => (await request("PATCH", path, { json })).data,
  delete: async (path, query) => (await request("DELETE", path, { query })).data,
  /** A list endpoint: {items, total} (the total from X-Total-Count when the server sends it). */
  async list(path, query) {
    const { data, response } = await request("GET", path, { query });
    const items = Array.isArray(data) ? data : [];
    const total = Number(response.headers.get("X-Total-Count") ?? items.length);
    return { items, total };
  },
};

// ------------------------------------------------------------------------------- DOM helpers

const SVG = "http://www.w3.org/2000/svg";

/** An icon from the page's sprite (templates/_icons.html). */
export function icon(name, label) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("focusable", "false");
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else {
    svg.setAttribute("aria-hidden", "true");
  }
  const use = document.createElementNS(SVG, "use");
  use.setAttribute("href", `#i-${name}`);
  svg.append(use);
  return svg;
}

/**
 * Build an element: h("a", {class: "x", href: "/", onclick: fn, dataset: {id: 1}}, children).
 * Strings become text nodes (never HTML); null, undefined and false children are skipped.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "value") node.value = value;
    else if (name === "style" && typeof value === "object") {
      for (const [property, v] of Object.entries(value)) {
        if (property.startsWith("--")) node.style.setProperty(property, v);
        else node.style[property] = v;
      }
    }
    else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/** A small icon-only button with an accessible name. */
export function iconButton(name, label, onclick, extraClass = "") {
  return h("button", { type: "button", class: `icon-button ${extraClass}`.trim(),
    title: label, "aria-label": label, onclick }, icon(name));
}

/** An empty state: what is missing and what to do about it. */
export function emptyState({ iconName, title, text, actionLabel, onAction }) {
  return h("div", { class: "empty" },
    h("div", { class: "empty-icon" }, icon(iconName)),
    h("h2", {}, title),
    h("p", {}, text),
    actionLabel ? h("button", { type: "button", onclick: onAction }, icon("plus"), actionLabel)
      : null);
}

/** A loading placeholder of `rows` grey rows. */
export function skeleton(rows = 3) {
  return h("div", { class: "skeleton", "aria-busy": "true", "aria-label": "Loading" },
    Array.from({ length: rows }, () => h("div")));
}

/** Tag chips; clicking one calls onPick(name) (pages filter by it). */
export function tagChips(tags, onPick) {
  if (!tags || !tags.length) return null;
  return h("span", { class: "chips" }, tags.map((tag) => {
    const name = typeof tag === "string" ? tag : tag.name;
    const color = typeof tag === "object" && tag.color ? tag.color : null;
    return h("button", { type: "button", class: "chip", title: `Show only “${name}”`,
      onclick: onPick ? () => onPick(name) : null },
    h("span", { class: "swatch", style: color ? { background: color } : null }), name);
  }));
}

/** "a, b,  c" → ["a", "b", "c"] (duplicates and blanks dropped). */
export function parseTags(text) {
  const seen = new Set();
  return String(text || "").split(",").map((t) => t.trim()).filter((t) => {
    const key = t.toLowerCase();
    if (!t || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Tag names of an item, whatever shape its tags have. */
export function tagNames(item) {
  return (item.tags || []).map((t) => (typeof t === "string" ? t : t.name));
}

// -------------------------------------------------------------------------------- formatting

function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "just now", "5 min ago", "yesterday", or a date. */
export function timeAgo(value) {
  const date = toDate(value);
  if (!date) return "";
  const seconds = (Date.now() - date.getTime()) / 1000;
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  if (seconds < 172800) return "yesterday";
  if (seconds < 7 * 86400) return `${Math.floor(seconds / 86400)} days ago`;
  return formatDate(value);
}

/** A date as the browser's locale writes it (with the time when `withTime`). */
export function formatDate(value, withTime = false) {
  const date = toDate(value);
  if (!date) return "";
  const options = { year: "numeric", month: "short", day: "numeric" };
  if (withTime) Object.assign(options, { hour: "2-digit", minute: "2-digit" });
  return date.toLocaleString(undefined, options);
}

/** An ISO date-time as the yyyy-mm-dd an <input type=date> wants. */
export function dateInputValue(value) {
  if (!value) return "";
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return value;
  const date = toDate(value);
  if (!date) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit && value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function hostOf(url) {
  try {
    return new URL(url).host.replace(/^www\./, "");
  } catch {
    return url;
  }
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// ------------------------------------------------------------------------------------ toasts

/**
 * Show a short message in the corner (announced to screen readers). Errors stay longer and
 * use role=alert. `action` adds a button, e.g. {label: "Undo", run: fn}.
 */
export function toast(message, { kind = "info", action, timeout } = {}) {
  const region = document.getElementById("toasts");
  if (!region) return;
  const close = () => node.remove();
  const node = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" },
    kind === "error" ? icon("alert") : null,
    h("span", { class: "msg" }, message),
    action ? h("button", { type: "button", onclick: () => { close(); action.run(); } },
      action.label) : null,
    iconButton("x", "Dismiss", close));
  // The same message again replaces the one on screen; past MAX_TOASTS the oldest goes, so
  // a burst of toasts never covers the rows' actions.
  for (const old of region.querySelectorAll(".toast")) {
    if (old.querySelector(".msg")?.textContent === message) old.remove();
  }
  region.append(node);
  const shown = region.querySelectorAll(".toast");
  for (let i = 0; i < shown.length - MAX_TOASTS; i++) shown[i].remove();
  setTimeout(close, timeout ?? (kind === "error" ? 8000 : action ? 6000 : 3500));
}

/** Most toasts on screen at once. */
export const MAX_TOASTS = 3;

/** Toast an error (an ApiError shows the server's message). */
export function showError(error) {
  console.error(error);
  toast(error instanceof ApiError ? error.message : `Something went wrong: ${error.message}`,
    { kind: "error" });
}

// ---------------------------------------------------------------------------------- dialogs

/** Ask before something that cannot be undone; resolves to true when confirmed. */
export function confirmDialog(title, text, { confirmLabel = "Delete", danger = true } = {}) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", { class: "muted" }, text),
      h("form", { method: "dialog", class: "form-actions" },
        h("button", { value: "yes", class: danger ? "danger" : "" }, confirmLabel),
        h("button", { value: "no", class: "secondary", autofocus: true }, "Cancel")));
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A modal with any content; returns the <dialog> (already open), removed on close. */
export function openDialog(title, ...content) {
  const dialog = h("dialog", { class: "wide", "aria-label": title },
    h("h2", {}, title, iconButton("x", "Close", () => dialog.close())),
    ...content);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

// ------------------------------------------------------------------------ page <-> shell hooks

/**
 * What the current page offers to the shell: `onNew()` for the `n` shortcut, `onSearch(q)`
 * for the search box (when there is no search page, it filters the page's list), and
 * `onChange(event)` for live updates from the server.
 */
export const page = { onNew: null, onSearch: null, onChange: null };

/** Register this page's hooks (see `page`). */
export function registerPage(hooks) {
  Object.assign(page, hooks);
}

/** The text the search box holds now (lower-case), for pages that filter locally. */
function searchText() {
  const input = document.getElementById("global-search");
  return input ? input.value.trim().toLowerCase() : "";
}

/** Does `item` match the search box? Looks in the given fields. */
export function matchesSearch(item, fields) {
  const query = searchText();
  if (!query) return true;
  const haystack = fields.map((f) => item[f] ?? "").join(" ").toLowerCase() + " " +
    tagNames(item).join(" ").toLowerCase();
  return query.split(/\s+/).every((word) => haystack.includes(word));
}
