/**
 * The browser script of `fleetload ui`, inlined into its page (src/web/ui-page.ts). Plain ES2020 in a string,
 * like the dashboard's (src/web/client.ts): no backticks, no dollar-brace, doubled backslashes. Everything read
 * from the server is put in place with textContent.
 */
export const UI_CLIENT_JS = `
(function () {
  'use strict';
  var boot = JSON.parse(document.getElementById('boot').textContent);
  var $ = function (id) { return document.getElementById(id); };
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  var fields = [];
  boot.form.groups.forEach(function (g) { g.fields.forEach(function (f) { fields.push(f); }); });
  var byFlag = {};
  fields.forEach(function (f) { byFlag[f.flag] = f.key; });

  // ------------------------------------------------------------------------------------------ tabs
  var tabs = ['new', 'live', 'history'];
  function show(name) {
    tabs.forEach(function (t) {
      $(t).hidden = t !== name;
      $('tab-' + t).setAttribute('aria-selected', t === name ? 'true' : 'false');
    });
    if (name === 'history') loadHistory();
  }
  tabs.forEach(function (t) { $('tab-' + t).addEventListener('click', function () { show(t); }); });

  // ------------------------------------------------------------------------------------------ requests
  function call(method, path, body) {
    var init = { method: method, headers: {} };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.json().then(function (j) { return { status: r.status, body: j }; },
        function () { return { status: r.status, body: {} }; });
    });
  }

  // ------------------------------------------------------------------------------------------ form
  function values() {
    var v = {};
    fields.forEach(function (f) {
      var input = $('f-' + f.key);
      if (!input) return;
      if (f.input === 'checkbox') { if (input.checked) v[f.key] = true; }
      else if (input.value.trim() !== '') v[f.key] = input.value;
    });
    return v;
  }
  /** the field a problem names: "devices: …", "stages.0: …", "--devices: …" */
  function fieldOf(problem) {
    var m = /^--([a-z][a-z-]*):/.exec(problem);
    if (m && byFlag[m[1]]) return byFlag[m[1]];
    m = /^([A-Za-z]+)[.:]/.exec(problem);
    return m && $('f-' + m[1]) ? m[1] : undefined;
  }
  function showProblems(list, heading) {
    fields.forEach(function (f) {
      var input = $('f-' + f.key);
      if (input) input.removeAttribute('aria-invalid');
      var e = $('e-' + f.key);
      if (e) e.textContent = '';
    });
    var box = $('problems');
    box.textContent = '';
    if (!list || list.length === 0) { box.hidden = true; return; }
    box.appendChild(el('strong', '', heading || 'fleetload run would refuse this:'));
    var ul = el('ul');
    list.forEach(function (p) {
      ul.appendChild(el('li', '', p));
      var key = fieldOf(p);
      if (key) {
        $('f-' + key).setAttribute('aria-invalid', 'true');
        var e = $('e-' + key);
        e.textContent = e.textContent ? e.textContent + '; ' + p : p;
        if (key && fields.some(function (f) { return f.key === key && isMore(f.key); })) $('g-more').open = true;
      }
    });
    box.appendChild(ul);
    box.hidden = false;
  }
  function isMore(key) {
    var more = boot.form.groups.filter(function (g) { return g.id === 'more'; })[0];
    return more ? more.fields.some(function (f) { return f.key === key; }) : false;
  }
  var checkTimer = null;
  var checkSeq = 0;
  var formProblems = 0;
  function check() {
    var seq = ++checkSeq;
    call('POST', '/api/ui/check', { values: values() }).then(function (r) {
      if (seq !== checkSeq) return;
      if (r.body.command) $('command').textContent = r.body.command;
      if (r.body.yaml) $('yaml').textContent = r.body.yaml;
      formProblems = (r.body.problems || []).length;
      showProblems(r.body.problems || []);
      // fleetload run would refuse it: Start waits until the form is fixed
      $('start').disabled = formProblems > 0;
      $('start').title = formProblems > 0 ? 'fix the problems listed first' : '';
      var w = r.body.warnings || [];
      $('warnings').textContent = w.map(function (x) { return 'note: ' + x; }).join('\\n');
      $('warnings').hidden = w.length === 0;
    }).catch(function () {});
  }
  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(check, 350);
  }
  $('form').addEventListener('input', scheduleCheck);
  $('form').addEventListener('change', scheduleCheck);
  $('form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    clearTimeout(checkTimer);
    $('start').disabled = true;
    call('POST', '/api/ui/start', { values: values() }).then(function (r) {
      if (r.status === 202) {
        showProblems([]);
        $('command').textContent = r.body.command;
        $('yaml').textContent = r.body.yaml;
        render(r.body.run);
        show('live');
      } else if (r.status === 400) {
        if (r.body.command) $('command').textContent = r.body.command;
        if (r.body.yaml) $('yaml').textContent = r.body.yaml;
        formProblems = (r.body.problems || [r.body.error]).length;
        showProblems(r.body.problems || [r.body.error]);
      } else {
        showProblems([r.body.error || ('HTTP ' + r.status)], 'not started:');
      }
    }).catch(function (err) { showProblems([String(err.message || err)], 'not started:'); })
      .then(function () { $('start').disabled = formProblems > 0; });
  });
  Array.prototype.forEach.call(document.querySelectorAll('button.copy'), function (b) {
    b.addEventListener('click', function () {
      var text = $(b.getAttribute('data-copy')).textContent;
      if (navigator.clipboard) navigator.clipboard.writeText(text).catch(function () {});
    });
  });

  // ------------------------------------------------------------------------------------------ the run
  var current = null;
  var framed = null;
  var lastFinished = null;
  function render(run) {
    current = run;
    var going = !!run && run.state !== 'finished';
    var state = run ? run.state : 'idle';
    var pill = $('ui-state');
    pill.setAttribute('data-state', state);
    pill.textContent = run ? (going ? state + ' · ' + run.runId : (run.verdict || 'finished') + ' · ' + run.runId) : 'idle';
    $('stop-run').disabled = !going || run.state === 'stopping';
    $('stop-live').disabled = $('stop-run').disabled;
    if (!run) return;
    var text = 'run ' + run.runId + ' · ' + run.state;
    if (run.state === 'finished') text += ' · ' + (run.verdict || '?') + ' (exit ' + run.exitCode + ')';
    $('run-status').textContent = text;
    $('run-output').textContent = (run.output || []).join('\\n');
    var frame = $('live-frame');
    if (run.live && framed !== run.runId) {
      framed = run.runId;
      frame.src = '/live?run=' + encodeURIComponent(run.runId);
      frame.hidden = false;
      $('live-gone').hidden = true;
    }
    var report = $('run-report');
    if (run.state === 'finished') {
      retireFrame(run);
      if (run.verdict !== 'CRASHED' && run.verdict !== 'INPUT ERROR') {
        report.href = '/results/' + encodeURIComponent(run.runId) + '/report.html';
        report.hidden = false;
      }
      if (lastFinished !== run.runId) {
        lastFinished = run.runId;
        loadHistory();
      }
    } else report.hidden = true;
  }
  /**
   * The run is over and its dashboard with it. A dashboard that got the run's summary shows it and asks nothing
   * more; one that did not (the run crashed, was killed, exited before its summary) would go on asking the gone
   * dashboard and still say "live": it is closed, and the Live tab says why.
   */
  var retired = null;
  function retireFrame(run) {
    if (framed !== run.runId || retired === run.runId) return;
    retired = run.runId;
    setTimeout(function () {
      if (framed !== run.runId) return;
      var frame = $('live-frame');
      var st = null;
      try {
        var d = frame.contentDocument;
        st = d ? d.getElementById('status') : null;
      } catch (e) { st = null; }
      if (st && st.getAttribute('data-state') === 'done') return;
      frame.src = 'about:blank';
      frame.hidden = true;
      var gone = $('live-gone');
      gone.textContent = 'run ' + run.runId + ' ended (' + (run.verdict || '?') + ', exit ' + run.exitCode +
        ') before its dashboard showed a summary; the dashboard went with it. What the run printed is below' +
        (run.verdict !== 'CRASHED' && run.verdict !== 'INPUT ERROR' ? '; its report, if it wrote one, is linked above.' : '.');
      gone.hidden = false;
      $('run-output-box').open = true;
    }, 1500);
  }
  function poll() {
    call('GET', '/api/ui/state').then(function (r) { render(r.body.run); }).catch(function () {
      $('ui-state').textContent = 'ui not answering';
    });
  }
  function stop() {
    call('POST', '/api/ui/stop', {}).then(function (r) {
      if (r.body.run) render(r.body.run);
    });
  }
  $('stop-run').addEventListener('click', stop);
  $('stop-live').addEventListener('click', stop);
  setInterval(poll, 1000);
  poll();

  // ------------------------------------------------------------------------------------------ history
  var runs = [];
  function pick(name) {
    var r = document.querySelector('input[name="' + name + '"]:checked');
    return r ? r.value : null;
  }
  function updateCompare() {
    var a = pick('a'), b = pick('b');
    $('compare').disabled = !a || !b || a === b;
  }
  function fileLink(run, f) {
    var a = el('a', '', f);
    a.href = '/results/' + encodeURIComponent(run.runId) + '/' + f.split('/').map(encodeURIComponent).join('/') + '?download=1';
    a.setAttribute('download', '');
    return a;
  }
  function row(run) {
    var tr = el('tr');
    tr.setAttribute('data-run', run.runId);
    ['a', 'b'].forEach(function (name) {
      var td = el('td');
      var input = el('input');
      input.type = 'radio';
      input.name = name;
      input.value = run.runId;
      input.disabled = run.verdict === 'NO SUMMARY' || run.folder === false;
      input.setAttribute('aria-label', name.toUpperCase() + ': ' + run.runId);
      input.addEventListener('change', updateCompare);
      td.appendChild(input);
      tr.appendChild(td);
    });
    tr.appendChild(el('td', 'id', run.runId));
    tr.appendChild(el('td', '', new Date(run.startedAt).toLocaleString()));
    tr.appendChild(el('td', '', run.scenario));
    var v = el('td');
    v.appendChild(el('span', 'verdict ' + run.verdict.replace(/ /g, '-'), run.verdict));
    if (run.interrupted) v.appendChild(el('span', 'note', ' stopped early'));
    if (run.folder === false) v.appendChild(el('div', 'note', 'no results folder (kept while this ui runs)'));
    if (run.reasons && run.reasons.length > 0) {
      var why = el('ul', 'reasons');
      run.reasons.forEach(function (r) { why.appendChild(el('li', '', r)); });
      v.appendChild(why);
    }
    tr.appendChild(v);
    tr.appendChild(el('td', 'exit', run.exitCode === null ? '–' : run.exitCode));
    var files = el('td', 'files');
    if (run.files.indexOf('report.html') >= 0) {
      var rep = el('a', 'report', 'report');
      rep.href = '/results/' + encodeURIComponent(run.runId) + '/report.html';
      rep.target = '_blank';
      rep.rel = 'noopener';
      files.appendChild(rep);
    }
    var d = el('details');
    d.appendChild(el('summary', '', run.files.length + ' files'));
    run.files.forEach(function (f) { d.appendChild(fileLink(run, f)); });
    files.appendChild(d);
    tr.appendChild(files);
    return tr;
  }
  function loadHistory() {
    call('GET', '/api/ui/runs').then(function (r) {
      var keepA = pick('a'), keepB = pick('b');
      runs = r.body.runs || [];
      var body = document.querySelector('#runs tbody');
      body.textContent = '';
      runs.forEach(function (run) { body.appendChild(row(run)); });
      [['a', keepA], ['b', keepB]].forEach(function (k) {
        if (!k[1]) return;
        var input = document.querySelector('input[name="' + k[0] + '"][value="' + CSS.escape(k[1]) + '"]');
        if (input) input.checked = true;
      });
      $('no-runs').hidden = runs.length > 0;
      updateCompare();
    });
  }
  $('refresh').addEventListener('click', loadHistory);

  function num(v) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  }
  /** a change in percent with its sign, as fleetload compare prints it: +12.5%, -3.10%, 0% */
  function signedPct(v) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    return (v > 0 ? '+' : '') + num(v) + '%';
  }
  function showComparison(c) {
    var box = $('comparison');
    box.textContent = '';
    box.appendChild(el('h3', '', 'B ' + c.b.runId + ' against A ' + c.a.runId));
    var t = el('table');
    var head = el('tr');
    ['figure', 'A', 'B', 'Δ%', 'verdict', 'noise test (n, 95% CI)'].forEach(function (h) { head.appendChild(el('th', '', h)); });
    t.appendChild(head);
    c.figures.forEach(function (f) {
      var tr = el('tr');
      tr.setAttribute('data-figure', f.id);
      tr.appendChild(el('td', '', f.label + (f.unit ? ' (' + f.unit + ')' : '')));
      // counts stay whole numbers
      var fig = function (v) { return f.unit === '' && Number.isInteger(v) ? String(v) : num(v); };
      tr.appendChild(el('td', '', fig(f.a)));
      tr.appendChild(el('td', '', fig(f.b)));
      tr.appendChild(el('td', 'pct', f.new ? 'new' : signedPct(f.diffPct)));
      tr.appendChild(el('td', 'verdict-cell ' + f.verdict.replace(/[^a-z]/g, ''), f.verdict));
      // why the verdict: the samples and intervals it rests on, so "within noise" at +1013% can be read
      tr.appendChild(el('td', 'noise', f.noise));
      t.appendChild(tr);
    });
    box.appendChild(t);
    if (boot.compareRule) box.appendChild(el('p', 'note', boot.compareRule));
    (c.notes || []).forEach(function (n) { box.appendChild(el('p', 'note', 'note: ' + n)); });
    box.hidden = false;
  }
  $('compare').addEventListener('click', function () {
    var a = pick('a'), b = pick('b');
    call('GET', '/api/ui/compare?a=' + encodeURIComponent(a) + '&b=' + encodeURIComponent(b)).then(function (r) {
      if (r.status !== 200) {
        var box = $('comparison');
        box.textContent = r.body.error || ('HTTP ' + r.status);
        box.hidden = false;
        return;
      }
      showComparison(r.body);
    });
  });

  check();
})();
`;
