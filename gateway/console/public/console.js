// The auditor console: plain DOM, no framework, no build step. Every value from the server is set
// as text (never as HTML), so nothing in the audit log can run script here.

const I18N = {
  vi: {
    brand: 'Nhật ký truy cập dữ liệu', brandSub: 'Cổng trao đổi dữ liệu liên thông', navEntries: 'Nhật ký', navActivity: 'Biểu đồ',
    navUsage: 'Báo cáo sử dụng', signOut: 'Đăng xuất', signInTitle: 'Đăng nhập', signInHelp: 'Dành cho thanh tra, kiểm toán viên được cấp tài khoản.',
    username: 'Tên đăng nhập', password: 'Mật khẩu', signIn: 'Đăng nhập', subject: 'Số định danh công dân', client: 'Cơ quan (client id)',
    service: 'Dịch vụ', purpose: 'Mục đích', caseId: 'Mã hồ sơ', outcome: 'Kết quả', any: 'Tất cả', released: 'Đã cung cấp', denied: 'Từ chối',
    failed: 'Lỗi', from: 'Từ ngày', to: 'Đến ngày', search: 'Tìm kiếm', reset: 'Xóa lọc', exportNdjson: 'Xuất NDJSON', exportCsv: 'Xuất CSV',
    time: 'Thời gian', agency: 'Cơ quan', subjects: 'Chủ thể', noEntries: 'Không có bản ghi phù hợp.', older: 'Cũ hơn →', back: '← Quay lại nhật ký',
    entryTitle: 'Bản ghi', upstreams: 'Hệ thống nguồn đã gọi', operation: 'Thao tác', latency: 'Thời gian (ms)', reference: 'Số tham chiếu',
    activityTitle: 'Lượt truy cập theo ngày', groupBy: 'Nhóm theo', byAgency: 'Cơ quan', byOutcome: 'Kết quả', days: 'Số ngày',
    tzNote: 'Ngày tính theo giờ Việt Nam (UTC+7).', usageTitle: 'Báo cáo sử dụng theo cơ quan, dịch vụ, tháng', downloadCsv: 'Tải CSV',
    usageHelp: 'Mỗi lượt cung cấp dữ liệu thay cho giấy tờ công dân lẽ ra phải nộp (theo danh mục giấy tờ được thay thế của từng hợp đồng dịch vụ).',
    month: 'Tháng', calls: 'Lượt', documents: 'Giấy tờ được thay thế', documentsReplaced: 'Số giấy tờ',
    chainOk: (r) => `✓ Chuỗi nhật ký toàn vẹn: đã kiểm tra đến seq ${r.verifiedUpTo}` + (r.lastCheckpoint ? ` · điểm kiểm tra ký số gần nhất seq ${r.lastCheckpoint.seq} lúc ${fmtTime(r.lastCheckpoint.time)}` : ' · chưa có điểm kiểm tra ký số'),
    chainAlarm: (r) => `⚠ CẢNH BÁO: chuỗi nhật ký bị thay đổi tại seq ${r.firstBadSeq} (${r.problem}); toàn vẹn đến seq ${r.verifiedUpTo}`,
    checking: 'Đang kiểm tra chuỗi nhật ký…', recheck: 'Kiểm tra lại', wrongLogin: 'Sai tên đăng nhập hoặc mật khẩu.',
    tooMany: 'Quá nhiều lần thử. Vui lòng đợi một phút.', hashOk: '✓ Mã băm khớp nội dung', hashBad: '✗ Mã băm KHÔNG khớp nội dung',
    prefills: 'Lượt điền sẵn biểu mẫu', verifications: 'Lượt xác minh giấy chứng nhận', allCalls: 'Tổng lượt cung cấp', docsSaved: 'Giấy tờ công dân không phải nộp',
    userId: 'Cán bộ', status: 'Mã HTTP', errorCode: 'Mã lỗi', fields: 'Nhóm dữ liệu đã cung cấp', version: 'Phiên bản', legalBasis: 'Căn cứ pháp lý',
    requestSha256: 'SHA-256 yêu cầu', responseSha256: 'SHA-256 phản hồi', prevHash: 'Mã băm trước', hash: 'Mã băm', id: 'Mã yêu cầu', latencyMs: 'Thời gian xử lý (ms)',
    noData: 'Chưa có dữ liệu.', error: 'Lỗi',
    navArchives: 'Lưu trữ', archivesTitle: 'Phân đoạn lưu trữ đã niêm phong', range: 'Khoảng seq', archivedEntries: 'Số bản ghi',
    sealedAt: 'Niêm phong lúc', file: 'Tệp', stamped: 'Dấu thời gian', notStamped: 'chỉ chữ ký số của cổng', missing: 'THIẾU TỆP',
    noArchives: 'Chưa có phân đoạn lưu trữ.',
    archivesSummary: (r) => (r.retention.hotDays ? `Bản ghi cũ hơn ${r.retention.hotDays} ngày được niêm phong vào phân đoạn lưu trữ.` : 'Chưa bật lưu trữ (audit.retention.hotDays).') + (r.hot.firstSeq ? ` Kho đang dùng bắt đầu từ seq ${r.hot.firstSeq}.` : ''),
    actingFor: 'Thay mặt cơ quan', remoteHop: (u) => `↳ qua cổng ${u.gateway} · mã yêu cầu tại đó ${u.remoteRequestId ?? '—'} · SHA-256 phản hồi đã ký ${u.answerSha256 ?? '—'}`,
  },
  en: {
    brand: 'Data access log', brandSub: 'Interagency data-sharing gateway', navEntries: 'Entries', navActivity: 'Activity', navUsage: 'Usage report',
    signOut: 'Sign out', signInTitle: 'Sign in', signInHelp: 'For inspectors and auditors with a console account.', username: 'Username',
    password: 'Password', signIn: 'Sign in', subject: 'Citizen personal id', client: 'Agency (client id)', service: 'Service', purpose: 'Purpose',
    caseId: 'Case id', outcome: 'Outcome', any: 'Any', released: 'Released', denied: 'Denied', failed: 'Failed', from: 'From', to: 'To',
    search: 'Search', reset: 'Reset', exportNdjson: 'Export NDJSON', exportCsv: 'Export CSV', time: 'Time', agency: 'Agency', subjects: 'Subjects',
    noEntries: 'No matching entries.', older: 'Older →', back: '← Back to entries', entryTitle: 'Entry', upstreams: 'Source systems called',
    operation: 'Operation', latency: 'Latency (ms)', reference: 'Reference', activityTitle: 'Accesses per day', groupBy: 'Group by',
    byAgency: 'Agency', byOutcome: 'Outcome', days: 'Days', tzNote: 'Days in Viet Nam time (UTC+7).',
    usageTitle: 'Usage per agency, service and month', downloadCsv: 'Download CSV',
    usageHelp: 'Each released answer replaces paper documents the citizen would otherwise have carried (the documents listed by each service contract).',
    month: 'Month', calls: 'Calls', documents: 'Documents replaced per call', documentsReplaced: 'Documents replaced',
    chainOk: (r) => `✓ Audit chain intact: verified up to seq ${r.verifiedUpTo}` + (r.lastCheckpoint ? ` · last signed checkpoint seq ${r.lastCheckpoint.seq} at ${fmtTime(r.lastCheckpoint.time)}` : ' · no signed checkpoint yet'),
    chainAlarm: (r) => `⚠ ALARM: audit chain altered at seq ${r.firstBadSeq} (${r.problem}); intact up to seq ${r.verifiedUpTo}`,
    checking: 'Checking the audit chain…', recheck: 'Re-check', wrongLogin: 'Wrong username or password.',
    tooMany: 'Too many attempts. Wait a minute.', hashOk: '✓ Hash matches the content', hashBad: '✗ Hash does NOT match the content',
    prefills: 'Form prefills', verifications: 'Title verifications', allCalls: 'Released calls', docsSaved: 'Documents citizens did not carry',
    userId: 'Officer', status: 'HTTP status', errorCode: 'Error code', fields: 'Released field groups', version: 'Version', legalBasis: 'Legal basis',
    requestSha256: 'Request SHA-256', responseSha256: 'Response SHA-256', prevHash: 'Previous hash', hash: 'Hash', id: 'Request id', latencyMs: 'Latency (ms)',
    noData: 'No data yet.', error: 'Error',
    navArchives: 'Archives', archivesTitle: 'Sealed archive segments', range: 'Seq range', archivedEntries: 'Entries',
    sealedAt: 'Sealed at', file: 'File', stamped: 'Time-stamp', notStamped: 'gateway signature only', missing: 'FILE MISSING',
    noArchives: 'No archive segment yet.',
    archivesSummary: (r) => (r.retention.hotDays ? `Entries older than ${r.retention.hotDays} days are sealed into archive segments.` : 'Retention is off (audit.retention.hotDays).') + (r.hot.firstSeq ? ` The hot store starts at seq ${r.hot.firstSeq}.` : ''),
    actingFor: 'On behalf of', remoteHop: (u) => `↳ via gateway ${u.gateway} · its request id ${u.remoteRequestId ?? '—'} · SHA-256 of its signed answer ${u.answerSha256 ?? '—'}`,
  },
};

