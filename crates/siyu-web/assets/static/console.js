/* siyu console — progressive enhancement only. Every page is server-rendered and
 * works with JS off; this adds copy buttons, confirmations, inline validation,
 * alert auto-hide and clickable table rows. No dependencies. */
(() => {
  'use strict';

  // Default messages follow the page language so client and server speak alike.
  // zh-CN is the primary locale, so anything that is not English gets Chinese.
  const EN = /^en\b/i.test(document.documentElement.lang || '');
  const MSG = EN
    ? { required: 'This field is required', pattern: 'Invalid format', type: 'Invalid format', maxlength: 'Too long', minlength: 'Too short', copied: 'Copied' }
    : { required: '此项为必填', pattern: '格式不正确', type: '格式不正确', maxlength: '内容过长', minlength: '内容过短', copied: '已复制' };

  /* ---------------------------------------------------------- copy -- */

  // Fallback for http:// origins and older browsers: select the node's text
  // and use the legacy command. On failure the text stays selected so the
  // user can still press Ctrl+C themselves.
  function legacyCopy(node) {
    const range = document.createRange();
    range.selectNodeContents(node);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (_) { /* unsupported */ }
    if (ok) sel.removeAllRanges();
    return ok;
  }

  // Swap the label for a moment, then restore it (repeat clicks just extend it).
  function flashLabel(button, text) {
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = text;
    clearTimeout(button._flashTimer);
    button._flashTimer = setTimeout(() => { button.textContent = button.dataset.label; }, 1600);
  }

  async function copyFrom(button) {
    let target = null;
    try { target = document.querySelector(button.dataset.copy); } catch (_) { /* bad selector */ }
    if (!target) return;
    const text = target.textContent.trim();
    let ok = false;
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(text); ok = true; } catch (_) { /* denied: fall back */ }
    }
    if (!ok) ok = legacyCopy(target);
    if (ok) flashLabel(button, button.dataset.copied || MSG.copied);
  }

  /* ---------------------------------------------------- validation -- */

  const CONTROLS = 'input, select, textarea';
  const edited = new WeakSet(); // fields the user has typed in since page load
  const ours = new WeakSet();   // fields whose error was set by this script
  let errorSeq = 0;

  const enhanced = (form) => !!form && form.noValidate && form.classList.contains('form');
  const fieldOf = (el) => (el && enhanced(el.form) ? el.closest('.field') : null);

  // First problem with one control, or '' when it is fine. Lengths are checked
  // by hand because browsers only flag tooLong/tooShort after user edits, and
  // a server-echoed value can already be out of bounds.
  function problemOf(c) {
    if (!c.willValidate) return '';
    const v = c.validity, d = c.dataset, len = (c.value || '').length;
    if (v.valueMissing) return d.msgRequired || MSG.required;
    if (v.typeMismatch) return d.msgType || MSG.type;
    if (v.patternMismatch) return d.msgPattern || MSG.pattern;
    if (v.tooLong || (c.maxLength >= 0 && len > c.maxLength)) return d.msgMaxlength || MSG.maxlength;
    if (v.tooShort || (c.minLength > 0 && len > 0 && len < c.minLength)) return d.msgMinlength || MSG.minlength;
    return v.valid ? '' : c.validationMessage;
  }

  // Show or clear a field's message. A server-rendered error is kept until the
  // user edits that field: the server may know things we don't (e.g. duplicates).
  function render(field, msg, controls) {
    if (!msg) {
      if (field.classList.contains('has-error') && !edited.has(field) && !ours.has(field)) return;
      field.classList.remove('has-error');
      ours.delete(field);
      return;
    }
    let slot = field.querySelector('.error-text');
    if (!slot) slot = field.appendChild(Object.assign(document.createElement('div'), { className: 'error-text' }));
    if (!slot.id) slot.id = `siyu-err-${++errorSeq}`;
    slot.textContent = msg;
    field.classList.add('has-error');
    ours.add(field);
    for (const c of controls) { // let screen readers announce the message with the control
      const ids = (c.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
      if (!ids.includes(slot.id)) c.setAttribute('aria-describedby', [...ids, slot.id].join(' '));
    }
  }

  // A .field may hold several controls (checkbox groups); its first problem wins.
  function checkField(field) {
    const controls = [...field.querySelectorAll(CONTROLS)];
    let msg = '';
    for (const c of controls) {
      const p = problemOf(c);
      if (p) c.setAttribute('aria-invalid', 'true'); else c.removeAttribute('aria-invalid');
      msg = msg || p;
    }
    render(field, msg, controls);
    return !msg;
  }

  function validateForm(form) {
    const seen = new Set();
    let firstBad = null;
    for (const c of form.querySelectorAll(CONTROLS)) {
      const field = c.closest('.field');
      if (field && !seen.has(field)) { seen.add(field); checkField(field); }
      if (!firstBad && problemOf(c)) firstBad = c;
    }
    if (firstBad) { // centre it so the sticky top bar does not hide it
      firstBad.focus({ preventScroll: true });
      firstBad.scrollIntoView({ block: 'center' });
    }
    return !firstBad;
  }

  /* -------------------------------------------------------- events -- */

  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (enhanced(form) && !validateForm(form)) { e.preventDefault(); return; }
    // Skip the form-level prompt when the clicked button already asked.
    const askedByButton = e.submitter && e.submitter.hasAttribute('data-confirm');
    if (form.dataset.confirm && !askedByButton && !window.confirm(form.dataset.confirm)) e.preventDefault();
  });

  document.addEventListener('input', (e) => {
    const field = fieldOf(e.target);
    if (!field) return;
    edited.add(field);
    if (field.classList.contains('has-error')) checkField(field); // clear (or update) as they fix it
  });

  // Validate on blur only once the user has touched the field: tabbing through
  // a fresh form should not paint it red; submit still checks everything.
  document.addEventListener('focusout', (e) => {
    const field = fieldOf(e.target);
    if (field && edited.has(field)) checkField(field);
  });

  document.addEventListener('click', (e) => {
    const copyBtn = e.target.closest('[data-copy]');
    if (copyBtn) { e.preventDefault(); copyFrom(copyBtn); return; }

    const confirmEl = e.target.closest('a[data-confirm], button[data-confirm], input[type="submit"][data-confirm]');
    if (confirmEl) {
      if (!window.confirm(confirmEl.dataset.confirm)) { e.preventDefault(); e.stopImmediatePropagation(); }
      return;
    }

    const row = e.target.closest('tr[data-href]');
    if (!row || e.target.closest('a, button, input, select, textarea, label, summary')) return;
    if (String(window.getSelection())) return; // the user was selecting text, not navigating
    if (e.metaKey || e.ctrlKey) window.open(row.dataset.href, '_blank', 'noopener');
    else window.location.href = row.dataset.href;
  });

  /* ---------------------------------------------------- auto-hide -- */

  // Flash messages fade after 4 s (or data-autohide="ms"), then leave the layout.
  function autohideAlerts() {
    for (const el of document.querySelectorAll('.alert[data-autohide]')) {
      const delay = Number(el.dataset.autohide) || 4000;
      setTimeout(() => {
        el.classList.add('is-hiding');
        setTimeout(() => el.remove(), 450); // just after the CSS opacity transition
      }, delay);
    }
  }

  /* ----------------------------------------------- segment builder -- */

  // Each condition row shows only the inputs its kind uses; value choices come
  // from the JSON the server embeds. The count is asked of the server (the same
  // parser that saves the segment), debounced, as the operator edits.
  const RANGE = ['rfm_r', 'rfm_f', 'rfm_m', 'orders', 'spend', 'days'];
  const TEXT = ['channel', 'field'];

  function setupBuilder(form) {
    let choices = {};
    try { choices = JSON.parse(document.getElementById('builder-choices').textContent); } catch (_) { /* none */ }
    const show = (el, on) => { el.hidden = !on; el.disabled = !on; };
    const syncRow = (row) => {
      const kind = row.querySelector('[data-kind]').value;
      const choice = row.querySelector('[data-part="choice"]');
      const opts = TEXT.includes(kind) || RANGE.includes(kind) ? null : choices[kind];
      if (opts && choice.dataset.kind !== kind) {
        const current = choice.dataset.current;
        choice.replaceChildren(...opts.map((o) => {
          const op = document.createElement('option');
          op.value = o.value; op.textContent = o.label; op.selected = String(o.value) === current;
          return op;
        }));
        choice.dataset.kind = kind;
      }
      show(choice, !!opts && !!kind);
      show(row.querySelector('[data-part="key"]'), kind === 'field');
      show(row.querySelector('[data-part="text"]'), TEXT.includes(kind));
      for (const r of row.querySelectorAll('[data-part="range"]')) show(r, RANGE.includes(kind));
    };
    const syncMode = () => {
      const mode = (form.querySelector('input[name="mode"]:checked') || {}).value || 'rows';
      for (const el of form.querySelectorAll('[data-mode]')) el.hidden = el.dataset.mode !== mode;
    };
    const out = document.getElementById('live-count');
    let timer = null;
    let seq = 0;
    const count = async () => {
      const mine = ++seq;
      const body = new URLSearchParams(new FormData(form));
      try {
        const r = await fetch(form.dataset.countUrl, { method: 'POST', body, credentials: 'same-origin' });
        const v = await r.json();
        if (mine !== seq) return; // a newer request is on its way
        out.textContent = v.label || v.error || '';
        out.classList.toggle('is-error', !r.ok);
      } catch (_) { /* offline: keep the last figure */ }
    };
    const later = () => { clearTimeout(timer); timer = setTimeout(count, 300); };
    for (const row of form.querySelectorAll('.builder-row')) syncRow(row);
    syncMode();
    form.addEventListener('change', (e) => {
      const row = e.target.closest('.builder-row');
      if (row && e.target.matches('[data-kind]')) syncRow(row);
      if (e.target.name === 'mode') syncMode();
      later();
    });
    form.addEventListener('input', later);
    const btn = form.querySelector('[data-live-count]');
    if (btn) btn.addEventListener('click', (e) => { e.preventDefault(); count(); });
    count();
  }

  function init() {
    autohideAlerts();
    const builder = document.getElementById('segment-form');
    if (builder) setupBuilder(builder);
  }

  // Works whether the script is loaded in <head> or at the end of <body>.
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
