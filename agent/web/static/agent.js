// Small helpers for the setup page; every page also works by posting its forms.
"use strict";

function conditionHolds(condition) {
  // "source=ksc" (a radio group's value) or "use_proxy" (a ticked check box).
  const [name, value] = condition.split("=");
  if (value !== undefined) {
    const chosen = document.querySelector(`input[name="${name}"]:checked`);
    const fixed = document.querySelector(`input[type=hidden][name="${name}"]`);
    return (chosen ? chosen.value : fixed ? fixed.value : "") === value;
  }
  const box = document.getElementById(name);
  return Boolean(box && box.checked);
}

function updateShown() {
  document.querySelectorAll("[data-show-when]").forEach((element) => {
    element.hidden = !conditionHolds(element.dataset.showWhen);
  });
}

function filterRows(input) {
  const list = document.querySelector(input.dataset.filter);
  if (!list) return;
  const wanted = input.value.trim().toLowerCase();
  const rows = [...list.querySelectorAll("[data-name]")];
  rows.forEach((row) => {
    // A row the page asks to fix stays in sight whatever the filter says.
    row.hidden = wanted !== "" && !row.dataset.name.includes(wanted) && !row.matches(".invalid");
  });
  summarizeFilter(input, rows);
  syncSelectAll();
}

function summarizeFilter(input, rows) {
  // The summary beside the search says what the filter shows, not the whole list.
  const summary = input.dataset.filterSummary && document.querySelector(input.dataset.filterSummary);
  if (!summary) return;
  if (summary.dataset.original === undefined) summary.dataset.original = summary.textContent;
  const wanted = input.value.trim();
  if (wanted === "") {
    summary.textContent = summary.dataset.original;
    return;
  }
  const shown = rows.filter((row) => !row.hidden);
  const fix = shown.filter((row) => row.matches(".invalid") && !row.dataset.name.includes(wanted.toLowerCase()));
  let text = `Showing ${shown.length - fix.length} of ${rows.length} for \u201c${wanted}\u201d`;
  if (fix.length) text += `, and ${fix.length === 1 ? "the row" : `the ${fix.length} rows`} to fix`;
  summary.textContent = `${text}. Clear the search box to see every row.`;
}

function selectAll(box) {
  document.querySelectorAll(`input[type=checkbox][name="${box.dataset.selectAll}"]`).forEach((item) => {
    if (!item.closest("[hidden]")) item.checked = box.checked;
  });
  syncSelectAll();
}

function syncSelectAll() {
  // "Select all" is ticked only while every row shown is ticked; half-ticked for some.
  document.querySelectorAll("input[data-select-all]").forEach((box) => {
    const shown = [...document.querySelectorAll(`input[type=checkbox][name="${box.dataset.selectAll}"]`)]
      .filter((item) => !item.closest("[hidden]"));
    const ticked = shown.filter((item) => item.checked).length;
    box.checked = shown.length > 0 && ticked === shown.length;
    box.indeterminate = ticked > 0 && ticked < shown.length;
  });
}

async function copyText(button) {
  const source = document.querySelector(button.dataset.copy);
  const status = document.getElementById("copy-status");
  const text = source ? source.textContent.trim() : "";
  try {
    await navigator.clipboard.writeText(text);
  } catch (error) {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
  }
  if (status) status.textContent = "Copied";
}

function accountNumber(text) {
  const match = /\((\d+)\)\s*$/.exec(text);
  return match ? match[1] : (/^\d+$/.test(text.trim()) ? text.trim() : "");
}

async function loadAgreements(input) {
  const select = document.querySelector(input.dataset.agreement);
  const form = input.closest("form");
  const number = accountNumber(input.value);
  if (!select || !form) return;
  const keep = select.value || select.dataset.selected || "";
  if (!number) {
    select.replaceChildren(new Option("Choose an account first", ""));
    showNoAgreement(input, false);
    return;
  }
  if (select.dataset.loadedFor === number) return;
  let reply;
  try {
    const response = await fetch(`${form.dataset.agreements}?account=${number}`, {
      headers: { Accept: "application/json" }, credentials: "same-origin",
    });
    reply = await response.json();
    if (!response.ok) throw new Error(reply.error || response.statusText);
  } catch (error) {
    select.title = `The agreements could not be read: ${error.message}`;
    return;
  }
  // The blank choice says why it is blank: none exist, or none is chosen yet.
  const blank = reply.agreements.length ? "Choose an agreement" : "No agreement in Tigerpaw";
  const options = [new Option(blank, "")];
  const running = [];
  reply.agreements.forEach((agreement) => {
    const option = new Option(agreement.title, String(agreement.number));
    if (!agreement.title.endsWith("(not running)")) running.push(option);
    options.push(option);
  });
  select.replaceChildren(...options);
  select.dataset.loadedFor = number;
  showNoAgreement(input, reply.agreements.length === 0);
  if (keep && options.some((o) => o.value === keep)) select.value = keep;
  else if (running.length === 1) select.value = running[0].value;
}

