// Time: a week of tracked time as a grid (days across, tasks or tags down, from
// GET /time-entries/report, whose days are the user's own local days), the week's entries
// with delete (and undo), a form for entries you forgot to time, and the CSV of the week.
// The header's timer (timer.js) and live changes keep it current.

import {
  ApiError, api, emptyState, h, iconButton, parseTags, registerPage, showError, toast,
} from "../api.js";
import { bindSegments } from "../list.js";
import { entryTitle, formatDuration } from "../timer.js";

const grid = document.getElementById("week-grid");
const entriesBox = document.getElementById("entries");
const weekLabel = document.getElementById("week-label");
const exportLink = document.getElementById("export-csv");
const form = document.getElementById("entry-form");
const errorLine = document.getElementById("entry-error");
const taskSelect = document.getElementById("e-task");
const deletedBox = document.getElementById("deleted");
const deletedCount = document.getElementById("deleted-count");

const state = { first: null, rows: "task", thisWeek: null };
let reloadTimer;

/** Seconds as hours and minutes: "2:05" (h:mm); under a minute "12s"; "" for none. */
function hm(seconds) {
  if (!seconds) return "";
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, "0")}`;
}

/** A yyyy-mm-dd date `days` later (calendar arithmetic, no time zone involved). */
function addDays(day, days) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

function dayHeading(day) {
  const date = new Date(`${day}T12:00:00Z`);
  return [date.toLocaleDateString(undefined, { weekday: "short", timeZone: "UTC" }),
    date.toLocaleDateString(undefined, { day: "numeric", month: "short", timeZone: "UTC" })];
}

function renderGrid(report) {
  const days = report.days.map((d) => d.date);
  const rows = state.rows === "task" ? report.tasks : report.tags;
  const name = (row) => (state.rows === "task"
    ? (row.task_id ? row.title || `Task ${row.task_id}` : "No task")
    : (row.tag ?? "No tag"));
  const head = h("thead", {}, h("tr", {}, h("th", { scope: "col" },
    state.rows === "task" ? "Task" : "Tag"),
  days.map((day) => {
    const [weekday, date] = dayHeading(day);
    return h("th", { scope: "col", class: "num", dataset: { day } }, weekday, h("br"),
      h("span", { class: "muted small" }, date));
  }), h("th", { scope: "col", class: "num" }, "Total")));
  const body = h("tbody", {}, rows.length ? rows.map((row) => h("tr", {
    dataset: { key: String(state.rows === "task" ? row.task_id ?? "none" : row.tag ?? "none") },
  }, h("th", { scope: "row" }, name(row)),
  days.map((day) => h("td", { class: "num", dataset: { day } }, hm(row.days[day]))),
  h("td", { class: "num total" }, hm(row.seconds))))
    : h("tr", {}, h("td", { colspan: days.length + 2, class: "muted" },
      "Nothing tracked this week yet.")));
  const foot = h("tfoot", {}, h("tr", {}, h("th", { scope: "row" }, "Total"),
    report.days.map((d) => h("td", { class: "num", dataset: { day: d.date } }, hm(d.seconds))),
    h("td", { class: "num total", id: "week-total" }, hm(report.total_seconds))));
  grid.replaceChildren(head, body, foot);
}

function when(entry) {
  const start = new Date(entry.start_time);
  const options = { weekday: "short", hour: "2-digit", minute: "2-digit" };
  const from = start.toLocaleString(undefined, options);
  if (entry.is_running) return `${from} – now`;
  const end = new Date(entry.end_time);
  return `${from} – ${end.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })}`;
}

function renderEntries(entries) {
  if (!entries.length) {
    entriesBox.replaceChildren(emptyState({
      iconName: "clock", title: "No entries this week",
      text: "Start a timer from the header or a task, or add an entry with the form above.",
    }));
    return;
  }
  entriesBox.replaceChildren(h("ul", { class: "items time-entries" }, entries.map((entry) =>
    h("li", { class: `item${entry.is_running ? " running" : ""}`,
      dataset: { id: String(entry.id) } },
    h("div", { class: "item-body" },
      h("span", { class: "item-title" }, entryTitle(entry)),
      h("div", { class: "item-meta" },
        h("span", {}, when(entry)),
        h("span", { class: "duration" }, formatDuration(entry.duration)),
        entry.is_running ? h("span", { class: "badge status-active" }, "Running") : null,
        entry.overlaps ? h("span", { class: "badge overdue",
          title: "Its time overlaps another entry" }, "Overlaps") : null,
        entry.billable ? h("span", { class: "badge" },
          entry.amount ? `Billable · ${entry.amount.toFixed(2)}` : "Billable") : null,
        entry.tags.length ? h("span", { class: "muted" }, entry.tags.join(", ")) : null)),
    h("div", { class: "item-actions" },
      iconButton("trash", "Delete this entry", () => remove(entry), "danger"))))));
}

async function remove(entry) {
  try {
    await api.delete(`/time-entries/${entry.id}`);
    toast("Entry deleted.", { action: { label: "Undo", run: () => {
      api.post(`/time-entries/${entry.id}/restore`).then(load).catch(showError);
    } } });
    load();
  } catch (error) {
    showError(error);
  }
}

function renderDeleted(entries) {
  deletedCount.textContent = entries.length ? `(${entries.length})` : "";
  deletedBox.replaceChildren(entries.length
    ? h("ul", { class: "items time-entries" }, entries.map((entry) =>
      h("li", { class: "item", dataset: { id: String(entry.id) } },
        h("div", { class: "item-body" },
          h("span", { class: "item-title" }, entryTitle(entry)),
          h("div", { class: "item-meta" }, h("span", {}, when(entry)),
            h("span", { class: "duration" }, formatDuration(entry.duration)))),
        h("div", { class: "item-actions" },
          h("button", { type: "button", class: "small secondary",
            "aria-label": `Restore “${entryTitle(entry)}”`,
            onclick: () => api.post(`/time-entries/${entry.id}/restore`).then(() => {
              toast("Entry restored.");
              load();
            }).catch(showError) }, "Restore"),
          h("button", { type: "button", class: "small secondary",
            "aria-label": `Delete “${entryTitle(entry)}” for good`,
            onclick: () => api.delete(`/time-entries/deleted/${entry.id}`).then(() => {
              toast("Deleted for good.");
              load();
            }).catch(showError) }, "Delete for good")))))
    : h("p", { class: "muted" }, "Nothing deleted."));
}

async function load() {
  try {
    const report = await api.get("/time-entries/report",
      state.first ? { start_date: state.first, end_date: addDays(state.first, 6) } : undefined);
    state.first = report.start_date;
    if (!state.thisWeek) state.thisWeek = report.start_date;
    weekLabel.textContent = `${report.start_date} – ${report.end_date}`;
    exportLink.href = `/api/v1/time-entries/export.csv?start_date=${report.start_date}` +
      `&end_date=${report.end_date}`;
    renderGrid(report);
    const listed = await api.get("/time-entries", { start_date: report.start_date,
      end_date: report.end_date, limit: 1000 });
    renderEntries(listed.time_entries);
    renderDeleted((await api.get("/time-entries/deleted")).time_entries);
  } catch (error) {
    showError(error);
  }
}

function loadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(load, 150);
}

async function loadTasks() {
  const { items } = await api.list("/tasks", { limit: 200, status: "pending,in_progress" });
  taskSelect.replaceChildren(h("option", { value: "" }, "No task"),
    ...items.map((task) => h("option", { value: String(task.id) }, task.title)));
}

// ------------------------------------------------------------------------ the entry form

function localMoment(day, time) {
  return new Date(`${day}T${time}`);  // the browser's local time
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorLine.hidden = true;
  const data = new FormData(form);
  const day = data.get("date");
  const startText = data.get("start");
  const endText = data.get("end");
  if (!day || !startText || !endText) {
    errorLine.textContent = "Give the day, and when you started and stopped.";
    errorLine.hidden = false;
    return;
  }
  const start = localMoment(day, startText);
  // An end earlier than the start is on the next day (an evening that ran past midnight).
  const end = localMoment(endText <= startText ? addDays(day, 1) : day, endText);
  const rate = data.get("hourly_rate");
  const body = {
    start_time: start.toISOString(), end_time: end.toISOString(),
    description: data.get("description").trim(), tags: parseTags(data.get("tags")),
    billable: data.get("billable") === "on", hourly_rate: rate === "" ? null : Number(rate),
    task_id: data.get("task_id") ? Number(data.get("task_id")) : null, source: "web",
  };
  try {
    const answer = await api.post("/time-entries", body);
    toast(answer.time_entry.overlaps ? "Entry added; it overlaps another one."
      : "Entry added.");
    form.elements.description.value = "";
    load();
  } catch (error) {
    if (error instanceof ApiError) {
      errorLine.textContent = error.message;
      errorLine.hidden = false;
    } else {
      showError(error);
    }
  }
});

document.getElementById("week-prev").addEventListener("click", () => {
  state.first = addDays(state.first, -7);
  load();
});
document.getElementById("week-next").addEventListener("click", () => {
  state.first = addDays(state.first, 7);
  load();
});
document.getElementById("week-this").addEventListener("click", () => {
  state.first = state.thisWeek;
  load();
});
bindSegments(document.getElementById("rows-by"), (value) => {
  state.rows = value;
  load();
});

document.addEventListener("trackeep:timer", loadSoon);
registerPage({
  onNew: () => form.elements.description.focus(),
  onChange(event) {
    if (event.type === "time_entry" || event.type === "task") loadSoon();
  },
});

const today = new Date();
form.elements.date.value = `${today.getFullYear()}-${String(today.getMonth() + 1)
  .padStart(2, "0")}-${String(today.getDate()).padStart(2, "0")}`;
load();
loadTasks().catch(showError);