const COLORS = ['#1f5fa8', '#b3261e', '#1e7b45', '#8a5a00', '#6a3fa0', '#0f7c86', '#a0456e', '#4f5b66'];
const OUTCOME_COLORS = { released: '#1e7b45', denied: '#d08a00', failed: '#b3261e' };

let lang = localStorage.getItem('console-lang') || (navigator.language.toLowerCase().startsWith('vi') ? 'vi' : 'en');
const t = (key, ...args) => {
  const v = I18N[lang][key] ?? key;
  return typeof v === 'function' ? v(...args) : v;
};
const $ = (sel) => document.querySelector(sel);
const fmtTime = (iso) => new Date(iso).toLocaleString(lang === 'vi' ? 'vi-VN' : 'en-GB', { timeZone: 'Asia/Ho_Chi_Minh', dateStyle: 'short', timeStyle: 'medium' });

/** Builds an element; children are nodes or text, never HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

class Unauthenticated extends Error {}

async function api(path, options = {}) {
  const res = await fetch(`/console/api/${path}`, { credentials: 'same-origin', ...options });
  if (res.status === 401 && !path.startsWith('login')) throw new Unauthenticated();
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw Object.assign(new Error(body?.title ?? res.statusText), { status: res.status, code: body?.code, detail: body?.detail });
  return body;
}

const postJson = (path, value) => api(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value) });

function applyLanguage() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('#lang').textContent = lang === 'vi' ? 'EN' : 'VI';
}

function show(view) {
  for (const el of document.querySelectorAll('main > section')) el.hidden = el.id !== `view-${view}`;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === view || (view === 'entry' && a.dataset.view === 'entries'));
}

function showSignIn() {
  $('#nav').hidden = true;
  $('#who').hidden = true;
  $('#sign-out').hidden = true;
  $('#chain-status').hidden = true;
  show('login');
  $('#username').focus();
}

// ---- chain status -------------------------------------------------------------------------

async function renderChain() {
  const bar = $('#chain-status');
  bar.hidden = false;
  bar.className = 'chain checking';
  bar.replaceChildren(t('checking'));
  const report = await api('chain');
  bar.className = report.ok ? 'chain ok' : 'chain alarm';
  bar.setAttribute('role', report.ok ? 'status' : 'alert');
  bar.dataset.ok = String(report.ok);
  bar.dataset.firstBadSeq = report.firstBadSeq ?? '';
  bar.replaceChildren(
    h('span', { id: report.ok ? 'chain-ok' : 'chain-alarm' }, report.ok ? t('chainOk', report) : t('chainAlarm', report)),
    h('span', { class: 'spacer' }),
    h('button', { type: 'button', onclick: () => guard(renderChain) }, t('recheck')),
  );
}

// ---- entries ------------------------------------------------------------------------------

let nextCursor = null;

/** The filter form as query parameters; dates are whole days in Viet Nam time, `to` inclusive. */
function filterParams() {
  const form = new FormData($('#filters'));
  const p = new URLSearchParams();
  for (const k of ['subject', 'client', 'service', 'purpose', 'caseId', 'outcome']) {
    const v = String(form.get(k) ?? '').trim();
    if (v) p.set(k, v);
  }
  const from = form.get('from');
  const to = form.get('to');
  if (from) p.set('from', `${from}T00:00:00+07:00`);
  if (to) p.set('to', new Date(Date.parse(`${to}T00:00:00+07:00`) + 86_400_000).toISOString());
  return p;
}

