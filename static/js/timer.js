// The timer in the header of every page: the running time entry's elapsed time, ticking, and
// one button that starts a timer now or stops the running one. Pages that start or stop
// timers themselves (the task rows, the Time page) call startTimer/stopTimer from here and
// hear every change as a `trackeep:timer` event on the document ({detail: running entry or
// null}). Another window's start or stop arrives as a time_entry change event.

import { api, showError, toast } from "./api.js";

const box = document.getElementById("timer");
const button = document.getElementById("timer-toggle");
const elapsed = document.getElementById("timer-elapsed");
const label = document.getElementById("timer-label");

let running = null;       // the running entry, as the API answers it
let startedAt = 0;        // its start, in the browser's milliseconds
let offset = 0;           // the server's clock minus the browser's, from its duration
let ticker = null;

/** "1:02:03" or "2:03": hours only when there are some. */
export function formatDuration(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

/** What a timer is for: its description, the linked item's title, or "Timer". */
export function entryTitle(entry) {
  return entry.description || (entry.linked && entry.linked.title) || "Timer";
}

/** The running entry (null when none runs). */
export function runningEntry() {
  return running;
}

function tick() {
  if (!running) return;
  const seconds = (Date.now() + offset - startedAt) / 1000;
  elapsed.textContent = formatDuration(seconds);
}

function show(entry) {
  running = entry && entry.is_running ? entry : null;
  clearInterval(ticker);
  ticker = null;
  if (running) {
    startedAt = Date.parse(running.start_time);
    // The answer's duration is the server's "now - start": keep the server's clock.
    offset = startedAt + running.duration * 1000 - Date.now();
    box.classList.add("on");
    button.setAttribute("aria-label", `Stop the timer: ${entryTitle(running)}`);
    button.title = "Stop the timer";
    button.querySelector("use").setAttribute("href", "#i-x");
    label.textContent = entryTitle(running);
    label.hidden = false;
    tick();
    ticker = setInterval(tick, 1000);
  } else {
    box.classList.remove("on");
    button.setAttribute("aria-label", "Start a timer");
    button.title = "Start a timer";
    button.querySelector("use").setAttribute("href", "#i-clock");
    elapsed.textContent = "";
    label.textContent = "";
    label.hidden = true;
  }
  box.dataset.running = running ? String(running.id) : "";
  document.dispatchEvent(new CustomEvent("trackeep:timer", { detail: running }));
}

/** Start a timer now (`body`: task_id, description...); the running one stops. */
export async function startTimer(body = {}) {
  const answer = await api.post("/time-entries", body);
  show(answer.time_entry);
  if (answer.stopped) toast(`Stopped “${entryTitle(answer.stopped)}” to start this one.`);
  return answer;
}

/** Stop the running timer, if any. */
export async function stopTimer() {
  const answer = await api.post("/time-entries/stop");
  show(null);
  return answer.time_entry;
}

/** Read the running entry again from the server. */
export async function refreshTimer() {
  const answer = await api.get("/time-entries/running");
  show(answer.time_entry);
}

if (box) {
  button.addEventListener("click", () => {
    (running ? stopTimer() : startTimer()).catch(showError);
  });
  document.addEventListener("trackeep:change", (event) => {
    if (event.detail && event.detail.type === "time_entry") refreshTimer().catch(() => {});
  });
  box.hidden = false;
  refreshTimer().catch(() => {});
}
