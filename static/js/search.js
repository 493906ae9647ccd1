// The search page: results as you type (the header's box, debounced by app.js), counts per
// type as tabs, highlighted matches, paging, keyboard navigation and saved searches.

import {
  ApiError, api, h, icon, openDialog, registerPage, showError, tagChips, timeAgo, toast,
} from "./api.js";

const LIMIT = 20;
const input = document.getElementById("global-search");
const form = document.querySelector("form.search");
const list = document.getElementById("search-results");
const summary = document.getElementById("search-summary");
const note = document.getElementById("search-note");
const facets = document.getElementById("search-facets");
const more = document.getElementById("search-more");
const saveButton = document.getElementById("save-search");
const forgetButton = document.getElementById("delete-saved");

const state = { query: "", type: facets.dataset.type || "", offset: 0, results: [], selected: -1 };
let sequence = 0; // answers to older requests are dropped

function showUrl() {
  const params = new URLSearchParams();
  if (state.query) params.set("q", state.query);
  if (state.type) params.set("type", state.type);
  const search = params.toString();
  history.replaceState(null, "", search ? `/search?${search}` : "/search");
}

function setSummary(text) {
  summary.textContent = text;
}

function plural(n, word) {
  return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
}

function showFacets(counts) {
  const total = Object.values(counts || {}).reduce((a, b) => a + b, 0);
  for (const link of facets.querySelectorAll("a")) {
    const type = link.dataset.type;
    const count = type ? (counts || {})[type] ?? 0 : total;
    link.querySelector(".count").textContent = counts ? count.toLocaleString() : "";
    if (type === state.type) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** HTML the server built: escaped text with matches in <mark>, nothing else. */
function marked(tag, className, htmlText) {
  const node = h(tag, { class: className });
  node.innerHTML = htmlText;
  return node;
}

function openResult(result, newTab = false) {
  if (result.type === "bookmark" || newTab) {
    window.open(result.link, "_blank", "noopener");
  } else {
    location.href = result.link;
  }
}

function addTagFilter(name) {
  const term = /\s/.test(name) ? `tag:"${name}"` : `tag:${name}`;
  if (!input.value.includes(term)) input.value = `${input.value.trim()} ${term}`.trim();
  run(input.value.trim());
}

function renderResult(result, index) {
  const title = h("a", { class: "item-title", href: result.link,
    target: result.type === "bookmark" ? "_blank" : null,
    rel: result.type === "bookmark" ? "noopener" : null, tabindex: "-1" });
  title.innerHTML = result.title_html || "";
  const untitled = !title.textContent.trim();
  if (untitled) title.textContent = result.url || "(untitled)";
  const meta = h("div", { class: "item-meta" },
    h("span", {}, result.type),
    result.url && !untitled ? h("span", { class: "host" }, result.url) : null,
    h("span", { title: result.updated_at }, icon("clock"), ` ${timeAgo(result.updated_at)}`),
    tagChips(result.tags, addTagFilter));
  return h("li", {
    class: "item", role: "option", id: `result-${index}`, "aria-selected": "false",
    dataset: { index: String(index) },
    onclick: (event) => {
      if (event.target.closest("a, button")) return;
      openResult(result, event.ctrlKey || event.metaKey);
    },
  },
  h("span", { class: `item-icon t-${result.type}` }, icon(result.type)),
  h("div", { class: "item-body" }, title, meta,
    result.snippet ? marked("p", "item-desc", result.snippet) : null));
}

function select(index) {
  const items = list.querySelectorAll("li.item");
  if (!items.length) return;
  state.selected = Math.max(0, Math.min(index, items.length - 1));
  items.forEach((item, i) => item.setAttribute("aria-selected", String(i === state.selected)));
  const current = items[state.selected];
  input.setAttribute("aria-activedescendant", current.id);
  current.scrollIntoView({ block: "nearest" });
}

function render(answer, append) {
  if (!append) {
    list.replaceChildren();
    state.results = [];
    state.selected = -1;
    input.removeAttribute("aria-activedescendant");
  }
  const start = state.results.length;
  state.results.push(...answer.results);
  list.append(...answer.results.map((r, i) => renderResult(r, start + i)));
  showFacets(answer.facets);
  const total = answer.total;
  setSummary(total ? `${plural(total, "result")}${answer.approximate ? " (approximate)" : ""}`
    + ` · ${Math.round(answer.took)} ms` : `Nothing matches “${state.query}”.`);
  note.hidden = !answer.approximate;
  note.textContent = answer.approximate
    ? `So many items match that only the most recent were ranked: ${answer.reason}. `
      + "Add words to narrow it." : "";
  more.replaceChildren();
  if (state.results.length < total) {
    more.append(h("button", { type: "button", class: "secondary",
      onclick: () => load(state.results.length) }, `Show more (${plural(total - state.results.length, "more result")})`));
  }
}

async function load(offset) {
  const mine = ++sequence;
  try {
    const answer = await api.get("/search", { q: state.query, type: state.type, limit: LIMIT,
      offset });
    if (mine !== sequence) return;
    render(answer, offset > 0);
  } catch (error) {
    if (mine !== sequence) return;
    if (error instanceof ApiError && error.status === 400) {
      list.replaceChildren();
      more.replaceChildren();
      showFacets(null);
      setSummary(error.message); // a query still being typed, such as an open quote
      return;
    }
    showError(error);
  }
}

function run(query) {
  state.query = query;
  showUrl();
  if (saveButton) saveButton.hidden = !query;
  if (!query) {
    sequence += 1;
    list.replaceChildren();
    more.replaceChildren();
    showFacets(null);
    note.hidden = true;
    setSummary("Type in the search box above: results appear as you type.");
    return;
  }
  load(0);
}

// ------------------------------------------------------------------------------------ wiring

registerPage({ onSearch: run });

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (state.selected >= 0 && state.results[state.selected]) {
    openResult(state.results[state.selected]);
  } else {
    run(input.value.trim());
  }
});

input.addEventListener("keydown", (event) => {
  if (event.key === "ArrowDown") {
    event.preventDefault();
    select(state.selected + 1);
  } else if (event.key === "ArrowUp") {
    event.preventDefault();
    select(state.selected - 1);
  }
});

facets.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-type]");
  if (!link) return;
  event.preventDefault();
  state.type = link.dataset.type;
  run(state.query);
});

saveButton?.addEventListener("click", () => {
  const name = h("input", { id: "saved-name", name: "name", type: "text", required: true,
    maxlength: "100", value: state.query.slice(0, 100), autocomplete: "off" });
  const dialog = openDialog("Save this search",
    h("form", { class: "form-grid", onsubmit: async (event) => {
      event.preventDefault();
      try {
        await api.post("/search/saved", { name: name.value, query: state.query });
        dialog.close();
        toast("Saved: it is in the sidebar.");
        location.reload();
      } catch (error) {
        showError(error);
      }
    } },
    h("label", { for: "saved-name" }, "Name"), name,
    h("p", { class: "muted small" }, `Query: ${state.query}`),
    h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Save"))));
  name.focus();
  name.select();
});

forgetButton?.addEventListener("click", async () => {
  try {
    await api.delete(`/search/saved/${forgetButton.dataset.id}`);
    location.reload();
  } catch (error) {
    showError(error);
  }
});

showFacets(null);
input.focus();
input.setSelectionRange(input.value.length, input.value.length); // keep typing where it was
if (input.value.trim()) run(input.value.trim());
