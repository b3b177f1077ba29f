/* The live view's pages. Every value from the server is written with
 * textContent or as chart data, never as markup. */
"use strict";
(function () {
  var token = new URLSearchParams(location.search).get("token");
  var main = document.getElementById("main");
  var status = document.getElementById("status");
  var page = document.body.getAttribute("data-page");
  var state = { chart: null, run: null, planned: null, log: false };
  window.lrbridge = state; // for people poking at the page (and the browser test)

  function withToken(path) {
    if (!token) return path;
    return path + (path.indexOf("?") < 0 ? "?" : "&") + "token=" + encodeURIComponent(token);
  }
  function link(path) { return withToken(path); }
  Array.prototype.forEach.call(document.querySelectorAll("header a"), function (a) { a.setAttribute("href", link(a.getAttribute("href"))); });
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function getJson(path) {
    return fetch(withToken(path), { headers: { accept: "application/json" } }).then(function (r) {
      return r.json().then(function (body) { if (!r.ok) throw new Error(body.error || r.statusText); return body; });
    });
  }

  /* 1e-5 as "1e-5", not uPlot's "0"; small numbers as mantissa e exponent. */
  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    if (v === 0) return "0";
    var a = Math.abs(v);
    if (a >= 1e-3 && a < 1e4) return String(Number(v.toPrecision(4)));
    var parts = v.toExponential(2).split("e");
    return String(Number(parts[0])) + "e" + Number(parts[1]);
  }
  function ticks(u, values) { return values.map(fmt); }
  function age(seconds) {
    seconds = Math.max(0, seconds);
    if (seconds < 60) return Math.round(seconds) + "s";
    if (seconds < 3600) return Math.round(seconds / 60) + "m";
    return (seconds / 3600).toFixed(1) + "h";
  }
  function progress(run) { return run.total === null ? String(run.step) : run.step + " / " + run.total; }
  function lrText(values) {
    if (!values || !values.length) return "–";
    return values.map(fmt).join(", ");
  }
  function source(run) { return run.ref !== null ? run.ref : run.spec_hash.slice(0, 12); }

  function listen(onRuns) {
    var es = new EventSource(withToken("/api/events"));
    es.addEventListener("runs", function (e) {
      status.textContent = "live · " + new Date().toLocaleTimeString();
      onRuns(JSON.parse(e.data));
    });
    es.onerror = function () { status.textContent = "reconnecting…"; };
    return es;
  }

  // ---- runs -------------------------------------------------------------
  function runsPage() {
    var head = ["name", "ref / spec", "version", "type", "step", "lr", "state", "age"];
    var tbody = el("tbody");
    var table = el("table", { id: "runs" }, [el("thead", null, [el("tr", null, head.map(function (h) { return el("th", { text: h }); }))]), tbody]);
    main.appendChild(el("h1", { text: "Runs" }));
    main.appendChild(table);
    var empty = el("p", { class: "empty", text: "No run has sent a heartbeat yet." });
    main.appendChild(empty);
    listen(function (msg) {
      var rows = document.createDocumentFragment();
      msg.runs.forEach(function (run) {
        var tr = el("tr", { "data-run": run.id, "data-state": run.state, "data-step": String(run.step) }, [
          el("td", { class: "name" }, [el("a", { href: link("/run/" + encodeURIComponent(run.id)), text: run.name })]),
          el("td", { class: "source" }, [el("code", { text: source(run) })]),
          el("td", { class: "num version", text: run.version === null ? "–" : String(run.version) }),
          el("td", { text: run.type }),
          el("td", { class: "num step", text: progress(run) }),
          el("td", { class: "num", text: lrText(run.lr) }),
          el("td", { class: "state state-" + run.state, text: run.state }),
          el("td", { class: "num", text: age(msg.now - run.last_seen) }),
        ]);
        rows.appendChild(tr);
      });
      tbody.replaceChildren(rows);
      empty.style.display = msg.runs.length ? "none" : "";
      if (!state.renderedAt) state.renderedAt = performance.now(); // ms since navigation started
      document.body.setAttribute("data-rendered", "1");
    });
  }

  // ---- one run ----------------------------------------------------------
  function markerPlugin(getStep) {
    return {
      hooks: {
        draw: function (u) {
          var step = getStep();
          if (step === null) return;
          var x = u.valToPos(step, "x", true);
          var ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = "#dc2626";
          ctx.lineWidth = 2 * devicePixelRatio;
          ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.restore();
        },
      },
    };
  }

  var COLORS = ["#2463eb", "#f59e0b", "#16a34a", "#9333ea", "#0891b2", "#db2777"];

  function chartData(planned, run) {
    if (planned && planned.steps) {
      var data = [planned.steps].concat(planned.lr);
      var series = [{ label: "step" }].concat(planned.lr.map(function (_, g) {
        return { label: planned.lr.length > 1 ? "lr[" + g + "]" : "lr", stroke: COLORS[g % COLORS.length], width: 2, scale: "lr", value: function (u, v) { return fmt(v); } };
      }));
      if (planned.momentum) {
        planned.momentum.forEach(function (m, g) {
          data.push(m);
          series.push({ label: planned.momentum.length > 1 ? "momentum[" + g + "]" : "momentum", stroke: "#94a3b8", dash: [4, 4], width: 1.5, scale: "mom", value: function (u, v) { return fmt(v); } });
        });
      }
      return { data: data, series: series, momentum: !!planned.momentum };
    }
    // Metric-driven: the lr as heartbeats saw it change, a step function up to now.
    var xs = [], ys = [];
    (run.changes || []).forEach(function (c) { xs.push(c.step); ys.push(c.lr[0]); });
    xs.push(run.step); ys.push(run.lr[0]);
    return { data: [xs, ys], series: [{ label: "step" }, { label: "lr (observed)", stroke: COLORS[0], width: 2, scale: "lr", paths: uPlot.paths.stepped({ align: 1 }), points: { show: true, size: 7 }, value: function (u, v) { return fmt(v); } }], momentum: false };
  }

  function drawChart(box, run, planned) {
    var cd = chartData(planned, run);
    var axes = [
      { label: "step" },
      { label: "lr", scale: "lr", values: ticks, size: 70 },
    ];
    if (cd.momentum) axes.push({ label: "momentum", scale: "mom", side: 1, values: ticks, grid: { show: false }, size: 60 });
    var opts = {
      width: Math.max(480, Math.min(1100, main.clientWidth - 40)),
      height: 380,
      scales: { x: { time: false }, lr: { distr: state.log ? 3 : 1 }, mom: {} },
      series: cd.series,
      axes: axes,
      plugins: [markerPlugin(function () { return state.run ? state.run.step : null; })],
    };
    if (state.chart) state.chart.destroy();
    box.replaceChildren();
    state.chart = new uPlot(opts, cd.data, box);
  }

  function runPage() {
    var id = decodeURIComponent(location.pathname.slice("/run/".length));
    var title = el("h1", { id: "run-name" });
    var facts = el("div", { class: "facts", id: "facts" });
    var box = el("div", { id: "chart" });
    var logBox = el("input", { type: "checkbox", id: "log" });
    var controls = el("div", { class: "controls" }, [el("label", null, [logBox, " log scale"]), "  · dashed red line: where the run is now"]);
    var note = el("p", { class: "note", id: "note" });
    var changes = el("div", { id: "changes" });
    main.append(title, facts, el("div", { class: "panel" }, [controls, box, note]), changes);
    logBox.addEventListener("change", function () {
      state.log = logBox.checked;
      if (state.run) drawChart(box, state.run, state.planned);
    });

    function showFacts(run, now) {
      title.textContent = run.name;
      var items = [
        ["state", run.state], ["step", progress(run)], ["lr", lrText(run.lr)], ["momentum", lrText(run.momentum)],
        ["type", run.type], [run.ref !== null ? "ref" : "spec", run.ref !== null ? run.ref : run.spec_hash],
        ["version", run.version === null ? "–" : String(run.version)], ["host", run.host === null ? "–" : run.host + (run.pid === null ? "" : ":" + run.pid)],
        ["last heartbeat", age(now - run.last_seen) + " ago"],
      ];
      facts.replaceChildren.apply(facts, items.map(function (kv) {
        return el("div", { "data-fact": kv[0] }, [el("span", { text: kv[0] }), el("b", { class: kv[0] === "state" ? "state state-" + run.state : "", text: kv[1] })]);
      }));
      document.body.setAttribute("data-state", run.state);
      document.body.setAttribute("data-step", String(run.step));
    }
    function showChanges(run) {
      if (!run.changes || !run.changes.length) { changes.replaceChildren(); return; }
      var rows = run.changes.map(function (c) { return el("tr", null, [el("td", { class: "num", text: String(c.step) }), el("td", { class: "num", text: lrText(c.lr) })]); });
      changes.replaceChildren(el("h2", { text: "Where the metric changed the lr" }), el("table", null, [el("thead", null, [el("tr", null, [el("th", { text: "step" }), el("th", { text: "lr" })])]), el("tbody", null, rows)]));
    }

    getJson("/api/run/" + encodeURIComponent(id)).then(function (body) {
      state.run = body.run;
      state.planned = body.planned;
      showFacts(body.run, body.now);
      showChanges(body.run);
      if (body.planned && body.planned.error) note.textContent = "planned curve not available yet: " + body.planned.error;
      else if (!body.planned && body.run.kind !== "metric") note.textContent = "the server no longer holds this run's schedule: no planned curve";
      else if (body.run.kind === "metric") note.textContent = "metric-driven: the lr is known only as the run reports it";
      else note.textContent = "planned curve: " + body.planned.steps.length + " points" + (body.planned.stride > 1 ? " (every " + body.planned.stride + " steps)" : "");
      drawChart(box, body.run, body.planned);
      document.body.setAttribute("data-rendered", "1");
      listen(function (msg) {
        var run = msg.runs.filter(function (r) { return r.id === id; })[0];
        if (!run) return;
        var metricMoved = run.kind === "metric" && run.step !== state.run.step;
        state.run = run;
        showFacts(run, msg.now);
        showChanges(run);
        if (metricMoved) drawChart(box, run, state.planned);
        else if (state.chart) state.chart.redraw(false);
      });
    }, function (err) {
      title.textContent = "Run not found";
      note.textContent = String(err.message || err);
      main.appendChild(note);
    });
  }

  // ---- registry ---------------------------------------------------------
  function registryPage() {
    main.appendChild(el("h1", { text: "Registry" }));
    getJson("/api/registry").then(function (body) {
      if (!body.available) {
        main.appendChild(el("p", { class: "note", id: "registry-off", text: "No registry here: " + body.reason + ". Start the server with a store (lrbridge serve --registry PATH) to see names, versions and alias history." }));
        status.textContent = "";
        document.body.setAttribute("data-rendered", "1");
        return;
      }
      var list = el("ul", { id: "names" }, body.names.map(function (n) {
        var a = el("a", { href: "#", text: n });
        a.addEventListener("click", function (e) { e.preventDefault(); showName(n); });
        return el("li", null, [a]);
      }));
      var detail = el("div", { id: "detail" });
      main.append(list, detail);
      status.textContent = "";
      document.body.setAttribute("data-rendered", "1");

      function showName(name) {
        getJson("/api/registry?name=" + encodeURIComponent(name)).then(function (b) {
          var h = b.history;
          var versions = el("table", { id: "versions" }, [el("thead", null, [el("tr", null, ["version", "spec", "author", "message", "created"].map(function (t) { return el("th", { text: t }); }))]),
            el("tbody", null, h.versions.map(function (v) {
              return el("tr", null, [el("td", { text: String(v.version) }), el("td", null, [el("code", { text: v.spec_hash.slice(0, 12) })]), el("td", { text: v.author || "–" }), el("td", { class: "name", text: v.message || "" }), el("td", { text: new Date(v.created_at * 1000).toISOString() })]);
            }))]);
          var events = el("table", { id: "alias-history" }, [el("thead", null, [el("tr", null, ["alias", "from", "to", "who", "why", "at"].map(function (t) { return el("th", { text: t }); }))]),
            el("tbody", null, h.events.map(function (ev) {
              return el("tr", null, [el("td", { text: ev.alias }), el("td", { text: ev.from === null ? "–" : String(ev.from) }), el("td", { text: String(ev.to) }), el("td", { text: ev.who || "–" }), el("td", { class: "name", text: ev.why || "" }), el("td", { text: new Date(ev.at * 1000).toISOString() })]);
            }))]);
          var pickA = el("select", { id: "pick-a" }), pickB = el("select", { id: "pick-b" });
          h.versions.forEach(function (v, i) {
            pickA.appendChild(el("option", { value: name + "@" + v.version, text: "v" + v.version }));
            pickB.appendChild(el("option", { value: name + "@" + v.version, text: "v" + v.version }));
            if (i === h.versions.length - 1) pickB.value = name + "@" + v.version;
          });
          var overlay = el("div", { id: "overlay" });
          var result = el("p", { class: "note", id: "overlay-result" });
          var go = el("button", { id: "overlay-go", text: "overlay" });
          go.addEventListener("click", function () {
            getJson("/api/registry/overlay?steps=1000&a=" + encodeURIComponent(pickA.value) + "&b=" + encodeURIComponent(pickB.value)).then(function (o) {
              var n = Math.max((o.lr_a || []).length, (o.lr_b || []).length);
              var xs = []; for (var k = 0; k < n; k++) xs.push(k);
              result.textContent = o.first_step === null ? "identical over these steps" : "they part at step " + o.first_step;
              overlay.replaceChildren();
              var first = o.first_step;
              state.overlay = { first_step: first, a: o.a, b: o.b };
              state.overlay.chart = new uPlot({ width: 900, height: 320, scales: { x: { time: false } }, axes: [{ label: "step" }, { values: ticks, size: 70 }],
                series: [{}, { label: "v" + o.a.version, stroke: COLORS[0], width: 2 }, { label: "v" + o.b.version, stroke: COLORS[1], width: 2, dash: [6, 4] }],
                plugins: [markerPlugin(function () { return first; })] }, [xs, o.lr_a || [], o.lr_b || []], overlay);
            });
          });
          detail.replaceChildren(el("h2", { text: name }), el("p", null, [el("span", { text: "aliases: " + Object.keys(h.aliases).map(function (k) { return k + " → v" + h.aliases[k]; }).join(", ") })]),
            versions, el("h2", { text: "Alias history" }), events, el("h2", { text: "Two versions overlaid" }), el("div", { class: "controls" }, [pickA, " vs ", pickB, " ", go]), result, overlay);
          detail.setAttribute("data-name", name);
        });
      }
    });
  }

  if (page === "runs") runsPage();
  else if (page === "run") runPage();
  else if (page === "registry") registryPage();
})();