function updateExportLinks() {
  const p = filterParams();
  for (const format of ['ndjson', 'csv']) {
    const q = new URLSearchParams(p);
    q.set('format', format);
    $(`#export-${format}`).href = `/console/api/export?${q}`;
  }
}

const short = (hex) => (hex ? `${hex.slice(0, 10)}…` : '');
const badge = (outcome) => h('span', { class: `badge ${outcome}` }, t(outcome));

function entryRow(e) {
  return h('tr', { 'data-seq': e.seq, 'data-id': e.id, onclick: () => { location.hash = `#/entry/${e.id}`; } },
    h('td', { class: 'num' }, e.seq),
    h('td', {}, fmtTime(e.time)),
    h('td', { title: e.client }, e.clientName),
    h('td', { class: 'mono' }, e.service),
    h('td', { class: 'mono' }, e.purpose ?? '—'),
    h('td', { class: 'mono' }, e.caseId ?? '—'),
    h('td', { class: 'mono', title: e.subjects.join('\n') }, e.subjects.map(short).join(', ') || '—'),
    h('td', {}, badge(e.outcome)),
  );
}

async function loadEntries(append = false) {
  const p = filterParams();
  if (append && nextCursor) p.set('cursor', nextCursor);
  p.set('limit', '50');
  let page;
  try {
    page = await api(`entries?${p}`);
  } catch (e) {
    if (e instanceof Unauthenticated) throw e;
    $('#entries').replaceChildren(h('tr', {}, h('td', { colspan: 8, class: 'error' }, `${t('error')}: ${e.message}${e.detail ? ` (${e.detail})` : ''}`)));
    return;
  }
  const rows = page.entries.map(entryRow);
  if (append) $('#entries').append(...rows);
  else $('#entries').replaceChildren(...rows);
  nextCursor = page.nextCursor;
  $('#older').hidden = !nextCursor;
  $('#entries-empty').hidden = $('#entries').children.length > 0;
  updateExportLinks();
}

