"use strict";
const $ = (id) => document.getElementById(id);
let figureKey = null;
let lastMarket = null;

function post(action, value) {
  return fetch("/control", {method: "POST", headers: {"Content-Type": "application/json"},
                            body: JSON.stringify({action, value})});
}
$("pause").onclick = () => post("pause");
$("resume").onclick = () => post("resume");
$("step").onclick = () => post("step");
$("speed").onchange = (e) => post("speed", e.target.value);
$("market").onchange = (e) => post("market", e.target.value);

function options(select, values, chosen) {
  if (select.options.length !== values.length) {
    select.replaceChildren(...values.map((v) => new Option(v, v)));
  }
  if (document.activeElement !== select) select.value = chosen;
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
}

function fill(table, rows, columns) {
  const body = document.createElement("tbody");
  for (const r of rows) {
    const tr = body.insertRow();
    tr.dataset.listing = r.listing || r.id;
    for (const [key, cls] of columns) cell(tr, r[key], typeof cls === "function" ? cls(r) : cls);
    tr.onclick = () => post("listing", tr.dataset.listing);
  }
  table.tBodies[0].replaceWith(body);
}

function render(s) {
  $("run").textContent = s.run;
  $("clock").textContent = s.clock_label;
  $("status").textContent = s.paused ? "paused" : s.status;
  options($("speed"), s.speeds, s.speed);
  options($("market"), s.markets, s.market);
  $("n-listings").textContent = s.counts.open_listings;
  $("n-offers").textContent = s.counts.open_offers;
  $("n-deals").textContent = s.counts.deals;
  $("n-volume").textContent = s.counts.volume;
  $("n-participants").textContent = s.counts.participants;
  fill($("deals"), s.deals, [["at"], ["item", "item"], ["price"], ["seller_tier", (r) => r.seller_tier],
                             ["buyer_tier", (r) => r.buyer_tier]]);
  fill($("listings"), s.listings, [["id"], ["item", "item"], ["ask"], ["seller_tier", (r) => r.seller_tier],
                                   ["offers"]]);
  fill($("offers"), s.offers, [["id"], ["item", "item"], ["amount"], ["from_tier", (r) => r.from_tier],
                               ["round"]]);
  const thread = $("thread");
  if (s.thread) {
    $("thread-title").textContent = `${s.thread.listing}: ${s.thread.item} (ask ${s.thread.ask}, ${s.thread.status})`;
    thread.replaceChildren(...s.thread.messages.map((m) => {
      const div = document.createElement("div");
      div.className = "msg";
      const meta = document.createElement("div");
      meta.className = "meta";
      meta.textContent = `${m.at} · ${m.who} · ${m.kind}`;
      const text = document.createElement("div");
      text.textContent = m.text;
      div.append(meta, text);
      return div;
    }));
  } else {
    $("thread-title").textContent = "—";
    thread.replaceChildren();
  }
  if (s.figures && s.figures.key !== figureKey) {
    figureKey = s.figures.key;
    for (const name of ["activity", "tiers", "prices"]) {
      const fig = s.figures[name];
      if (fig) Plotly.react($("fig-" + name), fig.data, fig.layout, {displayModeBar: false, responsive: true});
    }
  }
  if (s.market !== lastMarket) { lastMarket = s.market; document.body.dataset.market = s.market; }
  document.body.dataset.figures = figureKey || "";
}

const events = new EventSource("/events");
window.snapshots = 0;
events.onmessage = (e) => { window.snapshots += 1; render(JSON.parse(e.data)); };
events.onerror = () => { $("status").textContent = "disconnected (is the watcher still running?)"; };
