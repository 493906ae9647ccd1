// Notes: a list on the left, a Markdown editor with a live preview on the right. The preview
// is rendered by the server's sanitizer (POST /api/v1/notes/preview), the same one that
// renders saved notes, so what the preview shows is what is safe. Saves are automatic a
// moment after typing stops (and on Ctrl+S); a change from another window loads into the
// editor unless there are unsaved edits here.

import {
  api, debounce, emptyState, h, icon, parseTags, registerPage, showError, tagNames, timeAgo,
  toast,
} from "../api.js";
import { bindSegments, bindTagSuggestions, ItemList, TagFilter, tagFromUrl }
  from "../list.js";

const editor = document.getElementById("editor");
const editorEmpty = document.getElementById("editor-empty");
const titleInput = document.getElementById("n-title");
const tagsInput = document.getElementById("n-tags");
const content = document.getElementById("n-content");
const preview = document.getElementById("preview");
const pinButton = document.getElementById("pin");
const saveState = document.getElementById("save-state");
const sortSelect = document.getElementById("sort");
const totalLabel = document.getElementById("total");

const state = { tag: tagFromUrl(), sort: sortSelect.value };
/** The server's orders (items.SORTS), to re-sort the list after a save without a reload. */
const byId = (a, b) => b.id - a.id;
const newer = (field) => (a, b) => (b[field] || "").localeCompare(a[field] || "");
const COMPARE = {
  "-pinned,-updated_at": (a, b) => Number(b.is_pinned) - Number(a.is_pinned) ||
    newer("updated_at")(a, b) || byId(a, b),
  "-updated_at": (a, b) => newer("updated_at")(a, b) || byId(a, b),
  "-created_at": (a, b) => newer("created_at")(a, b) || byId(a, b),
  title: (a, b) => a.title.toLowerCase().localeCompare(b.title.toLowerCase()) || byId(a, b),
};
/** The note in the editor: its id (null for a new one), what was last saved, and whether
 *  the editor holds changes not saved yet. */
const current = { id: null, saved: null, dirty: false, saving: null, pinned: false,
  removing: null };
const tagFilter = new TagFilter(document.getElementById("tag-filter"), state,
  () => list.reload());

const list = new ItemList({
  container: document.getElementById("list"),
  listClass: "note-list",
  searchFields: ["title", "content"],
  fetchPage: (offset, limit) => api.list("/notes", { offset, limit, sort: state.sort,
    tag: state.tag }),
  isFiltered: () => Boolean(state.tag),
  onTotal: (total) => {
    totalLabel.textContent = `${total} ${total === 1 ? "note" : "notes"}`;
    if (!current.id && !current.dirty && editor.hidden) showEditorEmpty();
  },
  renderEmpty: () => h("p", { class: "muted small" }, "No notes yet."),
  renderItem: (note) => h("li", {},
    h("button", { type: "button", "aria-current": String(note.id === current.id),
      onclick: () => openNote(note.id) },
    h("strong", {}, note.is_pinned ? icon("pin", "Pinned") : null, note.title || "Untitled"),
    h("span", { class: "excerpt" }, excerpt(note)),
    h("span", { class: "muted small" }, timeAgo(note.updated_at)))),
});