// ---- one entry ----------------------------------------------------------------------------

async function loadEntry(id) {
  const { entry, clientName, actingForName, hashOk, purpose } = await api(`entries/${encodeURIComponent(id)}`);
  $('#entry-seq').textContent = `#${entry.seq}`;
  const hashBadge = $('#entry-hash');
  hashBadge.className = `badge ${hashOk ? 'ok' : 'bad'}`;
  hashBadge.textContent = hashOk ? t('hashOk') : t('hashBad');
  const rows = [
    ['id', h('span', { class: 'mono' }, entry.id)],
    ['time', `${fmtTime(entry.time)} (${entry.time})`],
    ['agency', `${clientName} (${entry.client})`],
    // A gateway's request on an agency's behalf (federation) names that agency too.
    ...(entry.actingFor === undefined ? [] : [['actingFor', `${actingForName ?? entry.actingFor} (${entry.actingFor})`]]),
    ['userId', entry.userId ?? '—'],
    ['service', h('span', { class: 'mono' }, `${entry.service}${entry.version ? ` v${entry.version}` : ''}`)],
    ['purpose', purpose ? purpose.code : '—'],
    ['legalBasis', purpose?.legalBasis ?? '—'],
    ['caseId', entry.caseId ?? '—'],
    ['subjects', h('span', { class: 'mono' }, entry.subjects.join(' ') || '—')],
    ['fields', entry.fields.join(', ') || '—'],
    ['outcome', badge(entry.outcome)],
    ['status', String(entry.status)],
    ['errorCode', entry.errorCode ?? '—'],
    ['latencyMs', String(entry.latencyMs)],
    ['requestSha256', h('span', { class: 'mono' }, entry.requestSha256)],
    ['responseSha256', h('span', { class: 'mono' }, entry.responseSha256 ?? '—')],
    ['prevHash', h('span', { class: 'mono' }, entry.prevHash)],
    ['hash', h('span', { class: 'mono' }, entry.hash)],
  ];
  $('#entry-fields').replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, t(k)), h('dd', { 'data-field': k }, v)]));
  $('#entry-upstreams').replaceChildren(...entry.upstreams.flatMap((u) => [h('tr', {},
    h('td', {}, u.agency), h('td', { class: 'mono' }, u.operation), h('td', {}, u.outcome + (u.errorCode ? ` (${u.errorCode})` : '')),
    h('td', { class: 'num' }, u.latencyMs), h('td', { class: 'mono' }, u.reference ?? '—')),
    // A hop to another gateway: which one, its request id and the hash of its signed answer (the chain of custody).
    ...(u.gateway ? [h('tr', { class: 'remote-hop', 'data-gateway': u.gateway }, h('td', { class: 'mono', colspan: '5' }, t('remoteHop', u)))] : [])]));
}

