// Bookmarks: add (duplicates are offered, not doubled), edit in place, favorite, read/unread,
// delete with undo, filter by state and tag, sort; titles fetched in the background arrive live.

import {
  api, ApiError, formatDate, h, hostOf, icon, iconButton, parseTags, registerPage, showError,
  tagChips, tagNames, timeAgo, toast, emptyState,
} from "../api.js";
import {
  bindSegments, bindTagSuggestions, ItemList, TagFilter, tagFromUrl,
} from "../list.js";

const form = document.getElementById("new-form");
const newButton = document.getElementById("new-button");
const sortSelect = document.getElementById("sort");
const totalLabel = document.getElementById("total");
const state = { show: "all", tag: tagFromUrl(), sort: sortSelect.value };
const tagFilter = new TagFilter(document.getElementById("tag-filter"), state,
  () => list.reload());

const list = new ItemList({
  container: document.getElementById("list"),
  searchFields: ["title", "url", "description"],
  fetchPage: (offset, limit) => api.list("/bookmarks", {
    offset, limit, sort: state.sort, tag: state.tag,
    read: state.show === "unread" ? "false" : undefined,
    favorite: state.show === "favorites" ? "true" : undefined,
  }),
  isFiltered: () => state.show !== "all" || Boolean(state.tag),
  onTotal: (total) => {
    totalLabel.textContent = `${total} ${total === 1 ? "bookmark" : "bookmarks"}` +
      (list.isFiltered() ? " match the filters" : "");
  },
  renderEmpty: () => emptyState({
    iconName: "bookmark", title: "No bookmarks yet",
    text: "Save the pages you want to come back to. Paste a link and Trackeep fetches its " +
      "title and icon; the browser extension saves the page you are on in one click.",
    actionLabel: "Add your first bookmark", onAction: openForm,
  }),
  renderItem,
});

// ------------------------------------------------------------------------------- rendering

function safeHref(url) {
  return /^https?:\/\//i.test(url) ? url : null;
}

function favicon(bookmark) {
  const box = h("span", { class: "item-icon t-bookmark" });
  if (bookmark.favicon_url && safeHref(bookmark.favicon_url)) {
    const img = h("img", { src: bookmark.favicon_url, alt: "", loading: "lazy",
      referrerpolicy: "no-referrer" });
    img.addEventListener("error", () => img.replaceWith(icon("globe")));
    box.append(img);
  } else {
    box.append(icon("globe"));
  }
  return box;
}

function renderItem(bookmark) {
  const title = bookmark.title || bookmark.url;
  const pending = bookmark.fetch_status === "pending";
  return h("li", { class: `item${bookmark.is_read ? "" : " unread"}` },
    favicon(bookmark),
    h("div", { class: "item-body" },
      h("a", { class: "item-title", href: safeHref(bookmark.url), target: "_blank",
        rel: "noopener noreferrer", onclick: () => markRead(bookmark) }, title),
      h("div", { class: "item-meta" },
        h("span", { class: "host" }, hostOf(bookmark.url)),
        h("span", { title: formatDate(bookmark.created_at, true) }, timeAgo(bookmark.created_at)),
        pending ? h("span", {}, icon("clock"), " fetching the title…") : null,
        bookmark.fetch_status === "failed" ? fetchFailed(bookmark) : null,
        tagChips(bookmark.tags, tagFilter.pick)),
      bookmark.description ? h("p", { class: "item-desc" }, bookmark.description) : null),
    h("div", { class: "item-actions" },
      iconButton("star", bookmark.is_favorite ? "Remove from favorites" : "Add to favorites",
        () => update(bookmark, { is_favorite: !bookmark.is_favorite }),
        `star${bookmark.is_favorite ? " on" : ""}`),
      iconButton("eye", bookmark.is_read ? "Mark as unread" : "Mark as read",
        () => update(bookmark, { is_read: !bookmark.is_read }), bookmark.is_read ? "" : "on"),
      iconButton("edit", "Edit", (event) => edit(bookmark, event.currentTarget.closest("li"))),
      iconButton("trash", "Move to the trash", () => remove(bookmark), "danger")));
}

/** A fetch of the page's details that failed says so, with a way to try again. */
function fetchFailed(bookmark) {
  return h("span", { class: "fetch-failed" }, icon("alert"), " details not fetched ",
    h("button", { type: "button", class: "link-button", onclick: () => refetch(bookmark) },
      "Try again"));
}

// --------------------------------------------------------------------------------- actions

async function refetch(bookmark) {
  try {
    await api.post(`/bookmarks/${bookmark.id}/fetch-metadata`);
    list.reload();  // now pending; the live event brings the details
  } catch (error) {
    showError(error);
  }
}

async function update(bookmark, changes) {
  try {
    const saved = await api.patch(`/bookmarks/${bookmark.id}`, changes);
    const leaves = (state.show === "unread" && saved.is_read) ||
      (state.show === "favorites" && !saved.is_favorite);
    if (leaves) list.remove(saved.id);
    else list.replace(saved);
    return saved;
  } catch (error) {
    showError(error);
    return null;
  }
}