function excerpt(note) {
  const text = (note.content || "").replace(/[#>*_`[\]()-]+/g, " ").replace(/\s+/g, " ").trim();
  return text.slice(0, 90) || "Empty note";
}

// -------------------------------------------------------------------------------- preview

async function renderPreview() {
  if (!content.value.trim()) {
    preview.replaceChildren(h("p", { class: "muted" }, "The preview of your Markdown shows here."));
    return;
  }
  try {
    const { html } = await api.post("/notes/preview", { content: content.value });
    preview.innerHTML = html; // sanitized by the server (trackeep_desktop.markdown)
  } catch (error) {
    showError(error);
  }
}
const previewSoon = debounce(renderPreview, 400);

// ---------------------------------------------------------------------------- the editor

function showEditorEmpty() {
  editor.hidden = true;
  editorEmpty.replaceChildren(list.items.length
    ? emptyState({ iconName: "note", title: "Pick a note",
      text: "Choose a note on the left to read and edit it, or start a new one.",
      actionLabel: "New note", onAction: newNote })
    : emptyState({ iconName: "note", title: "No notes yet",
      text: "Notes are written in Markdown, with a live preview. Pin the ones you need " +
        "often; tag them to find them again.",
      actionLabel: "Write your first note", onAction: newNote }));
  editorEmpty.hidden = false;
}

function fill(note) {
  current.id = note ? note.id : null;
  current.saved = note;
  current.dirty = false;
  current.pinned = Boolean(note && note.is_pinned);
  titleInput.value = note ? note.title : "";
  tagsInput.value = note ? tagNames(note).join(", ") : "";
  content.value = note ? note.content : "";
  showPinned();
  setSaveState(note ? `Saved ${timeAgo(note.updated_at)}` : "New note: saved as you type");
  editorEmpty.hidden = true;
  editor.hidden = false;
  if (note && note.content_html !== undefined) {
    preview.innerHTML = note.content_html; // sanitized by the server
    if (!note.content) renderPreview();
  } else {
    renderPreview();
  }
  history.replaceState(null, "", note ? `#note-${note.id}` : location.pathname + location.search);
  list.render();
}

function showPinned() {
  pinButton.classList.toggle("on", current.pinned);
  pinButton.setAttribute("aria-pressed", String(current.pinned));
  const label = current.pinned ? "Unpin" : "Pin to the top";
  pinButton.setAttribute("aria-label", label);
  pinButton.title = label;
}

function setSaveState(text) {
  saveState.textContent = text;
}

async function openNote(id) {
  if (id === current.id) return;
  if (current.dirty) await save();
  try {
    fill(await api.get(`/notes/${id}`));
    if (matchMedia("(max-width: 900px)").matches) editor.scrollIntoView({ block: "start" });
  } catch (error) {
    showError(error);
  }
}

async function newNote() {
  if (current.dirty) await save();
  fill(null);
  titleInput.focus();
}

function edited() {
  current.dirty = true;
  setSaveState("Unsaved changes");
  saveSoon();
}

/** The fields to save; a note needs a title, so an untitled one takes its first line. */
function fields() {
  const firstLine = content.value.split("\n").find((line) => line.trim()) || "";
  const title = titleInput.value.trim() || firstLine.replace(/^#+\s*/, "").trim().slice(0, 120) ||
    "Untitled note";
  return { title, content: content.value, tags: parseTags(tagsInput.value),
    is_pinned: current.pinned };
}

async function save() {
  if (current.saving) await current.saving;
  if (!current.dirty) return;
  if (!current.id && !titleInput.value.trim() && !content.value.trim()) return;
  const body = fields();
  current.dirty = false;
  setSaveState("Saving…");
  current.saving = (async () => {
    try {
      const note = current.id ? await api.patch(`/notes/${current.id}`, body)
        : await api.post("/notes", body);
      const created = !current.id;
      current.id = note.id;
      current.saved = note;
      if (!current.dirty) setSaveState(`Saved at ${new Date().toLocaleTimeString([],
        { hour: "2-digit", minute: "2-digit" })}`);
      if (created) history.replaceState(null, "", `#note-${note.id}`);
      if (!titleInput.value.trim() && document.activeElement !== titleInput) {
        titleInput.value = note.title;
      }
      if (created) {
        await list.reload();
      } else {
        list.replace(note);
        list.items.sort(COMPARE[state.sort]); // a save can move it (pinned, last changed)
        list.render();
      }
      if (body.tags.length) tagFilter.load();
    } catch (error) {
      current.dirty = true;
      setSaveState("Not saved");
      showError(error);
    } finally {
      current.saving = null;
    }
  })();
  await current.saving;
}
const saveSoon = debounce(save, 1500);

async function removeNote() {
  const id = current.id;
  if (!id) {
    fill(null);
    showEditorEmpty();
    return;
  }
  current.removing = id; // its "deleted" event may arrive before the answer: ours, not news
  try {
    await api.delete(`/notes/${id}`);
    const title = titleInput.value || "The note";
    current.dirty = false;
    current.id = null;
    history.replaceState(null, "", location.pathname + location.search);
    await list.reload();
    showEditorEmpty();
    toast(`“${title}” moved to the trash.`, {
      action: { label: "Undo", run: () => restoreNote(id) },
    });
  } catch (error) {
    showError(error);
  } finally {
    current.removing = null;
  }
}

async function restoreNote(id) {
  try {
    await api.post(`/trash/note/${id}/restore`);
    await list.reload();
    fill(await api.get(`/notes/${id}`));
  } catch (error) {
    showError(error);
  }
}

titleInput.addEventListener("input", edited);
tagsInput.addEventListener("input", edited);
content.addEventListener("input", () => {
  edited();
  previewSoon();
});
pinButton.addEventListener("click", () => {
  current.pinned = !current.pinned;
  showPinned();
  edited();
});
document.getElementById("delete").addEventListener("click", removeNote);
editor.addEventListener("submit", (event) => {
  event.preventDefault();
  current.dirty = true;
  save();
});
editor.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
    event.preventDefault();
    current.dirty = true;
    save();
  }
});
bindSegments(editor.querySelector(".pane-tabs"), (pane) => {
  editor.dataset.pane = pane;
  if (pane === "preview") renderPreview();
});
window.addEventListener("beforeunload", (event) => {
  if (current.dirty) {
    save();
    event.preventDefault();
  }
});

