// Charts, live progress, confirmations. No framework; plotly.min.js is served from static/ (no CDN).
// Loaded by base.html on every page (deferred): the Content-Security-Policy allows no inline script
// or on*= handler, so pages declare behaviour in data- attributes and this file attaches it.
(function () {
  "use strict";
  // Figures kept in older report snapshots give titles as bare strings, a form plotly.js 3 no
  // longer draws: lift them into {text: ...}.
  function titled(layout) {
    Object.keys(layout).forEach(function (key) {
      var part = layout[key];
      if (key === "title" && typeof part === "string") layout.title = { text: part };
      else if (/^[xy]axis\d*$/.test(key) && part && typeof part.title === "string") part.title = { text: part.title };
    });
    return layout;
  }

  // Figures built now come escaped (apps/core/charts.py marks them meta.escaped): plotly draws
  // <b> and <a> in any text as markup. Older report snapshots were stored before that, with the
  // names as users typed them; their text is escaped here, once, the same way.
  function esc(value) {
    if (typeof value === "string") return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    if (Array.isArray(value)) return value.map(esc);
    return value;
  }
  function plainText(fig) {
    var layout = fig.layout || {};
    if (layout.meta && layout.meta.escaped) return fig;
    (fig.data || []).forEach(function (trace) {
      ["name", "text", "hovertext", "x", "y"].forEach(function (k) { if (k in trace) trace[k] = esc(trace[k]); });
    });
    Object.keys(layout).forEach(function (key) {
      var part = layout[key];
      if (key === "title" && part) part.text = esc(part.text);
      if (/^[xy]axis\d*$/.test(key) && part && part.title) part.title.text = esc(part.title.text);
      // An axis's category order names the same categories as its traces: escaped alike, or they would not match.
      if (/^[xy]axis\d*$/.test(key) && part && Array.isArray(part.categoryarray)) part.categoryarray = esc(part.categoryarray);
    });
    (layout.annotations || []).forEach(function (a) { a.text = esc(a.text); });
    return fig;
  }

  // A chart is <div data-plotly="ID"> beside the figure Django's json_script wrote under ID.
  // app.css makes .chart content-box, so Plotly sizes the plot to the card's inner width, and the
  // plot follows the card as the window resizes (responsive).
  function drawChart(el) {
    if (el.dataset.drawn) return Promise.resolve();
    el.dataset.drawn = "1";
    var source = document.getElementById(el.dataset.plotly);
    if (!source) return Promise.resolve();
    var fig = JSON.parse(source.textContent);
    fig.layout = titled(fig.layout || {});
    plainText(fig);
    var layout = fig.layout;
    layout.autosize = true;
    delete layout.width;
    return window.Plotly.newPlot(el, fig.data, layout, { responsive: true, displaylogo: false });
  }

  // Drawing a chart takes tens of milliseconds, and a run page has four or five: the charts in
  // view are drawn at once, the others one per task afterwards (sooner if scrolled to), so the
  // page shows and answers before every chart below the fold is ready.
  // bench/page_load.py reads the marks: "charts-visible" and "charts-drawn".
  function drawCharts() {
    if (!window.Plotly) return;
    var charts = Array.prototype.slice.call(document.querySelectorAll("[data-plotly]"));
    var fold = window.innerHeight + 200;
    var later = [];
    var now = charts.filter(function (el) {
      var inView = el.getBoundingClientRect().top < fold;
      if (!inView) later.push(el);
      return inView;
    });
    Promise.all(now.map(drawChart)).then(function () { performance.mark("charts-visible"); });
    var watcher = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
      entries.forEach(function (e) { if (e.isIntersecting) drawChart(e.target); });
    }, { rootMargin: "200px" }) : null;
    later.forEach(function (el) { if (watcher) watcher.observe(el); });
    function next() {
      var el = later.shift();
      if (!el) {
        if (watcher) watcher.disconnect();
        performance.mark("charts-drawn");
        return;
      }
      drawChart(el).then(function () { window.setTimeout(next, 0); });
    }
    window.setTimeout(next, 0);
  }

  function pollProgress() {
    var box = document.getElementById("progress");
    if (!box || box.dataset.active !== "1") return;
    var url = box.dataset.progressUrl;
    function set(name, value) {
      var el = box.querySelector('[data-field="' + name + '"]');
      if (el) el.textContent = value === null || value === undefined ? "—" : value;
    }
    function tick() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (p) {
          ["status", "elapsed_s", "remaining_s", "ttft_p95_recent_ms"].forEach(function (k) { set(k, p[k]); });
          // Counts read as the server renders them: with thousands separators.
          ["sent", "completed", "errors"].forEach(function (k) { set(k, typeof p[k] === "number" ? p[k].toLocaleString("en-US") : p[k]); });
          var pct = Math.round(p.fraction * 100);
          box.querySelector('[data-field="bar"]').style.width = pct + "%";
          set("percent", pct + "%");
          var status = box.querySelector('[data-field="status"]');
          status.className = "pill " + p.status;
          if (["succeeded", "failed", "cancelled"].indexOf(p.status) >= 0) {
            window.location.reload(); // the results are ready: render them
          } else {
            window.setTimeout(tick, 2000);
          }
        })
        .catch(function () { window.setTimeout(tick, 5000); });
    }
    window.setTimeout(tick, 1000);
  }

  // <form data-confirm="Delete this?">: asks before submitting.
  document.addEventListener("submit", function (event) {
    var question = event.target.dataset ? event.target.dataset.confirm : null;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // <button data-action="print">: the browser's print dialog (the report's "Print / PDF").
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest('[data-action="print"]') : null;
    if (button) window.print();
  });

  // A message tagged "at-item item-N" (a checklist answer) moves beside that item, which the
  // redirect's #anchor scrolled to: otherwise it would sit at the top of the page, out of view.
  function placeItemMessages() {
    document.querySelectorAll(".messages .msg.at-item").forEach(function (msg) {
      var tag = Array.prototype.find.call(msg.classList, function (c) { return /^item-\d+$/.test(c); });
      var box = tag && document.querySelector('[data-item-messages="' + tag + '"]');
      if (!box) return;
      var list = box.querySelector("ul") || box.appendChild(document.createElement("ul"));
      list.className = "messages";
      var top = msg.parentNode;
      list.appendChild(msg);
      if (!top.children.length) top.remove();
      var item = box.closest("details, section") || box;
      if (item.tagName === "DETAILS") item.open = true; // the item just answered starts collapsed
      item.scrollIntoView({ block: "start" });
    });
  }

  // <select data-toggles="NAME"> shows only the fields of its form marked data-show-when with
  // its value (a price's self-hosted or hosted-API fields); hidden fields are still submitted.
  function toggleFieldsByKind() {
    document.querySelectorAll("select[data-toggles]").forEach(function (select) {
      var form = select.form;
      function apply() {
        form.querySelectorAll("[data-show-when]").forEach(function (field) {
          var hide = field.dataset.showWhen.split(" ").indexOf(select.value) < 0;
          field.hidden = hide;
          field.style.display = hide ? "none" : ""; // .field's display: flex outranks [hidden]
        });
      }
      select.addEventListener("change", apply);
      apply();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    pollProgress();
    placeItemMessages();
    toggleFieldsByKind();
  });
})();
