// Tasks: add, complete (and reopen), edit in place (status, priority, due date, progress,
// tags), subtasks one level deep, delete with undo, filter by state, priority and tag, sort.

import {
  api, emptyState, formatDate, h, icon, iconButton, parseTags, registerPage,
  showError, tagChips, tagNames, timeAgo, toast,
} from "../api.js";
import {
  bindSegments, bindTagSuggestions, ItemList, TagFilter, tagFromUrl,
} from "../list.js";
import { runningEntry, startTimer, stopTimer } from "../timer.js";

const STATUSES = { pending: "To do", in_progress: "In progress", completed: "Completed",
  cancelled: "Cancelled" };
const PRIORITIES = { low: "Low", medium: "Medium", high: "High", urgent: "Urgent" };
const SHOW = { open: "pending,in_progress", completed: "completed", all: undefined };

const form = document.getElementById("new-form");
const details = [document.getElementById("new-details"), document.getElementById("new-actions")];
const priorityFilter = document.getElementById("priority-filter");
const sortSelect = document.getElementById("sort");
const totalLabel = document.getElementById("total");
const state = { show: "open", priority: "", tag: tagFromUrl(), sort: sortSelect.value };
const tagFilter = new TagFilter(document.getElementById("tag-filter"), state,
  () => list.reload());
const openSubtasks = new Set(); // tasks whose subtasks are shown
// Subtasks by parent id. The list answers top-level tasks only (parent_id=none); a task's
// subtasks come with each task in GET /tasks (and GET /tasks/{id}); kept here when refreshed.
const subtasksOf = new Map();

const list = new ItemList({
  container: document.getElementById("list"),
  searchFields: ["title", "description"],
  fetchPage: async (offset, limit) => {
    const page = await api.list("/tasks", {
      offset, limit, sort: state.sort, tag: state.tag, status: SHOW[state.show],
      priority: state.priority || undefined, parent_id: "none",
    });
    if (!page.total && state.show === "open" && !state.tag && !state.priority) {
      // Nothing open: is that "all done" or "nothing yet"? The empty state says which.
      state.doneCount = (await api.list("/tasks", { limit: 1, parent_id: "none" })).total;
    }
    return page;
  },
  isFiltered: () => state.show === "completed" || Boolean(state.tag || state.priority),
  onTotal: (total) => {
    const noun = total === 1 ? "task" : "tasks";
    totalLabel.textContent = state.show === "open" ? `${total} open ${noun}`
      : state.show === "completed" ? `${total} completed ${noun}` : `${total} ${noun}`;
  },
  renderEmpty: () => (state.show === "open" && state.doneCount ? emptyState({
    iconName: "check", title: "All done",
    text: `Nothing is left open; ${state.doneCount} finished ` +
      `${state.doneCount === 1 ? "task is" : "tasks are"} under Completed.`,
    actionLabel: "Add a task", onAction: openForm,
  }) : emptyState({
    iconName: "task", title: "No tasks yet",
    text: "Write down what you need to do, give it a priority and a due date, and tick it " +
      "off when it is done.",
    actionLabel: "Add your first task", onAction: openForm,
  })),
  renderItem,
});

// ------------------------------------------------------------------------------- helpers

/**
 * A due date from the form: a day (yyyy-mm-dd), optionally with a time of day (hh:mm). A day
 * alone means the end of that day here; with a time, that moment here. Sent as ISO (UTC).
 */
function dueFromInput(day, time) {
  if (!day) return null;
  return new Date(time ? `${day}T${time}` : `${day}T23:59:59`).toISOString();
}

/**
 * When a task is due, as {at: Date, timed: bool}: `timed` when it has a time of day. A due
 * *day* is a date without a time (stored as midnight UTC by API clients) or the end of a day
 * here (what this form stores for a day alone); it falls due at the end of that day here.
 */
