// What the two Challenges pages share: a rule's unit, a period's days, a progress bar.

import { h } from "./api.js";

export const UNITS = {
  read_bookmarks: "bookmarks read", complete_tasks: "tasks completed",
  write_notes: "notes written", save_items: "items saved", streak_days: "days in a row",
  track_hours: "hours tracked",
};

/** A challenge's goal in words: "20 bookmarks read tagged “work”". */
export function goal(challenge) {
  const { type, target, tag } = challenge.rule;
  return `${target} ${UNITS[type] || type}${tag ? ` tagged “${tag}”` : ""}`;
}

/** "2026-12-01" in the reader's words, as that calendar day (not a UTC instant). */
export function dayLabel(iso) {
  const [year, month, day] = iso.split("-").map(Number);
  return new Date(year, month - 1, day).toLocaleDateString(undefined,
    { year: "numeric", month: "short", day: "numeric" });
}

export function period(challenge) {
  return `${dayLabel(challenge.start_date)} – ${dayLabel(challenge.end_date)}`;
}

/** A bar of score / target (full and green once the goal is reached). */
export function progressBar(score, target, label) {
  const percent = Math.min(100, Math.round((100 * (score || 0)) / target));
  const bar = h("span");
  bar.style.width = `${percent}%`; // CSSOM, which the CSP allows (no style attribute)
  return h("div", { class: `progress${percent >= 100 ? " done" : ""}`, role: "progressbar",
    "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": percent, "aria-label": label },
  bar);
}