function markRead(bookmark) {
  if (!bookmark.is_read) update(bookmark, { is_read: true });
}

async function remove(bookmark) {
  try {
    await api.delete(`/bookmarks/${bookmark.id}`);
    list.remove(bookmark.id);
    toast(`“${bookmark.title || hostOf(bookmark.url)}” moved to the trash.`, {
      action: { label: "Undo", run: () => list.restore("bookmark", bookmark.id) },
    });
  } catch (error) {
    showError(error);
  }
}

function edit(bookmark, li) {
  const field = (name, label, value, type = "text") => [
    h("label", { for: `e-${name}-${bookmark.id}` }, label),
    h(type === "textarea" ? "textarea" : "input", {
      id: `e-${name}-${bookmark.id}`, name, type: type === "textarea" ? null : type, value,
      rows: type === "textarea" ? 2 : null, list: name === "tags" ? "tag-names" : null,
    })];
  const cancel = () => {
    li.classList.remove("editing");
    li.replaceWith(list.row(list.get(bookmark.id) || bookmark));
  };
  const editor = h("form", { class: "edit", novalidate: true },
    h("div", { class: "form-grid" },
      h("div", { class: "wide" }, field("url", "URL", bookmark.url, "url")),
      h("div", {}, field("title", "Title", bookmark.title)),
      h("div", {}, field("tags", "Tags", tagNames(bookmark).join(", "))),
      h("div", { class: "wide" }, field("description", "Description", bookmark.description,
        "textarea"))),
    h("div", { class: "form-actions" },
      h("button", { type: "submit" }, "Save"),
      h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel")));
  editor.addEventListener("keydown", (event) => { if (event.key === "Escape") cancel(); });
  editor.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(editor);
    try {
      const saved = await api.patch(`/bookmarks/${bookmark.id}`, {
        url: data.get("url").trim(), title: data.get("title").trim(),
        description: data.get("description").trim(), tags: parseTags(data.get("tags")),
      });
      li.classList.remove("editing");
      list.replace(saved);
      li.replaceWith(list.row(saved));
      toast("Bookmark saved.");
      tagFilter.load();
    } catch (error) {
      showError(error);
    }
  });
  li.classList.add("editing");
  li.replaceChildren(editor);
  bindTagSuggestions(editor.elements.tags, () => tagFilter.tags);
  editor.elements.title.focus();
}

// -------------------------------------------------------------------------------- the form

function openForm() {
  form.hidden = false;
  newButton.setAttribute("aria-expanded", "true");
  form.elements.url.focus();
}

function closeForm() {
  form.reset();
  form.hidden = true;
  newButton.setAttribute("aria-expanded", "false");
}

async function save(body) {
  try {
    await api.post("/bookmarks", body);
    closeForm();
    toast("Bookmark saved.");
    await Promise.all([list.reload(), tagFilter.load()]);
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) {
      offerDuplicate(body, error);
    } else {
      showError(error);
    }
  }
}

function offerDuplicate(body, error) {
  const existing = error.body && error.body.duplicate; // the bookmark saved already
  toast(error.message, {
    kind: "error",
    action: { label: "Save it again", run: () => save({ ...body, allow_duplicate: true }) },
  });
  if (existing) {
    if (!list.get(existing.id)) {
      toast(`It is “${existing.title || existing.url}”, saved ${timeAgo(existing.created_at)}.`);
    }
    list.flash(existing.id);
    list.rowFor(existing.id)?.scrollIntoView({ block: "center", behavior: "smooth" });
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const url = data.get("url").trim();
  if (!url) {
    toast("Enter the URL of the page to save.", { kind: "error" });
    form.elements.url.focus();
    return;
  }
  save({
    url, title: data.get("title").trim(), description: data.get("description").trim(),
    tags: parseTags(data.get("tags")),
  });
});
form.querySelector('[data-action="cancel"]').addEventListener("click", closeForm);
form.addEventListener("keydown", (event) => { if (event.key === "Escape") closeForm(); });
newButton.addEventListener("click", () => (form.hidden ? openForm() : closeForm()));

// ------------------------------------------------------------------------- filters, tags

bindSegments(document.getElementById("filter"), (value) => {
  state.show = value;
  list.reload();
});
sortSelect.addEventListener("change", () => {
  state.sort = sortSelect.value;
  list.reload();
});
bindTagSuggestions(form.elements.tags, () => tagFilter.tags);

registerPage({
  onNew: openForm,
  onSearch: () => list.render(),
  onChange(event) {
    if (event.type === "tag") {
      tagFilter.load();
      list.reloadSoon();
    } else if (event.type === "bookmark" && !list.shows(event)) {
      list.reloadSoon(event.id);
    }
  },
});

list.reload();
tagFilter.load();
