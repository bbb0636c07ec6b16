// The probe plan form: a form for the common load profiles that writes the profile's JSON (the one
// field the server reads and validates), the JSON itself as the expert mode, and a live preview of
// the offered load. Loaded by templates/probes/plan_form.html only (the CSP allows no inline script).
//
// The preview's segments mirror apps/probes/plans.py offered_load() and its traces
// apps/probes/plan_charts.py, which draw the same chart on the plan's page.
(function () {
  "use strict";

  var OPEN_LOOP = ["constant", "poisson"];
  var KINDS = ["synchronous", "concurrent", "constant", "poisson"];
  var STAGE_KEYS = ["kind", "duration", "rate", "rate_end", "concurrency", "name"];
  var SWEEP_KEYS = ["start_rate", "growth", "step_duration", "step_warmup", "max_steps", "refine_steps", "kind"];
  var SWEEP_DEFAULTS = { start_rate: null, growth: 1.6, step_duration: 15, step_warmup: 3, max_steps: 10,
                         refine_steps: 2, kind: "poisson", max_rate: null };
  var AUTO_KEYS = ["base_rate", "base_s", "peak_rate", "peak_multiple", "replica_capacity_rps", "hold_s",
                   "after_s", "canary_rate"];
  var RATE_AXIS = "Offered rate (requests/s)";
  var CONCURRENCY_AXIS = "Concurrency (requests in flight)";
  var TIME_AXIS = "Time from start (s)";

  var box, textarea, shapeSelect, lastShape, mode = "json";

  function $(id) { return document.getElementById(id); }

  // "" (and anything a number input could not read) is absent: JSON.stringify drops undefined.
  function num(el) {
    if (!el || el.disabled) return undefined;
    var text = el.value.trim();
    if (text === "") return undefined;
    var n = Number(text);
    return isFinite(n) ? n : undefined;
  }
  function setNum(id, value) { $(id).value = value === undefined || value === null ? "" : String(value); }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function onlyKeys(obj, allowed) {
    return Object.keys(obj).every(function (k) { return allowed.indexOf(k) >= 0; });
  }

  // --- the form -> the profile's JSON ---------------------------------------------------------------

  function stageFromRow(row) {
    var get = function (k) { return row.querySelector('[data-k="' + k + '"]'); };
    var name = get("name").value.trim();
    return { kind: get("kind").value, duration: num(get("duration")), rate: num(get("rate")),
             rate_end: num(get("rate_end")), concurrency: num(get("concurrency")), name: name || undefined };
  }

  function profileFromForm(shape) {
    shape = shape || shapeSelect.value;
    if (shape === "synchronous") return { stages: [{ kind: "synchronous", duration: num($("pb-duration")) }] };
    if (shape === "concurrent") {
      return { stages: [{ kind: "concurrent", duration: num($("pb-duration")), concurrency: num($("pb-users")) }] };
    }
    if (OPEN_LOOP.indexOf(shape) >= 0) {
      return { stages: [{ kind: shape, duration: num($("pb-duration")), rate: num($("pb-rate")),
                          rate_end: num($("pb-rate_end")), concurrency: num($("pb-cap")) }] };
    }
    if (shape === "stages") {
      return { stages: Array.prototype.map.call($("pb-stages").querySelectorAll("tr"), stageFromRow) };
    }
    if (shape === "sweep") {
      var sweep = {};
      ["start_rate", "growth", "step_duration", "step_warmup", "max_steps", "refine_steps"].forEach(function (k) {
        sweep[k] = num($("pb-" + k));
      });
      sweep.kind = $("pb-sweep_kind").value;
      return { sweep: sweep };
    }
    var byRate = $("pb-peak_by").value === "rate";
    return { autoscaling: {
      base_rate: num($("pb-base_rate")), base_s: num($("pb-base_s")),
      peak_rate: byRate ? num($("pb-peak_rate")) : undefined,
      peak_multiple: byRate ? undefined : num($("pb-peak_multiple")),
      replica_capacity_rps: byRate ? undefined : num($("pb-replica_capacity_rps")),
      hold_s: num($("pb-hold_s")), after_s: num($("pb-after_s")), canary_rate: num($("pb-canary_rate")),
    } };
  }

  // --- the profile's JSON -> the form (false: the form cannot show it; it stays JSON) ------------------

  function addStageRow(stage) {
    var row = $("pb-stage-row").content.firstElementChild.cloneNode(true);
    if (stage) {
      STAGE_KEYS.forEach(function (k) {
        var el = row.querySelector('[data-k="' + k + '"]');
        el.value = stage[k] === undefined || stage[k] === null ? "" : String(stage[k]);
      });
    }
    $("pb-stages").appendChild(row);
    syncRow(row);
    return row;
  }

  // A row's inputs that its kind ignores are disabled (and so left out of the JSON).
  function syncRow(row) {
    var kind = row.querySelector('[data-k="kind"]').value;
    var open = OPEN_LOOP.indexOf(kind) >= 0;
    row.querySelector('[data-k="rate"]').disabled = !open;
    row.querySelector('[data-k="rate_end"]').disabled = !open;
    var users = row.querySelector('[data-k="concurrency"]');
    users.disabled = kind === "synchronous";
    users.placeholder = kind === "concurrent" ? "users" : open ? "no cap" : "—";
  }

  function fillForm(profile) {
    if (!profile || typeof profile !== "object" || Array.isArray(profile) || Object.keys(profile).length !== 1) {
      return false;
    }
    if (profile.stages) return fillStages(profile.stages);
    if (profile.sweep) return fillSweep(profile.sweep);
    if (profile.autoscaling) return fillAutoscaling(profile.autoscaling);
    return false;
  }

  function fillStages(stages) {
    if (!Array.isArray(stages) || !stages.length) return false;
    var ok = stages.every(function (s) {
      return s && typeof s === "object" && onlyKeys(s, STAGE_KEYS) && KINDS.indexOf(s.kind) >= 0 &&
        ["duration", "rate", "rate_end", "concurrency"].every(function (k) { return s[k] === undefined || isNum(s[k]); }) &&
        (s.name === undefined || typeof s.name === "string");
    });
    if (!ok) return false;
    var s = stages[0];
    var single = stages.length === 1 && !s.name && (
      (s.kind === "synchronous" && onlyKeys(s, ["kind", "duration"])) ||
      (s.kind === "concurrent" && onlyKeys(s, ["kind", "duration", "concurrency"])) ||
      OPEN_LOOP.indexOf(s.kind) >= 0);
    $("pb-stages").textContent = "";
    if (single) {
      shapeSelect.value = s.kind;
      setNum("pb-duration", s.duration);
      if (s.kind === "concurrent") setNum("pb-users", s.concurrency);
      if (OPEN_LOOP.indexOf(s.kind) >= 0) {
        setNum("pb-rate", s.rate);
        setNum("pb-rate_end", s.rate_end);
        setNum("pb-cap", s.concurrency);
      }
    } else {
      shapeSelect.value = "stages";
      stages.forEach(addStageRow);
    }
    return true;
  }

  function fillSweep(sweep) {
    if (!sweep || typeof sweep !== "object" || !onlyKeys(sweep, SWEEP_KEYS)) return false;
    var numbers = SWEEP_KEYS.filter(function (k) { return k !== "kind"; });
    if (!numbers.every(function (k) { return sweep[k] === undefined || sweep[k] === null || isNum(sweep[k]); })) return false;
    if (sweep.kind !== undefined && OPEN_LOOP.indexOf(sweep.kind) < 0) return false;
    shapeSelect.value = "sweep";
    // A key the stored JSON leaves out takes the engine's default, shown as such.
    numbers.forEach(function (k) { setNum("pb-" + k, sweep[k] === undefined ? SWEEP_DEFAULTS[k] : sweep[k]); });
    $("pb-sweep_kind").value = sweep.kind || "poisson";
    return true;
  }

  function fillAutoscaling(spec) {
    if (!spec || typeof spec !== "object" || !onlyKeys(spec, AUTO_KEYS)) return false;
    if (!Object.keys(spec).every(function (k) { return isNum(spec[k]); })) return false;
    if ((spec.peak_rate === undefined) === (spec.peak_multiple === undefined)) return false;
    shapeSelect.value = "autoscaling";
    AUTO_KEYS.forEach(function (k) { if (spec[k] !== undefined) setNum("pb-" + k, spec[k]); });
    ["canary_rate", "replica_capacity_rps"].forEach(function (k) { if (spec[k] === undefined) setNum("pb-" + k, ""); });
    $("pb-peak_by").value = spec.peak_rate !== undefined ? "rate" : "multiple";
    return true;
  }

  // --- the offered load (plans.offered_load) --------------------------------------------------------

  function round(x, digits) { var f = Math.pow(10, digits); return Math.round(x * f) / f; }

  function stagesOf(profile) {
    var notes = [];
    if (profile.stages) return { stages: profile.stages, notes: notes };
    if (profile.sweep) {
      var sw = Object.assign({}, SWEEP_DEFAULTS, profile.sweep);
      if (sw.start_rate === null || sw.start_rate === undefined) {
        notes.push("The sweep first measures one synchronous step; its later rates grow from what that step " +
                   "sustains (× " + sw.growth + " per step, up to " + sw.max_steps + " steps).");
        return { stages: [{ kind: "synchronous", duration: sw.step_duration, name: "baseline" }], notes: notes };
      }
      var steps = [], rate = sw.start_rate;
      for (var i = 0; i < sw.max_steps; i++) {
        if (sw.max_rate !== null && rate > sw.max_rate) break;
        steps.push({ kind: sw.kind, duration: sw.step_duration, rate: round(rate, 6), name: "step " + (i + 1) });
        rate *= sw.growth;
      }
      notes.push("Shown: every step meeting the SLOs. The sweep stops at the first step that misses or saturates, " +
                 "then refines the rate in up to " + sw.refine_steps + " more steps.");
      return { stages: steps, notes: notes };
    }
    var a = profile.autoscaling;
    var peak = a.peak_rate !== undefined ? a.peak_rate
      : a.replica_capacity_rps ? round(a.peak_multiple * a.replica_capacity_rps, 3) : null;
    if (peak === null) {
      notes.push("The step goes to " + a.peak_multiple + " × one replica's capacity, measured by the endpoint's " +
                 "latest sweep when the run starts; shown at the base rate until then.");
    }
    return { stages: [
      { kind: "poisson", rate: a.base_rate, duration: a.base_s, name: "base" },
      { kind: "poisson", rate: peak === null ? a.base_rate : peak, duration: a.hold_s, name: "step up" },
      { kind: "poisson", rate: a.base_rate, duration: a.after_s, name: "step down" },
    ], notes: notes, unsized: peak === null };
  }

  // null when the profile is not complete enough to draw (the server's message says what is missing).
  function offeredLoad(profile) {
    var parts = stagesOf(profile);
    var segments = [], t = 0;
    for (var i = 0; i < parts.stages.length; i++) {
      var s = parts.stages[i];
      if (!isNum(s.duration) || s.duration <= 0) return null;
      var open = OPEN_LOOP.indexOf(s.kind) >= 0;
      if (open && !(isNum(s.rate) && s.rate > 0)) return null;
      if (s.kind === "concurrent" && !(isNum(s.concurrency) && s.concurrency >= 1)) return null;
      var end = isNum(s.rate_end) ? s.rate_end : s.rate;
      segments.push({ start: round(t, 6), end: round(t + s.duration, 6), kind: s.kind,
                      rate: open ? s.rate : null, rate_end: open ? end : null,
                      concurrency: open ? null : (s.kind === "synchronous" ? 1 : s.concurrency) });
      t += s.duration;
    }
    if (!segments.length) return null;
    var requests = null;
    if (!profile.sweep && !parts.unsized && segments.every(function (g) { return g.rate !== null; })) {
      requests = segments.reduce(function (sum, g) { return sum + (g.end - g.start) * (g.rate + g.rate_end) / 2; }, 0);
    }
    var rates = [];
    segments.forEach(function (g) { if (g.rate !== null) rates.push(g.rate, g.rate_end); });
    return { segments: segments, duration_s: round(t, 6), peak_rate: rates.length ? Math.max.apply(null, rates) : null,
             expected_requests: requests === null ? null : Math.round(requests), notes: parts.notes };
  }

  function traces(load) {
    var rx = [], ry = [], cx = [], cy = [];
    load.segments.forEach(function (g) {
      if (g.rate !== null) {
        rx.push(g.start, g.end); ry.push(g.rate, g.rate_end); cx.push(null); cy.push(null);
      } else {
        cx.push(g.start, g.end); cy.push(g.concurrency, g.concurrency); rx.push(null); ry.push(null);
      }
    });
    var data = [];
    var some = function (ys) { return ys.some(function (y) { return y !== null; }); };
    if (some(ry)) data.push({ x: rx, y: ry, name: "offered rate (requests/s)", type: "scatter", mode: "lines" });
    if (some(cy)) {
      var trace = { x: cx, y: cy, name: "concurrency (requests in flight)", type: "scatter", mode: "lines",
                    line: { dash: "dot" } };
      if (data.length) trace.yaxis = "y2";
      data.push(trace);
    }
    return data;
  }

  // From 0 to a little above the top, so a flat line does not sit on the plot's edge.
  function headroom(ys) {
    var top = Math.max.apply(null, ys.filter(function (y) { return y !== null; }));
    return [0, top > 0 ? top * 1.15 : 1];
  }

  function fmt(n) { return Number(n).toLocaleString("en-US", { maximumSignificantDigits: 3 }); }

  function drawPreview() {
    var chart = $("pb-preview"), summary = $("pb-summary");
    var load = null;
    try { load = offeredLoad(JSON.parse(textarea.value)); } catch (e) { load = null; }
    box.querySelector(".pb-preview").hidden = false;
    if (!load) {
      if (window.Plotly) window.Plotly.purge(chart);
      chart.hidden = true;
      summary.textContent = "The preview appears when the profile is complete.";
      return;
    }
    chart.hidden = false;
    var data = traces(load);
    var closedOnly = data.length === 1 && data[0].name.indexOf("concurrency") === 0;
    var layout = {
      title: { text: "Offered load (preview)", font: { size: 14 } }, height: 280,
      margin: { l: 70, r: 70, t: 40, b: 50 }, showlegend: data.length > 1, legend: { orientation: "h", y: -0.3 },
      xaxis: { title: { text: TIME_AXIS }, rangemode: "tozero" },
      yaxis: { title: { text: closedOnly ? CONCURRENCY_AXIS : RATE_AXIS }, range: headroom(data[0].y) },
    };
    if (data.length > 1) {
      layout.yaxis2 = { title: { text: CONCURRENCY_AXIS }, overlaying: "y", side: "right", range: headroom(data[1].y) };
    }
    if (window.Plotly) window.Plotly.react(chart, data, layout, { responsive: true, displaylogo: false });
    var parts = ["Runs " + fmt(load.duration_s) + " s"];
    if (load.expected_requests !== null) parts.push("about " + fmt(load.expected_requests) + " requests");
    if (load.peak_rate !== null) parts.push("peak " + fmt(load.peak_rate) + " requests/s");
    summary.textContent = parts.join(" · ") + "." + (load.notes.length ? " " + load.notes.join(" ") : "");
  }

  // The server names the stage at fault ("Stage 2: ...") and the number ("rate", "concurrency"):
  // mark those inputs, so the error is seen where it is fixed.
  function markRefusal() {
    var list = box.querySelector(".errorlist");
    if (!list) return;
    var text = list.textContent;
    var stage = /Stage (\d+):/.exec(text);
    var scope = box;
    if (shapeSelect.value === "stages" && stage) {
      scope = $("pb-stages").children[Number(stage[1]) - 1] || box;
      scope.classList.add("has-error");
    }
    var fields = { rate: ["pb-rate", "rate"], concurrency: ["pb-users", "concurrency"], duration: ["pb-duration", "duration"],
                   "runs ": ["pb-duration", "duration"] };
    Object.keys(fields).forEach(function (word) {
      if (text.indexOf(word) < 0) return;
      var el = scope === box ? $(fields[word][0]) : scope.querySelector('[data-k="' + fields[word][1] + '"]');
      if (el && !el.closest("[hidden]")) el.setAttribute("aria-invalid", "true");
    });
  }

  // --- modes and events -----------------------------------------------------------------------------

  function showShape() {
    var shape = shapeSelect.value;
    box.querySelectorAll("[data-shapes]").forEach(function (el) {
      el.hidden = el.dataset.shapes.split(" ").indexOf(shape) < 0;
    });
    var byRate = $("pb-peak_by").value === "rate";
    box.querySelectorAll("[data-peak]").forEach(function (el) { el.hidden = (el.dataset.peak === "rate") !== byRate; });
  }

  function note(text) {
    var el = $("pb-note");
    el.textContent = text || "";
    el.hidden = !text;
  }

  function setMode(next) {
    mode = next;
    box.querySelector('[data-pane="form"]').hidden = next !== "form";
    box.querySelector('[data-pane="json"]').hidden = next !== "json";
    box.querySelectorAll("[data-mode]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.mode === next));
    });
  }

  function writeJson() {
    textarea.value = JSON.stringify(profileFromForm(), null, 1);
    drawPreview();
  }

  function tryForm() {
    var profile;
    try { profile = JSON.parse(textarea.value); } catch (e) { profile = undefined; }
    if (profile === undefined || !fillForm(profile)) return false;
    lastShape = shapeSelect.value;
    showShape();
    return true;
  }

  document.addEventListener("DOMContentLoaded", function () {
    box = $("profile-builder");
    if (!box) return;
    textarea = $(box.dataset.target);
    shapeSelect = $("pb-shape");
    box.querySelector(".pb-toggle").hidden = false;

    if (tryForm()) {
      setMode("form");
      markRefusal();
    } else {
      showShape();
      setMode("json");
      if (textarea.value.trim()) note("This profile uses options the form does not show, so it opens as JSON.");
    }
    drawPreview();

    box.querySelector(".pb-toggle").addEventListener("click", function (event) {
      var button = event.target.closest("[data-mode]");
      if (!button || button.dataset.mode === mode) return;
      if (button.dataset.mode === "json") {
        note("");
        setMode("json");
      } else if (tryForm()) {
        note("");
        setMode("form");
        drawPreview();
      } else {
        note("The form cannot show this JSON (it is incomplete, or uses options the form lacks): keep editing it here.");
      }
    });

    var pane = box.querySelector('[data-pane="form"]');
    pane.addEventListener("input", function () { if (mode === "form") writeJson(); });
    pane.addEventListener("change", function (event) {
      if (event.target === shapeSelect) {
        // Switching to stages starts from the one stage the form held, so nothing typed is lost.
        if (shapeSelect.value === "stages" && KINDS.indexOf(lastShape) >= 0) {
          $("pb-stages").textContent = "";
          addStageRow(profileFromForm(lastShape).stages[0]);
        } else if (shapeSelect.value === "stages" && !$("pb-stages").children.length) {
          addStageRow(null);
        }
        lastShape = shapeSelect.value;
      }
      if (event.target.matches('[data-k="kind"]')) syncRow(event.target.closest("tr"));
      showShape();
      if (mode === "form") writeJson();
    });
    pane.addEventListener("click", function (event) {
      if (event.target.closest("#pb-add-stage")) {
        addStageRow(null);
        writeJson();
      } else if (event.target.closest("[data-remove-stage]")) {
        event.target.closest("tr").remove();
        writeJson();
      }
    });
    textarea.addEventListener("input", function () { if (mode === "json") drawPreview(); });
    // Plotly's own resizing follows the window only; the card also narrows when the page reflows.
    if (window.ResizeObserver) {
      new window.ResizeObserver(function () {
        var chart = $("pb-preview");
        if (window.Plotly && chart.data && !chart.hidden) window.Plotly.Plots.resize(chart);
      }).observe(box);
    }
  });
})();