function dueOf(task) {
  if (!task.due_date) return null;
  const day = /^(\d{4})-(\d{2})-(\d{2})(T00:00(:00(\.0+)?)?(Z|[+-]00:?00))?$/.exec(task.due_date);
  if (day) {
    const [, year, month, date] = day;
    return { at: new Date(Number(year), Number(month) - 1, Number(date), 23, 59, 59, 999),
      timed: false };
  }
  const at = new Date(task.due_date);
  const endOfDay = at.getHours() === 23 && at.getMinutes() === 59 && at.getSeconds() === 59;
  return { at, timed: !endOfDay };
}

/** Past due: after the due moment (a due day only once that day is over here). */
function isOverdue(task) {
  const due = dueOf(task);
  if (!due || ["completed", "cancelled"].includes(task.status)) return false;
  return due.at.getTime() < Date.now();
}

/** "Jul 1, 2031", or "Jul 1, 2031, 09:30" for a timed due date. */
function dueText(task) {
  const due = dueOf(task);
  return due ? formatDate(due.at, due.timed) : "";
}

/** The hh:mm of a timed due date for a time input ("" for a due day). */
function dueTimeValue(task) {
  const due = dueOf(task);
  if (!due || !due.timed) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(due.at.getHours())}:${pad(due.at.getMinutes())}`;
}

/** The yyyy-mm-dd of a due date, in this time zone, for a date input. */
function dueDayValue(task) {
  const due = dueOf(task);
  if (!due) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${due.at.getFullYear()}-${pad(due.at.getMonth() + 1)}-${pad(due.at.getDate())}`;
}

function checkButton(task, label) {
  const done = task.status === "completed";
  return h("button", { type: "button", class: "check-button", role: "checkbox",
    "aria-checked": String(done), "aria-label": `${done ? "Reopen" : "Complete"} “${label}”`,
    title: done ? "Mark as not done" : "Mark as done",
    onclick: () => setDone(task, !done) }, icon("check"));
}

// ------------------------------------------------------------------------------ rendering

function knownSubtasks(task) {
  return task.subtasks || subtasksOf.get(task.id) || null;
}

function renderSubtasks(task) {
  const subtasks = knownSubtasks(task) || [];
  const input = h("input", { type: "text", placeholder: "Add a subtask",
    "aria-label": `Add a subtask to “${task.title}”` });
  const add = h("form", { class: "subtask-add", novalidate: true }, input,
    h("button", { type: "submit", class: "small secondary" }, "Add"));
  add.addEventListener("submit", async (event) => {
    event.preventDefault();
    const title = input.value.trim();
    if (!title) return;
    try {
      await api.post("/tasks", { title, parent_id: task.id });
      await refreshTask(task.id);
    } catch (error) {
      showError(error);
    }
  });
  return h("div", {},
    subtasks.length ? h("ul", { class: "subtasks", "aria-label": "Subtasks" },
      subtasks.map((sub) => h("li", { class: sub.status === "completed" ? "done" : "" },
        checkButton(sub, sub.title), h("span", {}, sub.title),
        iconButton("x", `Delete the subtask “${sub.title}”`, () => remove(sub, task))))) : null,
    add);
}

function renderItem(task) {
  const done = task.status === "completed";
  const subtasks = knownSubtasks(task);
  const doneSubtasks = (subtasks || []).filter((s) => s.status === "completed").length;
  const expanded = openSubtasks.has(task.id);
  const li = h("li", { class: `item${done || task.status === "cancelled" ? " done" : ""}` },
    checkButton(task, task.title),
    h("div", { class: "item-body" },
      h("span", { class: "item-title" }, task.title),
      h("div", { class: "item-meta" },
        h("span", { class: `badge ${task.priority}` }, PRIORITIES[task.priority] || task.priority),
        task.status !== "pending" && !done ? h("span", { class: "badge" }, STATUSES[task.status])
          : null,
        task.due_date ? h("span", { class: isOverdue(task) ? "badge overdue" : "",
          title: formatDate(dueOf(task).at, true) }, icon("calendar"),
        ` ${isOverdue(task) ? "Overdue: " : "Due "}${dueText(task)}`) : null,
        done && task.completed_at ? h("span", {}, `Done ${timeAgo(task.completed_at)}`) : null,
        task.progress > 0 && !done ? h("span", { class: "progress", title: `${task.progress}%`,
          role: "progressbar", "aria-valuenow": task.progress, "aria-valuemin": 0,
          "aria-valuemax": 100, "aria-label": "Progress", style: { width: "5rem" } },
        h("span", { style: { width: `${task.progress}%` } })) : null,
        h("button", { type: "button", class: "link small", "aria-expanded": String(expanded),
          onclick: () => toggleSubtasks(task.id) }, icon("list"),
        subtasks && subtasks.length ? ` ${doneSubtasks}/${subtasks.length} subtasks`
          : " Subtasks"),
        tagChips(task.tags, tagFilter.pick)),
      task.description ? h("p", { class: "item-desc" }, task.description) : null,
      expanded ? renderSubtasks(task) : null),
    h("div", { class: "item-actions" },
      timerButton(task),
      iconButton("edit", "Edit", (event) => edit(task, event.currentTarget.closest("li"))),
      iconButton("trash", "Move to the trash", () => remove(task), "danger")));
  return li;
}