// ------------------------------------------------------------------------- filters, tags

sortSelect.addEventListener("change", () => {
  state.sort = sortSelect.value;
  list.reload();
});
bindTagSuggestions(tagsInput, () => tagFilter.tags);
document.getElementById("new-button").addEventListener("click", newNote);

// ---------------------------------------------------------------------------- live changes

/** Do two versions of a note say the same (updated_at has whole seconds only)? */
function sameNote(a, b) {
  const tagKey = (note) => tagNames(note).map((n) => n.toLowerCase()).sort().join(",");
  return a.title === b.title && a.content === b.content &&
    Boolean(a.is_pinned) === Boolean(b.is_pinned) && tagKey(a) === tagKey(b);
}

async function noteChanged(event) {
  if (event.id !== current.id) return;
  if (event.action === "deleted" || event.action === "purged") {
    if (event.id === current.removing) return;
    current.dirty = false;
    current.id = null;
    showEditorEmpty();
    toast("This note was moved to the trash in another window.");
    return;
  }
  if (current.saving) return; // our own save, on its way back
  const note = event.item || await api.get(`/notes/${event.id}`).catch(() => null);
  if (!note || (current.saved && sameNote(note, current.saved))) return; // nothing new
  const inEditor = { title: titleInput.value, content: content.value,
    is_pinned: current.pinned, tags: parseTags(tagsInput.value) };
  if (sameNote(note, inEditor)) {
    current.saved = note;
    return;
  }
  if (current.dirty) {
    toast("This note was changed in another window.", { action: { label: "Load that version",
      run: async () => fill(await api.get(`/notes/${event.id}`)) } });
    return;
  }
  fill(await api.get(`/notes/${event.id}`));
}

registerPage({
  onNew: newNote,
  onSearch: () => list.render(),
  onChange(event) {
    if (event.type === "tag") {
      tagFilter.load();
      list.reloadSoon();
    } else if (event.type === "note") {
      if (!list.shows(event)) list.reloadSoon(event.id);
      noteChanged(event).catch(showError);
    }
  },
});

// ------------------------------------------------------------------------------- start-up

tagFilter.load();
list.reload().then(() => {
  const match = location.hash.match(/^#note-(\d+)$/);
  if (match) openNote(Number(match[1]));
  else showEditorEmpty();
});
