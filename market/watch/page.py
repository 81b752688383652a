"""The dashboard page: one self-contained HTML document (plotly.js is inlined by the server)."""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>market · watch</title>
<link rel="icon" href="data:,">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f8fa; color: #1f2328; }
  header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 10px 16px; background: #fff;
           border-bottom: 1px solid #d0d7de; position: sticky; top: 0; z-index: 2; }
  header h1 { font-size: 16px; margin: 0 12px 0 0; }
  #clock { font: 600 22px ui-monospace, monospace; min-width: 150px; }
  #status { color: #57606a; }
  button, select { font: inherit; padding: 4px 10px; border: 1px solid #d0d7de; border-radius: 6px; background: #fff; }
  button:hover { background: #f3f4f6; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px; padding: 12px 16px; }
  section { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 12px; min-width: 0; }
  section h2 { font-size: 14px; margin: 4px 0 8px; }
  .tiles { display: flex; gap: 18px; grid-column: 1 / -1; }
  .tile b { display: block; font-size: 20px; }
  .scroll { max-height: 300px; overflow: auto; }
  table { width: 100%; border-collapse: collapse; font-size: 13px; }
  th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eaeef2; white-space: nowrap; }
  td.item { white-space: normal; }
  tbody tr { cursor: pointer; }
  tbody tr:hover { background: #f3f4f6; }
  .frontier { color: #1f6feb; font-weight: 600; } .small { color: #e8871e; font-weight: 600; }
  #thread div.msg { padding: 4px 0; border-bottom: 1px solid #eaeef2; }
  #thread .meta { color: #57606a; font-size: 12px; }
  .fig { min-height: 300px; }
</style>
</head>
<body>
<header>
  <h1 id="run">market</h1>
  <span id="clock">—</span>
  <span id="status">connecting…</span>
  <button id="pause">Pause</button>
  <button id="resume">Resume</button>
  <button id="step">Step</button>
  <label>speed <select id="speed"></select></label>
  <label>market <select id="market"></select></label>
</header>
<main>
  <section class="tiles">
    <div class="tile">open listings<b id="n-listings">0</b></div>
    <div class="tile">offers in flight<b id="n-offers">0</b></div>
    <div class="tile">deals<b id="n-deals">0</b></div>
    <div class="tile">volume<b id="n-volume">$0.00</b></div>
    <div class="tile">participants<b id="n-participants">0</b></div>
  </section>
  <section><div id="fig-activity" class="fig"></div></section>
  <section><div id="fig-tiers" class="fig"></div></section>
  <section><h2>Deals as they close</h2><div class="scroll"><table id="deals">
    <thead><tr><th>when</th><th>item</th><th>price</th><th>seller</th><th>buyer</th></tr></thead><tbody></tbody>
  </table></div></section>
  <section><h2>Haggling on <span id="thread-title">—</span></h2><div id="thread" class="scroll"></div></section>
  <section><h2>Open listings</h2><div class="scroll"><table id="listings">
    <thead><tr><th>listing</th><th>item</th><th>ask</th><th>seller</th><th>offers</th></tr></thead><tbody></tbody>
  </table></div></section>
  <section><h2>Offers in flight</h2><div class="scroll"><table id="offers">
    <thead><tr><th>offer</th><th>item</th><th>amount</th><th>from</th><th>round</th></tr></thead><tbody></tbody>
  </table></div></section>
  <section><div id="fig-prices" class="fig"></div></section>
</main>
<script>/*PLOTLY_JS*/</script>
<script>
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
</script>
</body>
</html>
"""