/** Start a timer on the task, or stop it when the running timer is this task's. */
function timerButton(task) {
  const running = runningEntry();
  const mine = running && running.task_id === task.id;
  const button = iconButton(mine ? "x" : "clock",
    mine ? `Stop the timer on “${task.title}”` : `Start a timer on “${task.title}”`,
    () => (mine ? stopTimer() : startTimer({ task_id: task.id })).catch(showError),
    mine ? "on timer-on-task" : "timer-on-task");
  button.dataset.task = String(task.id);
  return button;
}

async function toggleSubtasks(id) {
  if (openSubtasks.has(id)) {
    openSubtasks.delete(id);
    const task = list.get(id);
    if (task) list.replace(task);
    return;
  }
  openSubtasks.add(id);
  await refreshTask(id);
  list.rowFor(id)?.querySelector(".subtask-add input")?.focus();
}

// -------------------------------------------------------------------------------- actions

async function refreshTask(id) {
  try {
    const fresh = await api.get(`/tasks/${id}`);
    subtasksOf.set(id, fresh.subtasks || []);
    list.replace(fresh);
  } catch (error) {
    showError(error);
  }
}

function stillShown(task) {
  const statuses = SHOW[state.show];
  return (!statuses || statuses.split(",").includes(task.status)) &&
    (!state.priority || task.priority === state.priority);
}

async function setDone(task, done) {
  try {
    const saved = await api.patch(`/tasks/${task.id}`, { status: done ? "completed" : "pending" });
    if (saved.parent_id) {
      await refreshTask(saved.parent_id);
      return;
    }
    if (stillShown(saved)) {
      list.replace(saved);
    } else {
      list.remove(saved.id);
      toast(done ? `Done: “${saved.title}”.` : `Reopened “${saved.title}”.`, {
        action: { label: "Undo", run: () => setDone(saved, !done) },
      });
    }
  } catch (error) {
    showError(error);
  }
}

async function remove(task, parent) {
  try {
    await api.delete(`/tasks/${task.id}`);
    if (parent) {
      await refreshTask(parent.id);
    } else {
      list.remove(task.id);
    }
    toast(`“${task.title}” moved to the trash.`, {
      action: { label: "Undo", run: () => list.restore("task", task.id) },
    });
  } catch (error) {
    showError(error);
  }
}