// ---- activity chart -----------------------------------------------------------------------

/** A stacked bar per day, drawn as inline SVG. */
function drawChart(report, by) {
  const series = by === 'outcome'
    ? report.byOutcome.map((o) => ({ label: t(o.outcome), color: OUTCOME_COLORS[o.outcome], counts: o.counts }))
    : report.byClient.map((c, i) => ({ label: c.name, color: COLORS[i % COLORS.length], counts: c.counts }));
  const days = report.days;
  const totals = days.map((_, i) => series.reduce((n, sr) => n + sr.counts[i], 0));
  const max = Math.max(1, ...totals);
  const step = niceStep(max);
  const top = Math.ceil(max / step) * step;
  const W = Math.max(480, $('#chart').clientWidth || 900), H = 300, left = 44, bottom = 40, plotH = H - bottom - 12;
  const bw = (W - left - 10) / days.length;
  // Every day gets a bar; labels only as often as about 44 px of width allows.
  const labelEvery = Math.max(1, Math.ceil(44 / bw));
  const svg = s('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': t('activityTitle') });
  for (let v = 0; v <= top; v += step) {
    const y = 12 + plotH - (v / top) * plotH;
    svg.append(s('line', { x1: left, x2: W - 10, y1: y, y2: y, stroke: '#dde3ea' }), s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' }, String(v)));
  }
  days.forEach((day, i) => {
    let y = 12 + plotH;
    const x = left + i * bw + 3;
    for (const sr of series) {
      const n = sr.counts[i];
      if (!n) continue;
      const hgt = (n / top) * plotH;
      y -= hgt;
      const rect = s('rect', { x, y, width: Math.max(2, bw - 6), height: hgt, fill: sr.color, rx: 2 });
      rect.append(s('title', {}, `${day} · ${sr.label}: ${n}`));
      svg.append(rect);
    }
    if ((days.length - 1 - i) % labelEvery === 0) {
      svg.append(s('text', { x: x + (bw - 6) / 2, y: H - bottom + 16, 'text-anchor': 'middle' }, day.slice(5)));
    }
  });
  $('#chart').replaceChildren(totals.some(Boolean) ? svg : h('p', { class: 'muted' }, t('noData')));
  $('#legend').replaceChildren(...series.map((sr) => {
    const swatch = h('i');
    swatch.style.background = sr.color;
    return h('li', {}, swatch, `${sr.label} (${sr.counts.reduce((a, b) => a + b, 0)})`);
  }));
}

function niceStep(max) {
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(Math.max(1, raw)));
  return [1, 2, 5, 10].map((m) => m * mag).find((v) => v >= raw) ?? mag * 10;
}

let activity = null;
async function loadActivity() {
  activity = await api(`activity?days=${$('#activity-days').value}`);
  drawChart(activity, $('#activity-by').value);
}

// ---- usage report -------------------------------------------------------------------------

