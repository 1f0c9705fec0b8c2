"""The chat page's own look and script: the CSS and the ``<head>`` script given to Gradio.

Static text only, no untrusted data: used by :func:`rag.ui.app.launch_app`.
"""

from __future__ import annotations

__all__ = ["APP_CSS", "APP_HEAD"]

APP_CSS = """
.gradio-container { max-width: 1400px !important; }
#rag-header h1 { font-size: 1.5rem; margin: 0 0 .15rem 0; }
#rag-header p { margin: 0; color: var(--body-text-color-subdued); }
#rag-header .rag-corpus { margin-top: .35rem; }
.rag-answer { line-height: 1.55; }
a.rag-cite { display: inline-block; min-width: 1.4em; padding: 0 .3em; margin: 0 .1em;
  border-radius: .6em; background: #dbeafe; color: #1e40af !important; font-size: .8em;
  font-weight: 600; text-decoration: none !important; text-align: center; line-height: 1.45;
  vertical-align: .15em; }
a.rag-cite:hover { background: #1e40af; color: #fff !important; }
.rag-cursor { animation: rag-blink 1s steps(2) infinite; color: #64748b; }
@keyframes rag-blink { 50% { opacity: 0; } }
.rag-refusal { background: #fffbeb; border: 1px solid #fcd34d; border-left: 4px solid #f59e0b;
  color: #78350f; border-radius: 8px; padding: .6rem .8rem; }
.rag-refusal-head { font-weight: 700; margin-bottom: .25rem; }
.rag-refusal-note { font-size: .85em; margin-top: .35rem; color: #92400e; }
.rag-error { background: #fef2f2; border: 1px solid #fecaca; border-left: 4px solid #dc2626;
  color: #7f1d1d; border-radius: 8px; padding: .6rem .8rem; }
.rag-error-head { font-weight: 700; margin-bottom: .25rem; }
.rag-error-hint { font-size: .85em; margin-top: .3rem; }
.rag-tools { margin-top: .4rem; }
button.rag-copy { font-size: .78em; padding: .1rem .55rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-primary);
  color: var(--body-text-color-subdued); }
button.rag-copy:hover { color: var(--body-text-color); }
.rag-copy-text { display: none !important; }
details.rag-trace { margin-top: .5rem; font-size: .85em;
  border-top: 1px dashed var(--border-color-primary); padding-top: .35rem; }
details.rag-trace summary { cursor: pointer; color: var(--body-text-color-subdued); }
.rag-trace-row { margin: .3rem 0; }
table.rag-trace-table { border-collapse: collapse; margin: .35rem 0; font-size: .95em;
  width: 100%; }
table.rag-trace-table th, table.rag-trace-table td { border: 1px solid var(--border-color-primary);
  padding: .15rem .4rem; text-align: left; }
table.rag-trace-table th, table.rag-trace-table td:not(:nth-child(2)) { white-space: nowrap; }
#rag-sources { max-height: 680px !important; overflow-y: auto !important; padding-right: .3rem; }
#corpus-stats { text-align: right; align-self: center; }
.rag-sources-title { font-weight: 700; font-size: 1.05rem; }
.rag-sources-q { color: var(--body-text-color-subdued); font-size: .9em; margin-bottom: .2rem; }
.rag-sources-note { font-size: .8em; color: var(--body-text-color-subdued);
  margin-bottom: .5rem; }
.rag-sources-refused .rag-sources-title { color: #b45309; }
.rag-sources-refused .rag-card { border-color: #fcd34d; background: #fffdf5; }
.rag-card { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: .55rem .7rem; margin-bottom: .6rem; background: var(--background-fill-primary);
  transition: box-shadow .3s; }
.rag-card.rag-cited { border-left: 4px solid #3b82f6; }
.rag-card-head { display: flex; gap: .5rem; align-items: baseline; font-weight: 600; }
.rag-num { flex: none; display: inline-block; min-width: 1.5em; text-align: center;
  border-radius: .7em; background: #dbeafe; color: #1e40af; font-size: .8em; padding: 0 .3em; }
.rag-card-title { color: inherit; }
a.rag-card-title { color: #1d4ed8; text-decoration: underline; text-underline-offset: 2px; }
.rag-card-meta { font-size: .8em; color: var(--body-text-color-subdued);
  margin: .1rem 0 .35rem 2rem; }
.rag-passage { font-size: .86em; line-height: 1.5; white-space: pre-wrap; max-height: 16rem;
  overflow-y: auto; color: var(--body-text-color); }
mark.rag-quote { background: #fef08a; color: inherit; padding: 0 .1em; border-radius: 3px; }
.rag-flash { box-shadow: 0 0 0 3px #60a5fa; }
details.rag-uncited summary { cursor: pointer; font-size: .85em;
  color: var(--body-text-color-subdued); margin-bottom: .5rem; }
.rag-corpus { font-size: .9em; }
.rag-corpus-error { color: #b91c1c; }
.rag-upload { font-size: .85em; }
.rag-upload-errors { color: #b91c1c; margin: .3rem 0 0 1rem; }
.rag-upload progress { width: 100%; }
"""

# Our own script (no untrusted data in it): [n] markers scroll to their source card (after the
# panel switched to that answer), "Copy answer" buttons copy the hidden text beside them.
APP_HEAD = """
<script>
(function () {
  function flash(el) {
    el.classList.add('rag-flash');
    setTimeout(function () { el.classList.remove('rag-flash'); }, 1600);
  }
  function copyText(text, button) {
    var done = function () { var old = button.textContent; button.textContent = 'Copied ✓';
      setTimeout(function () { button.textContent = old; }, 1500); };
    var fallback = function () { var ta = document.createElement('textarea'); ta.value = text;
      ta.style.position = 'fixed'; ta.style.opacity = '0'; document.body.appendChild(ta);
      ta.select();
      try { document.execCommand('copy'); } catch (e) {} ta.remove(); done(); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else { fallback(); }
  }
  document.addEventListener('click', function (ev) {
    var target = ev.target; if (!target || !target.closest) { return; }
    var cite = target.closest('a.rag-cite');
    if (cite) {
      ev.preventDefault();
      var id = (cite.getAttribute('href') || '').slice(1); var tries = 0;
      (function go() {
        var el = document.getElementById(id);
        if (el) { var d = el.closest('details'); if (d) { d.open = true; }
          el.scrollIntoView({behavior: 'smooth', block: 'nearest'}); flash(el); }
        else if (tries++ < 30) { setTimeout(go, 100); }
      })();
      return;
    }
    var button = target.closest('button.rag-copy');
    if (button) {
      ev.preventDefault();
      var holder = button.parentElement && button.parentElement.querySelector('.rag-copy-text');
      copyText(holder ? holder.textContent : '', button);
    }
  }, true);
})();
</script>
"""