function edit(task, li) {
  const id = (name) => `e-${name}-${task.id}`;
  const select = (name, options, value) => h("select", { id: id(name), name },
    Object.entries(options).map(([key, label]) => h("option", { value: key,
      selected: key === value }, label)));
  const progressValue = h("output", { for: id("progress") }, `${task.progress}%`);
  const progress = h("input", { id: id("progress"), name: "progress", type: "range", min: 0,
    max: 100, step: 5, value: String(task.progress),
    oninput: () => { progressValue.textContent = `${progress.value}%`; } });
  const cancel = () => {
    li.classList.remove("editing");
    li.replaceWith(list.row(list.get(task.id) || task));
  };
  const editor = h("form", { class: "edit", novalidate: true },
    h("div", { class: "form-grid cols-4" },
      h("div", { class: "wide" }, h("label", { for: id("title") }, "Title"),
        h("input", { id: id("title"), name: "title", type: "text", value: task.title })),
      h("div", {}, h("label", { for: id("status") }, "Status"),
        select("status", STATUSES, task.status)),
      h("div", {}, h("label", { for: id("priority") }, "Priority"),
        select("priority", PRIORITIES, task.priority)),
      h("div", {}, h("label", { for: id("due") }, "Due"),
        h("div", { class: "due-inputs" },
          h("input", { id: id("due"), name: "due_date", type: "date", value: dueDayValue(task) }),
          h("input", { id: id("due-time"), name: "due_time", type: "time",
            "aria-label": "Time of day (optional)", value: dueTimeValue(task) }))),
      h("div", {}, h("label", { for: id("progress") }, "Progress ", progressValue), progress),
      h("div", { class: "wide" }, h("label", { for: id("tags") }, "Tags"),
        h("input", { id: id("tags"), name: "tags", type: "text", list: "tag-names",
          value: tagNames(task).join(", ") })),
      h("div", { class: "wide" }, h("label", { for: id("description") }, "Description"),
        h("textarea", { id: id("description"), name: "description", rows: 3,
          value: task.description }))),
    h("div", { class: "form-actions" },
      h("button", { type: "submit" }, "Save"),
      h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel")));
  editor.addEventListener("keydown", (event) => { if (event.key === "Escape") cancel(); });
  editor.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(editor);
    try {
      const saved = await api.patch(`/tasks/${task.id}`, {
        title: data.get("title").trim(), status: data.get("status"),
        priority: data.get("priority"),
        due_date: dueFromInput(data.get("due_date"), data.get("due_time")),
        progress: Number(data.get("progress")), tags: parseTags(data.get("tags")),
        description: data.get("description").trim(),
      });
      li.classList.remove("editing");
      if (stillShown(saved)) {
        list.replace(saved);
        li.replaceWith(list.row(saved));
      } else {
        li.remove();
        list.remove(saved.id);
      }
      toast("Task saved.");
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

// ------------------------------------------------------------------------------- new task

function openForm() {
  details.forEach((part) => { part.hidden = false; });
  form.elements.title.focus();
}

function closeForm() {
  form.reset();
  details.forEach((part) => { part.hidden = true; });
  form.elements.title.blur();
}

form.elements.title.addEventListener("focus", openForm);
form.querySelector('[data-action="cancel"]').addEventListener("click", closeForm);
form.addEventListener("keydown", (event) => { if (event.key === "Escape") closeForm(); });
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const title = data.get("title").trim();
  if (!title) {
    toast("Give the task a title.", { kind: "error" });
    form.elements.title.focus();
    return;
  }
  try {
    await api.post("/tasks", {
      title, priority: data.get("priority"),
      due_date: dueFromInput(data.get("due_date"), data.get("due_time")),
      tags: parseTags(data.get("tags")), description: data.get("description").trim(),
    });
    form.elements.title.value = "";
    form.elements.description.value = "";
    toast("Task added.");
    await Promise.all([list.reload(), tagFilter.load()]);
    form.elements.title.focus();
  } catch (error) {
    showError(error);
  }
});

// ------------------------------------------------------------------------- filters, tags

bindSegments(document.getElementById("filter"), (value) => {
  state.show = value;
  list.reload();
});
priorityFilter.addEventListener("change", () => {
  state.priority = priorityFilter.value;
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
    } else if (event.type === "task") {
      const parent = event.item && event.item.parent_id;
      if (parent) {
        if (subtasksOf.has(parent)) refreshTask(parent);
      } else if (!list.shows(event)) {
        list.reloadSoon(event.id);
      }
    }
  },
});

list.reload().then(() => list.showLinked("task"));
tagFilter.load();
// The running timer changed (here, in the header, or in another window): redraw the rows'
// timer buttons.
document.addEventListener("trackeep:timer", () => list.render());