async function loadUsage() {
  const report = await api('usage');
  const stat = (value, label) => h('div', { class: 'stat' }, h('b', {}, value.toLocaleString(lang === 'vi' ? 'vi-VN' : 'en-GB')), h('span', {}, label));
  $('#usage-totals').replaceChildren(
    stat(report.totals.prefills, t('prefills')), stat(report.totals.verifications, t('verifications')),
    stat(report.totals.calls, t('allCalls')), stat(report.totals.documentsReplaced, t('docsSaved')),
  );
  $('#usage-rows').replaceChildren(...(report.rows.length ? report.rows.map((r) => h('tr', {},
    h('td', {}, r.month), h('td', { title: r.client }, r.agency), h('td', { class: 'mono' }, r.service), h('td', { class: 'num' }, r.calls),
    h('td', {}, r.documentsPerCall.join('; ') || '—'), h('td', { class: 'num' }, r.documentsReplaced),
  )) : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, t('noData')))]));
}

// ---- archives -----------------------------------------------------------------------------

async function loadArchives() {
  const report = await api('archives');
  $('#archives-summary').textContent = t('archivesSummary', report);
  $('#archives-rows').replaceChildren(...(report.segments.length ? report.segments.map((s) => h('tr', { 'data-first-seq': s.firstSeq },
    h('td', { class: 'num' }, `${s.firstSeq}–${s.lastSeq}`), h('td', { class: 'num' }, s.entries), h('td', {}, fmtTime(s.sealedAt)),
    h('td', { class: 'mono', title: s.fileSha256 }, s.present ? s.file : `${s.file} (${t('missing')})`),
    h('td', {}, s.timestamp ? `${s.timestamp.tsa} · ${fmtTime(s.timestamp.genTime)}` : t('notStamped')),
  )) : [h('tr', {}, h('td', { colspan: 5, class: 'muted' }, t('noArchives')))]));
}

// ---- routing and session ------------------------------------------------------------------

/** Runs a step; a lost session brings back the sign-in form. */
async function guard(step) {
  try {
    await step();
  } catch (e) {
    if (e instanceof Unauthenticated) return showSignIn();
    throw e;
  }
}

async function route() {
  const [, view = 'entries', id] = location.hash.match(/^#\/([a-z]+)(?:\/(.+))?$/) ?? [];
  if (view === 'entry' && id) {
    show('entry');
    await loadEntry(decodeURIComponent(id));
  } else if (view === 'activity') {
    show('activity');
    await loadActivity();
  } else if (view === 'usage') {
    show('usage');
    await loadUsage();
  } else if (view === 'archives') {
    show('archives');
    await loadArchives();
  } else {
    show('entries');
    await loadEntries();
  }
}

function signedIn(session) {
  $('#nav').hidden = false;
  $('#who').hidden = false;
  $('#who').textContent = session.displayName;
  $('#sign-out').hidden = false;
}

async function start() {
  applyLanguage();
  $('#lang').addEventListener('click', () => {
    lang = lang === 'vi' ? 'en' : 'vi';
    localStorage.setItem('console-lang', lang);
    applyLanguage();
    void guard(async () => { await renderChain(); await route(); });
  });
  $('#login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = $('#login-error');
    err.hidden = true;
    try {
      const session = await postJson('login', { username: $('#username').value, password: $('#password').value });
      $('#password').value = '';
      signedIn(session);
      await guard(async () => { await renderChain(); await route(); });
    } catch (e) {
      err.textContent = e.status === 429 ? t('tooMany') : e.status === 401 ? t('wrongLogin') : `${t('error')}: ${e.message}`;
      err.hidden = false;
    }
  });
  $('#sign-out').addEventListener('click', async () => {
    await postJson('logout', {}).catch(() => {});
    showSignIn();
  });
  $('#filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (location.hash.startsWith('#/entries') || !location.hash) void guard(() => loadEntries());
    else location.hash = '#/entries';
  });
  $('#filters').addEventListener('reset', () => setTimeout(() => void guard(() => loadEntries())));
  $('#filters').addEventListener('input', updateExportLinks);
  $('#older').addEventListener('click', () => void guard(() => loadEntries(true)));
  $('#activity-by').addEventListener('change', () => activity && drawChart(activity, $('#activity-by').value));
  $('#activity-days').addEventListener('change', () => void guard(loadActivity));
  window.addEventListener('hashchange', () => void guard(route));

  try {
    signedIn(await api('session'));
  } catch (e) {
    if (e instanceof Unauthenticated) return showSignIn();
    throw e;
  }
  await guard(async () => { await renderChain(); await route(); });
}

void start();
