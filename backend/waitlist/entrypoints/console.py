"""A small staff console served at `/`: it calls the same JSON API with the staff token.

One static page, no build step: enter an open slot, watch its offers move, see who asked for a call.
"""

CONSOLE_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Waitlist - staff console</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d2430; }
  header { background: #1f4e79; color: white; padding: 12px 20px; display: flex; gap: 16px;
           align-items: center; }
  header h1 { font-size: 18px; margin: 0; flex: 1; }
  main { display: grid; grid-template-columns: 360px 1fr; gap: 20px; padding: 20px; }
  section { background: white; border-radius: 8px; padding: 16px; box-shadow: 0 1px 3px #0002; }
  h2 { font-size: 15px; margin: 0 0 12px; }
  label { display: block; font-size: 13px; margin: 8px 0 2px; }
  input, select, button { font: inherit; padding: 6px; width: 100%; box-sizing: border-box; }
  button { background: #1f4e79; color: white; border: 0; border-radius: 4px; margin-top: 12px;
           cursor: pointer; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  td, th { border-bottom: 1px solid #e3e6ea; padding: 6px; text-align: left; }
  .state { font-weight: 600; }
  .pending { color: #a36100; } .accepted { color: #1a7f37; } .filled { color: #1a7f37; }
  .error { color: #b42318; font-size: 13px; min-height: 1em; }
  a { color: #1f4e79; }
</style>
</head>
<body>
<header>
  <h1>Waitlist - staff console</h1>
  <input id="token" type="password" placeholder="staff API token" style="width: 220px">
  <a href="/docs" style="color: white">API docs</a>
</header>
<main>
  <div>
    <section>
      <h2>A slot opened up</h2>
      <label>Provider <select id="provider"></select></label>
      <label>Location <input id="location" value="Main Street Clinic"></label>
      <label>Starts (local time) <input id="start" type="datetime-local"></label>
      <label>Minutes <input id="minutes" type="number" value="30" min="5"></label>
      <button id="offer">Start offering</button>
      <div class="error" id="error"></div>
    </section>
    <section style="margin-top: 20px">
      <h2>Patients who asked for a call</h2>
      <table id="handoffs"></table>
    </section>
  </div>
  <section>
    <h2>Slots <select id="status" style="width: auto"><option>open</option><option>filled</option>
      <option>expired</option><option>aborted</option><option>all</option></select></h2>
    <table id="slots"></table>
  </section>
</main>
<script>
const $ = (id) => document.getElementById(id);
$("token").value = localStorage.getItem("staffToken") || "";
$("token").onchange = () => { localStorage.setItem("staffToken", $("token").value); refresh(); };
async function api(method, path, body) {
  const response = await fetch("/api/v1" + path, {
    method, headers: {"Authorization": "Bearer " + $("token").value,
                      "Content-Type": "application/json"},
    body: body ? JSON.stringify(body) : undefined});
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}
function esc(text) { const d = document.createElement("div"); d.textContent = text ?? ""; return d.innerHTML; }
async function refresh() {
  try {
    const providers = await api("GET", "/providers");
    const chosen = $("provider").value;
    $("provider").innerHTML = providers.map(p =>
      `<option value="${p.id}">${esc(p.name)} (${esc(p.provider_type)})</option>`).join("");
    if (chosen) $("provider").value = chosen;
    const slots = await api("GET", "/cancellations?status=" + $("status").value);
    $("slots").innerHTML = "<tr><th>#</th><th>Starts</th><th>Where</th><th>Status</th><th>Offers</th><th></th></tr>" +
      slots.map(c => `<tr><td>${c.id}</td><td>${new Date(c.slot_start).toLocaleString()}</td>
        <td>${esc(c.location)}</td><td class="state ${c.status}">${c.status}${c.filled_by_patient_id ?
        " by patient " + c.filled_by_patient_id : ""}</td>
        <td>${c.offers.map(o => `patient ${o.patient_id}: <span class="state ${o.state}">${o.state}</span>`).join("<br>")}</td>
        <td>${c.status === "open" ? `<button onclick="abort(${c.id})">Close</button>` : ""}</td></tr>`).join("");
    const handoffs = await api("GET", "/events?kind=handoff_requested&limit=20");
    $("handoffs").innerHTML = handoffs.map(e => `<tr><td>${new Date(e.occurred_at).toLocaleString()}</td>
      <td>patient ${e.patient_id ?? "?"}</td><td>${esc(e.data.reason)}</td></tr>`).join("");
    $("error").textContent = "";
  } catch (err) { $("error").textContent = err.message; }
}
async function abort(id) { await api("POST", `/cancellations/${id}/abort`); refresh(); }
$("offer").onclick = async () => {
  try {
    const start = new Date($("start").value);
    const end = new Date(start.getTime() + Number($("minutes").value) * 60000);
    await api("POST", "/cancellations", {provider_id: Number($("provider").value),
      location: $("location").value, slot_start: start.toISOString(), slot_end: end.toISOString()});
    refresh();
  } catch (err) { $("error").textContent = err.message; }
};
$("status").onchange = refresh;
refresh(); setInterval(refresh, 3000);
</script>
</body>
</html>
"""
