/* Runicorn viewer: draws the metric charts (uPlot), server-side zoom, live updates of a running run.
   Every page works without this file; it only makes charts interactive and keeps running runs fresh. */
(function () {
  "use strict";
  var COLORS = ["#5b4fd6", "#e8743b", "#19a979", "#d64545", "#2f7dd6", "#945ecf"];
  var EXPORTED = document.body.dataset.exported === "1";
  var charts = {};

  function aligned(series) {
    var tables = series.map(function (s) { return [s.step, s.value]; });
    if (tables.length === 1) return tables[0];
    return uPlot.join(tables);
  }

  function options(fig, series, width) {
    return {
      width: width, height: 220,
      cursor: { drag: { x: true, y: false, setScale: false } },
      scales: { x: { time: false } },
      legend: { live: true },
      series: [{ label: "step" }].concat(series.map(function (s, i) {
        return { label: series.length === 1 ? fig.dataset.key : (s.label || s.run), stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
                 points: { show: false } };
      })),
      axes: [{ grid: { stroke: "#eef0f5" } }, { grid: { stroke: "#eef0f5" }, size: 60 }],
      hooks: { setSelect: [function (u) { if (u.select.width > 4) zoom(fig, u); }] }
    };
  }

  function draw(fig) {
    var holder = fig.querySelector(".chart-data");
    if (!holder || typeof uPlot === "undefined") return;
    var spec = JSON.parse(holder.textContent);
    if (!spec.series.length || !spec.series[0].step.length) return;
    var box = document.createElement("div");
    box.className = "uplot-box";
    fig.appendChild(box);
    var width = Math.max(300, fig.clientWidth - 20);
    var data = aligned(spec.series);
    var u = new uPlot(options(fig, spec.series, width), data, box);
    charts[fig.id] = { u: u, spec: spec, full: data };
    fig.classList.add("drawn");
    u.over.addEventListener("dblclick", function () { reset(fig); });
  }

  function fetchSeries(s, key, xmin, xmax) {
    var url = "/api/runs/" + encodeURIComponent(s.run) + "/metrics/" + encodeURIComponent(key) + "?points=500";
    if (xmin !== null) url += "&x_min=" + xmin + "&x_max=" + xmax;
    return fetch(url).then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); });
  }

  function zoom(fig, u) {
    var c = charts[fig.id];
    var xmin = u.posToVal(u.select.left, "x"), xmax = u.posToVal(u.select.left + u.select.width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    if (EXPORTED) { u.setScale("x", { min: xmin, max: xmax }); return; }
    Promise.all(c.spec.series.map(function (s) { return fetchSeries(s, c.spec.key, xmin, xmax); }))
      .then(function (parts) {
        var series = parts.map(function (p, i) { return { run: c.spec.series[i].run, step: p.step, value: p.value }; });
        u.setData(aligned(series), false);
        u.setScale("x", { min: xmin, max: xmax });
        fig.dataset.zoomed = "1";
      })
      .catch(function () { u.setScale("x", { min: xmin, max: xmax }); });
  }

  function reset(fig) {
    var c = charts[fig.id];
    if (!c) return;
    c.u.setData(c.full, true);
    delete fig.dataset.zoomed;
  }

  function live() {
    var head = document.getElementById("run-head");
    if (!head || head.dataset.status !== "running" || EXPORTED) return;
    var id = head.dataset.runId;
    // as many points as the page drew: the server extends the series it keeps for this run
    var points = encodeURIComponent(new URLSearchParams(location.search).get("points") || "500");
    var box = document.getElementById("logs-body");
    if (box) box.scrollTop = box.scrollHeight;  // a running run's page opens on its newest lines
    var timer = setInterval(function () {
      fetch("/api/runs/" + encodeURIComponent(id) + "?points=" + points).then(function (r) { return r.json(); })
        .then(function (d) { update(d); if (d.run.status !== "running") { clearInterval(timer); } })
        .catch(function () { clearInterval(timer); });
    }, 3000);
  }

  // The same text as the server's `when` and `duration` filters (render.py).
  function when(value) {
    var text = typeof value === "number" ? new Date(value * 1000).toISOString() : String(value);
    return /^\d{4}-\d\d-\d\dT/.test(text) ? text.slice(0, 16).replace("T", " ") : text;
  }

  function duration(seconds) {
    var t = Math.floor(seconds), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return h ? h + "h " + two(m) + "m" : m ? m + "m " + two(s) + "s" : s + "s";
  }

  // The log box follows the newest lines, unless the reader scrolled up to read older ones.
  function atBottom(box) { return box.scrollHeight - box.scrollTop - box.clientHeight < 24; }

  function showLogs(text) {
    var box = document.getElementById("logs-body");
    if (!box) return;
    if (box.tagName !== "PRE") {  // "no output captured" until now
      var pre = document.createElement("pre");
      pre.className = "logs"; pre.id = "logs-body"; box.replaceWith(pre); box = pre;
    }
    var follow = atBottom(box);
    box.textContent = text;
    if (follow) box.scrollTop = box.scrollHeight;
  }

  function update(d) {
    var badge = document.querySelector("#run-status .badge");
    if (badge) { badge.textContent = d.run.status; badge.className = "badge s-" + d.run.status; }
    var note = document.getElementById("live-note");
    if (note && d.run.status !== "running") note.textContent = "the run has ended (" + d.run.status + ")";
    var end = document.getElementById("run-end");
    if (end && d.run.status !== "running") {
      end.textContent = (d.run.ended_at ? " · ended " + when(d.run.ended_at) : "") +
        (d.run.duration !== null && d.run.duration !== undefined ? " · " + duration(d.run.duration) : "");
    }
    if (d.logs) showLogs(d.logs);
    var summary = document.getElementById("summary-body");
    if (summary && d.run.summary) {
      var rows = Object.keys(d.run.summary).map(function (k) {
        var tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
        th.textContent = k; td.textContent = JSON.stringify(d.run.summary[k]); tr.appendChild(th); tr.appendChild(td);
        return tr;
      });
      var table = document.createElement("table"); table.className = "kv";
      rows.forEach(function (tr) { table.appendChild(tr); });
      summary.replaceChildren(table);
    }
    var missing = (d.metrics || []).some(function (m) {
      return !document.querySelector('figure.chart[data-key="' + CSS.escape(m.key) + '"]');
    });
    if (missing && !document.querySelector("figure.chart[data-zoomed]")) { location.reload(); return; }
    (d.metrics || []).forEach(function (m) {
      var fig = document.querySelector('figure.chart[data-key="' + CSS.escape(m.key) + '"]');
      if (!fig) return;
      var c = charts[fig.id];
      var series = [{ run: d.run.id, step: m.points.step, value: m.points.value }];
      if (c && !fig.dataset.zoomed) { c.full = aligned(series); c.u.setData(c.full, true); }
    });
  }

  document.querySelectorAll("figure.chart").forEach(draw);
  live();
})();
