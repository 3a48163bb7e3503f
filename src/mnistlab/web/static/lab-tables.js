"use strict";
// The tables view: #/tables, each reproduced table from its JSON export, with the four downloads

async function showTables() {
  const generation = newGeneration();
  const view = document.getElementById("view");
  view.replaceChildren(document.getElementById("tables-view").content.cloneNode(true));
  const signal = state.controller.signal;
  let listed;
  try {
    listed = await api("api/tables", { signal });
  } catch (error) {
    if (error.name !== "AbortError" && current(generation)) $("#tables-error").textContent = error.message;
    return;
  }
  if (!current(generation)) return;
  const boxes = [];
  for (const entry of listed.tables) {
    const box = element("section", { class: "table-box", "data-table": entry.table }, element("h3", { text: entry.table }));
    boxes.push(box);
    if (!entry.reproduced) {
      box.append(element("p", { class: entry.error ? "error" : "muted", text: entry.error || `not reproduced in this store: mnistlab reproduce ${entry.table} --seeds 3` }));
      continue;
    }
    let data;
    try {
      data = await api(`api/tables/${encodeURIComponent(entry.table)}?format=json`, { signal });
    } catch (error) {
      if (error.name === "AbortError" || !current(generation)) return;
      box.append(element("p", { class: "error", text: error.message }));
      continue;
    }
    if (!current(generation)) return;
    renderTable(box, data, listed.formats);
  }
  $("#tables").replaceChildren(...boxes);
  window.lab.tablesShown = listed.tables.filter((entry) => entry.reproduced).length;
}

function renderTable(box, data, formats) {
  const downloads = element("p", {}, element("span", { class: "muted", text: `${data.context} · download: ` }));
  const names = { html: "HTML", csv: "CSV", latex: "LaTeX", json: "JSON" };
  for (const format of formats) downloads.append(element("a", { class: "button download", "data-format": format, href: `api/tables/${encodeURIComponent(data.table)}?format=${format}`, download: "", text: names[format] || format }));
  const table = element("table", { class: "chapter-table" });
  table.append(element("thead", {}, element("tr", {}, element("th", { text: "⇆" }), ...data.header.map((column) => element("th", { text: column })))));
  const body = element("tbody");
  const picked = new Set();
  const compare = element("button", { type: "button", class: "quiet", text: "Compare the ticked rows", disabled: "" });
  data.rows.forEach((row, position) => {
    const pick = element("input", { type: "checkbox", class: "pick" });
    pick.addEventListener("change", () => { if (pick.checked) picked.add(position); else picked.delete(position); compare.disabled = picked.size < 2; });
    const cells = data.header.map((column) => {
      const cell = element("td", { "data-column": column, class: ["test mean", "test 95% CI", "book test", "seeds"].includes(column) ? "number" : "" });
      if (column === "seeds" && row.run_ids.length) {
        // The cell's runs, each a link to its page.
        cell.append(`${row.cells[column]} `, ...row.run_ids.map((runId) => element("a", { class: "run-link", href: `#/run/${runId}`, text: `#${runId}`, style: "margin-left: 3px" })));
      } else if (column === "test mean" && row.run_ids.length) {
        cell.append(element("a", { href: compareHash({ setups: [row.preset], dataset: data.dataset || "", backend: row.backend || "", by: "" }), title: "its curves with seed bands", text: row.cells[column] }));
      } else {
        cell.textContent = row.cells[column];
      }
      if (column === "book test" && !row.comparable) {  // shown, greyed: this row is not held against the book (why: the verdict cell)
        cell.classList.add("not-comparable");
        cell.title = row.comparable_reason;
      }
      return cell;
    });
    body.append(element("tr", { "data-run-ids": JSON.stringify(row.run_ids) }, element("td", {}, pick), ...cells));
  });
  compare.addEventListener("click", () => {
    const rows = [...picked].sort((a, b) => a - b).map((position) => data.rows[position]);
    const backends = new Set(rows.map((row) => row.backend));
    const presetsTicked = [...new Set(rows.map((row) => row.preset))];
    location.hash = compareHash({ setups: presetsTicked, dataset: data.dataset || "", backend: backends.size === 1 ? [...backends][0] || "" : "", by: backends.size > 1 ? "backend" : "" });
  });
  table.append(body);
  box.append(downloads, table, element("p", {}, compare));
}
