// The search page: plain JS against the server's own endpoints (no CDN, no framework).
"use strict";

const $ = (id) => document.getElementById(id);

function showError(message) {
  const el = $("error");
  el.textContent = message || "";
  el.hidden = !message;
}

async function call(path, init) {
  const resp = await fetch(path, Object.assign({ method: "POST" }, init));
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    let detail = body && body.detail;
    if (typeof detail !== "string") detail = JSON.stringify(detail);
    throw new Error(`${resp.status}: ${detail || resp.statusText}`);
  }
  return body;
}

function renderResults(results, label) {
  const list = $("results");
  list.replaceChildren();
  $("results-for").textContent = label;
  for (const r of results) {
    const li = document.createElement("li");
    li.className = "result";
    li.dataset.id = r.id;
    if (r.url) {
      const img = document.createElement("img");
      img.src = r.url;
      img.alt = r.caption || r.id;
      img.loading = "lazy";
      li.append(img);
    }
    const score = document.createElement("div");
    score.className = "score";
    score.textContent = r.score.toFixed(3);
    const caption = document.createElement("div");
    caption.className = "caption";
    caption.textContent = r.caption || r.label || "";
    const id = document.createElement("div");
    id.className = "id";
    id.textContent = r.id;
    li.append(score, caption, id);
    list.append(li);
  }
}

async function searchText(event) {
  event.preventDefault();
  showError("");
  const text = $("query").value.trim();
  if (!text) return;
  try {
    const body = await call("/search", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text, k: Number($("k").value) || 12 }),
    });
    renderResults(body.results, `for “${text}”`);
  } catch (e) { showError(e.message); }
}

async function searchImage(file) {
  if (!file) return;
  showError("");
  const preview = $("image-preview");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  const form = new FormData();
  form.append("image", file);
  form.append("k", String(Number($("k").value) || 12));
  try {
    const body = await call("/search", { body: form });
    renderResults(body.results, `like ${file.name}`);
  } catch (e) { showError(e.message); }
}

async function classify(event) {
  event.preventDefault();
  const out = $("zs-results");
  out.replaceChildren();
  const file = $("zs-file").files[0];
  const form = new FormData();
  form.append("image", file);
  form.append("labels", $("zs-labels").value);
  try {
    const body = await call("/classify", { body: form });
    for (const r of body.labels) {
      const li = document.createElement("li");
      li.textContent = `${r.label} ${(100 * r.score).toFixed(1)}%`;
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.round(200 * r.score)}px`;
      li.append(bar);
      out.append(li);
    }
  } catch (e) {
    const li = document.createElement("li");
    li.className = "error";
    li.textContent = e.message;
    out.append(li);
  }
}

async function status() {
  try {
    const resp = await fetch("/readyz");
    const body = await resp.json();
    $("status").textContent = resp.ok
      ? `${body.model}${body.index != null ? ` · ${body.index} items` : " · no index"}`
      : "warming up…";
    if (!resp.ok) setTimeout(status, 1000);
  } catch (e) { $("status").textContent = "server unreachable"; }
}

document.addEventListener("DOMContentLoaded", () => {
  $("text-form").addEventListener("submit", searchText);
  $("image-file").addEventListener("change", (e) => searchImage(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    searchImage(e.dataTransfer.files[0]);
  });
  $("zs-form").addEventListener("submit", classify);
  status();
});
