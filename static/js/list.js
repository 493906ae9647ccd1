// A list of items on a page: loads pages of them from the API, renders each with the page's
// function, keeps rows being edited while the list reloads, filters by the search box, and
// shows an empty state when there is nothing (or nothing that matches).

import { api, h, matchesSearch, showError, skeleton } from "./api.js";

export class ItemList {
  /**
   * @param {object} options
   * @param {HTMLElement} options.container  where the list goes
   * @param {(offset: number, limit: number) => Promise<{items, total}>} options.fetchPage
   * @param {(item) => HTMLElement} options.renderItem  one <li> per item
   * @param {() => HTMLElement} options.renderEmpty  shown when the user has none at all
   * @param {() => boolean} options.isFiltered  are filters narrowing the list?
   * @param {string[]} options.searchFields  fields the search box looks in
   * @param {(total: number) => void} [options.onTotal]  told the total after each load
   * @param {(item) => string} [options.keyOf]  a row's key (default: the item's id)
   * @param {string} [options.listClass]  the class of the <ul> (default: items)
   */
  constructor(options) {
    Object.assign(this, { pageSize: 50, keyOf: (item) => String(item.id), onTotal: () => {} },
      options);
    this.items = [];
    this.total = 0;
    this.loaded = false;
    this.list = h("ul", { class: this.listClass || "items" });
    this.pendingFlash = new Set();
    this.more = h("div", { class: "more" },
      h("button", { type: "button", class: "secondary", onclick: () => this.loadMore() },
        "Show more"));
    this.container.replaceChildren(skeleton());
  }

  /** Load the first page again (as many rows as are shown now), then render. */
  async reload() {
    const limit = Math.max(this.pageSize, Math.min(this.items.length, 200));
    // A reload started later (another filter, a live change) wins even when an earlier
    // one answers after it: the earlier answer is for a list no longer asked for.
    const generation = (this.generation = (this.generation || 0) + 1);
    try {
      const { items, total } = await this.fetchPage(0, limit);
      if (generation !== this.generation) return;
      this.items = items;
      this.total = total;
      this.loaded = true;
      this.onTotal(total);
      this.render();
    } catch (error) {
      showError(error);
    }
  }

  /**
   * Does the list already show this live change? True for the echo of this window's own
   * write (the item is here with the same fields), or a deletion of an item not shown;
   * pages skip the reload then, which halves the requests of every edit.
   */
  shows(event) {
    const current = this.get(this.keyOf({ id: event.id, type: event.type }));
    if (event.action === "deleted" || event.action === "purged") return !current;
    if (!current || !event.item) return false;
    return Object.keys(current).every((field) => !(field in event.item) ||
      JSON.stringify(current[field]) === JSON.stringify(event.item[field]));
  }

  /** Reload shortly, once for a burst of live changes; then highlight the rows `keys`. */
  reloadSoon(...keys) {
    keys.filter((k) => k !== undefined && k !== null).forEach((k) => this.pendingFlash.add(k));
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(async () => {
      await this.reload();
      for (const key of this.pendingFlash) this.flash(key);
      this.pendingFlash.clear();
    }, 150);
  }

  async loadMore() {
    try {
      const { items, total } = await this.fetchPage(this.items.length, this.pageSize);
      const known = new Set(this.items.map(this.keyOf));
      this.items.push(...items.filter((item) => !known.has(this.keyOf(item))));
      this.total = total;
      this.render();
    } catch (error) {
      showError(error);
    }
  }

  get(key) {
    return this.items.find((item) => this.keyOf(item) === String(key));
  }

  /** Replace one item in place (after an edit) and redraw its row. */
  replace(item) {
    const index = this.items.findIndex((i) => this.keyOf(i) === this.keyOf(item));
    if (index < 0) return;
    this.items[index] = item;
    const old = this.rowFor(this.keyOf(item));
    if (old) old.replaceWith(this.row(item));
  }

  /** Drop one item (deleted, or no longer matching the filter). */
  remove(key) {
    this.items = this.items.filter((item) => this.keyOf(item) !== String(key));
    this.total = Math.max(0, this.total - 1);
    this.onTotal(this.total);
    this.render();
  }

  rowFor(key) {
    return [...this.list.children].find((li) => li.dataset.key === String(key)) || null;
  }

  /** Highlight a row briefly (a live change from another window). */
  flash(key) {
    const row = this.rowFor(key);
    if (!row) return;
    row.classList.remove("flash");
    void row.offsetWidth; // restart the animation
    row.classList.add("flash");
  }

