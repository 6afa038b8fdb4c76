// The swarm visualizer page: renders the model pushed on /events (or polled
// from /api/state where EventSource is missing). Everything is built with
// textContent, never innerHTML: names and labels come from the swarm.
"use strict";
(function () {
  var nodesEl = document.getElementById("nodes");
  var statusEl = document.getElementById("status");
  var unassignedEl = document.getElementById("unassigned");
  var last = null;
  window.vizUpdates = 0; // states received: a test can tell a live update from a reload

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function hue(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) % 360;
    return h;
  }

  function age(since) {
    var s = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d";
  }

  function taskCard(t) {
    var c = el("div", "task" + (t.state === "running" ? "" : " not-running"));
    c.dataset.id = t.id;
    c.dataset.service = t.service;
    c.dataset.state = t.state;
    c.style.setProperty("--hue", hue(t.service));
    c.appendChild(el("div", "service", t.service + (t.slot ? "." + t.slot : "")));
    c.appendChild(el("div", "image", t.image));
    var line = el("div", "line");
    line.appendChild(el("span", "tstate", t.state));
    var a = el("span", "age", age(t.since));
    a.dataset.since = t.since;
    line.appendChild(a);
    c.appendChild(line);
    if (t.err) c.appendChild(el("div", "err", t.err));
    return c;
  }

  function nodeColumn(n) {
    var col = el("section", "node");
    var down = n.state !== "ready";
    if (down) col.classList.add("down");
    if (n.availability !== "active") col.classList.add(n.availability);
    col.dataset.hostname = n.hostname;
    col.dataset.state = n.state;
    col.dataset.availability = n.availability;
    col.dataset.role = n.role;
    col.dataset.leader = n.leader ? "true" : "false";
    col.appendChild(el("h2", "hostname", n.hostname));
    var meta = el("div", "meta");
    meta.appendChild(el("span", "role", n.role));
    if (n.leader) { meta.appendChild(document.createTextNode(" · ")); meta.appendChild(el("span", "leader", "leader")); }
    else if (n.reachability) meta.appendChild(document.createTextNode(" · " + n.reachability));
    meta.appendChild(document.createTextNode(" · "));
    meta.appendChild(el("span", "state", n.state));
    meta.appendChild(document.createTextNode(" · "));
    meta.appendChild(el("span", "availability", n.availability));
    col.appendChild(meta);
    var labels = el("div", "labels");
    Object.keys(n.labels || {}).sort().forEach(function (k) {
      labels.appendChild(el("span", "label", k + "=" + n.labels[k]));
    });
    col.appendChild(labels);
    var tasks = el("div", "tasks");
    (n.tasks || []).forEach(function (t) { tasks.appendChild(taskCard(t)); });
    col.appendChild(tasks);
    return col;
  }

  function render(st) {
    last = st;
    window.vizUpdates++;
    var frag = document.createDocumentFragment();
    (st.nodes || []).forEach(function (n) { frag.appendChild(nodeColumn(n)); });
    nodesEl.replaceChildren(frag);
    var un = st.unassigned || [];
    var box = unassignedEl.querySelector(".tasks");
    box.replaceChildren.apply(box, un.map(taskCard));
    unassignedEl.hidden = un.length === 0;
    showStatus();
  }

  function showStatus(extra) {
    if (!last) return;
    var total = 0;
    (last.nodes || []).forEach(function (n) { total += (n.tasks || []).length; });
    var s = (last.nodes || []).length + " nodes, " + total + " tasks · live via " + last.source +
      " · updated " + new Date(last.generated).toLocaleTimeString();
    if (last.error) s += " · engine: " + last.error;
    if (extra) s += " · " + extra;
    statusEl.textContent = s;
    statusEl.classList.toggle("error", !!(last.error || extra));
  }

  function tick() {
    var ages = document.querySelectorAll(".age");
    for (var i = 0; i < ages.length; i++) ages[i].textContent = age(ages[i].dataset.since);
  }
  setInterval(tick, 1000);

  function poll() {
    fetch("api/state", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(render, function (e) { showStatus("page: " + e); })
      .finally(function () { setTimeout(poll, 2000); });
  }

  if (window.EventSource) {
    var es = new EventSource("events");
    es.addEventListener("state", function (e) { render(JSON.parse(e.data)); });
    es.onerror = function () { showStatus("reconnecting to the visualizer…"); };
  } else {
    poll();
  }
})();