function showNoAgreement(input, lacking) {
  // A billed row needs an agreement to carry its charges: an account with none
  // gets billing switched off (and back on once it has one), saying why.
  const row = input.id.replace(/^account-/, "");
  const billing = document.getElementById(`billing-${row}`);
  const form = input.closest("form");
  if (!billing || !form) return;
  const id = `no-agreement-${row}`;
  let note = document.getElementById(id);
  if (!lacking) {
    if (note) note.remove();
    billing.removeAttribute("aria-describedby");
    if (billing.dataset.autoOff) {
      billing.checked = true;
      delete billing.dataset.autoOff;
    }
    return;
  }
  if (billing.checked) {
    billing.checked = false;
    billing.dataset.autoOff = "1";
  }
  if (!note) {
    note = document.createElement("p");
    note.className = "hint no-agreement";
    note.id = id;
    input.closest("td").append(note);
  }
  note.textContent = form.dataset.noAgreement || "No agreement in Tigerpaw";
  billing.setAttribute("aria-describedby", id);
}

function showCrossReference(input) {
  // The account list marks the accounts Tigerpaw cannot bill (no external product
  // cross-reference); the warning beside the box says what to do in Tigerpaw.
  const form = input.closest("form");
  const id = `xref-${input.id.replace(/^account-/, "")}`;
  const number = accountNumber(input.value);
  const option = input.list && number
    ? [...input.list.options].find((o) => o.value.endsWith(`(${number})`)) : null;
  let note = document.getElementById(id);
  const described = (input.getAttribute("aria-describedby") || "").split(" ")
    .filter((part) => part && part !== id);
  if (!option || option.dataset.xref !== "no" || !form || !form.dataset.xrefWarning) {
    if (note) note.remove();
    if (described.length) input.setAttribute("aria-describedby", described.join(" "));
    else input.removeAttribute("aria-describedby");
    return;
  }
  if (!note) {
    note = document.createElement("p");
    note.className = "xref";
    note.id = id;
    input.closest("td").append(note);
  }
  note.textContent = form.dataset.xrefWarning.replace("{account}", option.value);
  input.setAttribute("aria-describedby", [...described, id].join(" "));
}

function showLinkedRow() {
  // A link to one row (the dashboard's "Not mapped") may name a row on another
  // page of the grid: ask the server for the page that holds it.
  const match = /^#account-(\d+)$/.exec(window.location.hash);
  const form = document.querySelector("form[data-xref-warning]");
  if (!match || !form || document.getElementById(`account-${match[1]}`)) return;
  const params = new URLSearchParams(window.location.search);
  if (params.get("tenant") === match[1]) return;
  params.delete("page");
  params.delete("q");
  params.delete("unmapped");
  params.set("tenant", match[1]);
  window.location.replace(`${window.location.pathname}?${params}${window.location.hash}`);
}

function applyToPickedRows(button) {
  // The settings page's "Edit selected": copy the panel's chosen values into every
  // ticked row; "__keep__" leaves a field as it is. Nothing is saved until Save.
  const table = document.getElementById(button.dataset.bulkApply);
  const panel = button.closest("[data-bulk-panel]");
  const status = panel.querySelector("[data-bulk-status]");
  const picked = [...table.querySelectorAll("input.row-pick:checked")];
  if (picked.length === 0) {
    status.textContent = "Tick the rows to edit first.";
    return;
  }
  // A select says "(leave as is)" with __keep__; the lifetime box by being blank.
  const changes = [...panel.querySelectorAll("[data-field]")].filter((field) =>
    field.tagName === "SELECT" ? field.value !== "__keep__" : field.value.trim() !== "");
  picked.forEach((box) => {
    changes.forEach((field) => {
      const target = document.getElementById(`${box.dataset.row}-${field.dataset.field}`);
      if (!target) return;
      if (target.type === "checkbox") target.checked = field.value === "on";
      else target.value = field.value.trim();
    });
  });
  const rows = picked.length === 1 ? "1 row" : `${picked.length} rows`;
  status.textContent = `Changed ${rows}: press Save to keep the change.`;
}

document.addEventListener("change", (event) => {
  const target = event.target;
  if (target.matches("input[type=radio], input[type=checkbox]")) updateShown();
  if (target.matches("[data-select-all]")) selectAll(target);
  else if (target.matches("input[type=checkbox][name]")) syncSelectAll();
  if (target.matches("[data-pick-all]")) {
    document.querySelectorAll(`${target.dataset.pickAll} input.row-pick`).forEach((box) => {
      box.checked = target.checked;
    });
  }
  if (target.matches("input[data-agreement]")) {
    loadAgreements(target);
    showCrossReference(target);
  }
});

document.addEventListener("input", (event) => {
  if (event.target.matches("[data-filter]")) filterRows(event.target);
});

document.addEventListener("focusin", (event) => {
  const select = event.target;
  if (select.matches("select[id^=agreement-]")) {
    const input = document.querySelector(`input[data-agreement="#${select.id}"]`);
    if (input) loadAgreements(input);
  }
});

document.addEventListener("click", (event) => {
  const target = event.target;
  if (target.matches("button[data-copy]")) copyText(target);
  if (target.matches("button[data-bulk-apply]")) applyToPickedRows(target);
  if (target.matches("button[data-fill]")) {
    const input = document.querySelector(target.dataset.fill);
    if (input) {
      input.value = target.dataset.value;
      input.dispatchEvent(new Event("change", { bubbles: true }));
      input.focus();
    }
  }
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-needs-script]").forEach((element) => {
    element.hidden = false;
  });
  updateShown();
  syncSelectAll();
  document.querySelectorAll("[data-filter]").forEach(filterRows);
  showLinkedRow();
});