  /** Take an item of this list back out of the trash (a toast's Undo), then reload. */
  async restore(type, id) {
    try {
      await api.post(`/trash/${type}/${id}/restore`);
      await this.reload();
    } catch (error) {
      showError(error);
    }
  }

  /** Scroll to and highlight the row a link named (`/tasks#task-12`, from search results). */
  showLinked(type) {
    const match = location.hash.match(new RegExp(`^#${type}-(\\d+)$`));
    const row = match && this.rowFor(match[1]);
    if (!row) return;
    row.scrollIntoView({ block: "center" });
    this.flash(match[1]);
  }

  row(item) {
    const li = this.renderItem(item);
    li.dataset.key = this.keyOf(item);
    return li;
  }

  render() {
    if (!this.loaded) return;
    const editing = new Map([...this.list.querySelectorAll("li.editing")]
      .map((li) => [li.dataset.key, li]));
    const shown = this.items.filter((item) => matchesSearch(item, this.searchFields));
    if (!this.items.length && !this.isFiltered()) {
      this.container.replaceChildren(this.renderEmpty());
      return;
    }
    this.list.replaceChildren(...shown.map((item) => editing.get(this.keyOf(item)) ||
      this.row(item)));
    const parts = [this.list];
    if (!shown.length) {
      parts[0] = h("div", { class: "empty" }, h("h2", {}, "Nothing matches"),
        h("p", {}, this.items.length
          ? "No item on this page matches the search; clear the search box to see them all."
          : "No item matches these filters; change or clear them to see more."));
    }
    if (this.items.length < this.total) parts.push(this.more);
    this.container.replaceChildren(...parts);
  }
}

/** A segmented filter (buttons with aria-pressed); calls onPick(value) on a click. */
export function bindSegments(group, onPick) {
  group.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-value]");
    if (!button) return;
    for (const other of group.querySelectorAll("button")) {
      other.setAttribute("aria-pressed", String(other === button));
    }
    onPick(button.dataset.value);
  });
}

/** The `?tag=` of the page's URL, to open a list filtered by a tag (links from Tags). */
export function tagFromUrl() {
  return new URLSearchParams(location.search).get("tag") || "";
}

/** Keep `?tag=` in the URL in step with the tag filter (without reloading the page). */
export function setTagInUrl(tag) {
  const url = new URL(location.href);
  if (tag) url.searchParams.set("tag", tag);
  else url.searchParams.delete("tag");
  history.replaceState(null, "", url);
}

/** Fill a <select> with the user's tags (keeping the current choice). */
export function fillTagSelect(select, tags, current) {
  const names = tags.map((t) => t.name);
  if (current && !names.includes(current)) names.push(current);
  select.replaceChildren(h("option", { value: "" }, "All tags"),
    ...names.map((name) => h("option", { value: name, selected: name === current }, name)));
}

/**
 * A list page's tag filter: the <select> of the user's tags, with `state.tag` and the URL's
 * `?tag=` kept in step; `onChange()` runs after a pick. `tags` (the user's tags, once
 * `load()` has run) also feeds the page's tag suggestions.
 */
export class TagFilter {
  constructor(select, state, onChange) {
    this.select = select;
    this.state = state;
    this.onChange = onChange;
    this.tags = [];
    this.pick = this.pick.bind(this); // handed to tag chips as their callback
    fillTagSelect(select, [], state.tag);
    select.addEventListener("change", () => this.pick(select.value));
  }

  /** Show only items with this tag ("" for every tag). */
  pick(name) {
    this.state.tag = name;
    fillTagSelect(this.select, this.tags, name);
    setTagInUrl(name);
    this.onChange();
  }

  /** (Re)load the user's tags into the <select>. */
  async load() {
    try {
      this.tags = await api.get("/tags");
      fillTagSelect(this.select, this.tags, this.state.tag);
    } catch (error) {
      showError(error);
    }
  }
}

/**
 * Suggest tag names in a comma-separated tags field: its <datalist> (the input's `list`)
 * offers what was typed so far followed by each tag not already there.
 */
export function bindTagSuggestions(input, getTags) {
  const suggest = () => {
    const datalist = input.list;
    if (!datalist) return;
    const cut = input.value.lastIndexOf(",");
    const prefix = cut < 0 ? "" : `${input.value.slice(0, cut + 1).trimEnd()} `;
    const used = new Set(input.value.split(",").map((t) => t.trim().toLowerCase()));
    datalist.replaceChildren(...getTags()
      .filter((tag) => !used.has(tag.name.toLowerCase()))
      .map((tag) => h("option", { value: prefix + tag.name })));
  };
  input.addEventListener("focus", suggest);
  input.addEventListener("input", suggest);
}
