// Kiln console: log in, then every 2 s read the server, the catalog, the live streams (details and stats)
// and the tasks through the REST API, and render them; the journal timeline polls on its own.

import { ApiError, appPath, call, session, streamPath } from './api.js';
import { chart, forget, latest, sample } from './chart.js';
import { bits, bytes, duration, h, replaceChildren } from './dom.js';
import { latency, play, playlistUrl, stop as stopPreview } from './preview.js';
import { Timeline } from './timeline.js';

const REFRESH_MS = 2000;
// publishers whose sessions are people watching (not pushes, recordings or thumbnails)
const PLAYER_CONNECTIONS = ['llhls', 'hls', 'hlsv3', 'dash', 'lldash', 'webrtc', 'srt', 'ovt'];

const $ = (id) => document.getElementById(id);
const state = { status: null, apps: [], streams: [], tasks: [], previewKey: null, timer: null };
let timeline = null;

// -- login ------------------------------------------------------------------------------------------
async function tryLogin(token) {
  const status = await call('GET', '/status', undefined, token);
  session.set(token);
  return status;
}

function showLogin(message = '') {
  stopRefreshing();
  $('main-view').hidden = true;
  $('logout').hidden = true;
  $('login-view').hidden = false;
  $('server-line').textContent = '';
  $('login-error').textContent = message;
  $('token').focus();
}

function showMain(status) {
  $('login-view').hidden = true;
  $('main-view').hidden = false;
  $('logout').hidden = false;
  state.status = status;
  if (!timeline) {
    timeline = new Timeline($('journal-filters'), $('timeline'), $('journal-count'), $('journal-error'),
      $('journal-types'));
  }
  timeline.start();
  refresh();
}

function stopRefreshing() {
  clearTimeout(state.timer);
  state.timer = null;
  if (timeline) timeline.stop();
  stopPreview($('preview-video'));
  state.previewKey = null;
  $('preview').hidden = true;
}

// -- reading the server -----------------------------------------------------------------------------
async function readStreams(vhost, app) {
  const names = await call('GET', `${appPath(vhost, app)}/streams`);
  return Promise.all((names || []).map(async (name) => {
    const [detail, stats] = await Promise.all([
      call('GET', streamPath(vhost, app, name)).catch(() => null),
      call('GET', `/stats/current/vhosts/${encodeURIComponent(vhost)}/apps/${encodeURIComponent(app)}` +
        `/streams/${encodeURIComponent(name)}`).catch(() => null),
    ]);
    return { vhost, app, name, key: `${vhost}/${app}/${name}`, detail, stats };
  }));
}

async function readTasks(vhost, app, streams) {
  const base = appPath(vhost, app);
  const [pushes, records] = await Promise.all([call('POST', `${base}:pushes`, {}), call('POST', `${base}:records`, {})]);
  const tasks = [
    ...(pushes || []).map((p) => ({ kind: 'push', vhost, app, ...p })),
    ...(records || []).map((r) => ({ kind: 'record', vhost, app, ...r })),
  ];
  for (const s of streams) {
    for (const out of (s.detail && s.detail.outputs) || []) {
      const dumps = await call('POST', `${streamPath(vhost, app, s.name)}:hlsDumps`, { outputStreamName: out.name })
        .catch(() => []);
      tasks.push(...(dumps || []).map((d) => ({ kind: 'dump', vhost, app, stream: { name: s.name }, ...d })));
    }
  }
  return tasks;
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    const status = await call('GET', '/status');
    const vhosts = await call('GET', '/vhosts');
    const apps = [];
    for (const vhost of vhosts || []) {
      for (const app of (await call('GET', `/vhosts/${encodeURIComponent(vhost)}/apps`)) || []) apps.push({ vhost, app });
    }
    const streams = (await Promise.all(apps.map((a) => readStreams(a.vhost, a.app)))).flat();
    const tasks = (await Promise.all(apps.map((a) => readTasks(a.vhost, a.app,
      streams.filter((s) => s.vhost === a.vhost && s.app === a.app))))).flat();
    const now = Date.now();
    for (const s of streams) sample(s.key, now, (s.stats && s.stats.totalBytesIn) || 0, viewers(s.stats));
    forget(new Set(streams.map((s) => s.key)));
    Object.assign(state, { status, vhosts, apps, streams, tasks });
    render();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;  // handled by the unauthorized event
    notice(`Refresh failed: ${e.message}`, true);
  }
  if (session.token) state.timer = setTimeout(refresh, REFRESH_MS);
}

function viewers(stats) {
  const c = (stats && stats.connections) || {};
  return PLAYER_CONNECTIONS.reduce((sum, k) => sum + (Number(c[k]) || 0), 0);
}

// -- rendering ---------------------------------------------------------------------------------------
function render() {
  renderOverview();
  renderCatalog();
  renderStreams();
  renderTasks();
  fillAppSelects();
}

function renderOverview() {
  const st = state.status;
  $('server-line').textContent = `Kiln ${st.version} · pid ${st.pid} · up ${duration(st.uptimeSeconds)}`;
  const listeners = Object.entries(st.listeners || {}).map(([name, l]) => `${name}=${l.host}:${l.port}`).join(' ');
  const j = st.journal || {};
  const facts = [
    ['Version', st.version], ['Started', st.startTime], ['Data directory', st.dataDir], ['Configuration', st.config],
    ['Listeners', listeners || '(none)'],
    ['Journal', `last seq ${j.lastSeq}, ${j.segments} segment(s), ${bytes(j.bytes)}`],
    ['Counts', `${st.counts.vhosts} vhost(s), ${st.counts.apps} app(s), ${st.counts.streams} live stream(s), ` +
      `${st.counts.pushes} push(es), ${st.counts.records} record(s)`],
  ];
  replaceChildren($('overview-list'), ...facts.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })]));
}

function renderCatalog() {
  const byVhost = new Map();
  for (const { vhost, app } of state.apps) {
    if (!byVhost.has(vhost)) byVhost.set(vhost, []);
    byVhost.get(vhost).push(app);
  }
  for (const vhost of state.vhosts || []) if (!byVhost.has(vhost)) byVhost.set(vhost, []);
  replaceChildren($('catalog-list'), ...[...byVhost].map(([vhost, apps]) => h('li', { class: 'vhost' },
    h('strong', { text: vhost }),
    h('ul', {}, ...apps.map((app) => {
      const live = state.streams.filter((s) => s.vhost === vhost && s.app === app).length;
      return h('li', { class: 'app', dataset: { app: `${vhost}/${app}` } }, `${app} `,
        h('span', { class: 'muted', text: `(${live} live)` }));
    })))));
}

function trackText(t) {
  if (t.video) {
    const v = t.video;
    return `video ${v.codec} ${v.width}x${v.height} ${Number(v.framerate || 0).toFixed(0)} fps ${bits(v.bitrate)}`;
  }
  if (t.audio) return `audio ${t.audio.codec} ${t.audio.samplerate} Hz ${t.audio.channel} ch ${bits(t.audio.bitrate)}`;
  return (t.type || 'data').toLowerCase();
}

function playlistOf(s) {
  const outputs = (s.detail && s.detail.outputs) || [];
  const out = outputs.find((o) => o.name === s.name) || outputs[0];
  const listed = out && (out.playlists || []).find((p) => p.fileName);
  return { output: out ? out.name : s.name, file: listed ? `${listed.fileName}.m3u8` : 'llhls.m3u8' };
}

function renderStreams() {
  const rows = state.streams.map((s) => {
    const input = (s.detail && s.detail.input) || {};
    const point = latest(s.key);
    return h('tr', { dataset: { stream: s.key } },
      h('td', { class: 'name', text: s.key }),
      h('td', { text: input.sourceType || '?' }),
      h('td', {}, h('ul', { class: 'tracks' }, ...(input.tracks || []).map((t) => h('li', { text: trackText(t) })))),
      h('td', {}, chart(s.key, 'bitrate', 'in', bits)),
      h('td', {}, chart(s.key, 'viewers', 'viewers', (n) => String(Math.round(n))),
        h('span', { class: 'viewers', text: point ? String(point.viewers) : '0' })),
      h('td', {}, h('button', { type: 'button', class: 'preview', onclick: () => openPreview(s) }, 'Preview')));
  });
  replaceChildren($('streams-table').tBodies[0], ...rows);
  $('streams-empty').hidden = rows.length > 0;
  if (state.previewKey && !state.streams.some((s) => s.key === state.previewKey)) {
    $('preview-state').textContent = 'the stream ended';
  }
}

function taskRow(t) {
  const id = t.id;
  const stream = (t.stream && t.stream.name) || t.outputStreamName || '';
  let destination = '', amount = '', taskState = t.state || '';
  if (t.kind === 'push') {
    destination = `${t.protocol} ${t.url}${t.streamKey ? '/***' : ''}`;
    amount = bytes(t.totalsentBytes ?? t.sentBytes ?? 0);
  } else if (t.kind === 'record') {
    destination = t.outputFilePath || t.filePath || '(the app\'s default path)';
    amount = bytes(t.totalRecordBytes ?? t.recordBytes ?? 0);
  } else {
    destination = `${t.outputStreamName} → ${t.outputPath}`;
    taskState = t.enabled ? 'dumping' : 'stopped';
  }
  return h('tr', { class: `task ${t.kind}`, dataset: { task: `${t.kind}:${t.vhost}/${t.app}/${id}`, state: taskState } },
    h('td', { text: t.kind }), h('td', { class: 'id', text: `${t.vhost}/${t.app}/${id}` }), h('td', { text: stream }),
    h('td', { text: destination }), h('td', { class: 'state', text: taskState }),
    h('td', { class: 'error', text: t.lastError || t.lastWarning || '' }), h('td', { text: amount }),
    h('td', {}, taskState === 'stopped' ? null
      : h('button', { type: 'button', class: 'stop', onclick: () => stopTask(t) }, 'Stop')));
}

function renderTasks() {
  replaceChildren($('tasks-table').tBodies[0], ...state.tasks.map(taskRow));
  $('tasks-empty').hidden = state.tasks.length > 0;
}

function fillAppSelects() {
  const values = state.apps.map(({ vhost, app }) => `${vhost}/${app}`);
  for (const select of document.querySelectorAll('select[name=app]')) {
    const current = [...select.options].map((o) => o.value).join('\n');
    if (current === values.join('\n')) continue;
    const chosen = select.value;
    replaceChildren(select, ...values.map((v) => h('option', { value: v, text: v })));
    if (values.includes(chosen)) select.value = chosen;
  }
}

// -- actions -----------------------------------------------------------------------------------------
function notice(text, isError = false) {
  const el = $('notice');
  el.textContent = text;
  el.className = isError ? 'notice error' : 'notice';
  el.hidden = false;
}

async function act(description, fn) {
  try {
    await fn();
    notice(`${description}: done`);
  } catch (e) {
    notice(`${description}: ${e.message}`, true);
  }
  await refresh();
}

function splitApp(value) {
  const at = value.indexOf('/');
  return [value.slice(0, at), value.slice(at + 1)];
}

function stopTask(t) {
  const base = appPath(t.vhost, t.app);
  if (t.kind === 'push') return act(`Stop push ${t.id}`, () => call('POST', `${base}:stopPush`, { id: t.id }));
  if (t.kind === 'record') return act(`Stop recording ${t.id}`, () => call('POST', `${base}:stopRecord`, { id: t.id }));
  return act(`Stop dump ${t.id}`, () => call('POST', `${streamPath(t.vhost, t.app, t.stream.name)}:stopHlsDump`,
    { outputStreamName: t.outputStreamName, id: t.id }));
}

function formValues(form) {
  const out = {};
  for (const [k, v] of new FormData(form)) out[k] = String(v).trim();
  return out;
}

function wireForms() {
  $('push-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = formValues(e.target);
    const [vhost, app] = splitApp(f.app);
    const body = { id: f.id, stream: { name: f.stream }, protocol: f.protocol, url: f.url };
    if (f.streamKey) body.streamKey = f.streamKey;
    act(`Start push ${f.id}`, () => call('POST', `${appPath(vhost, app)}:startPush`, body));
  });
  $('record-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = formValues(e.target);
    const [vhost, app] = splitApp(f.app);
    const body = { id: f.id, stream: { name: f.stream } };
    if (f.filePath) body.filePath = f.filePath;
    act(`Start recording ${f.id}`, () => call('POST', `${appPath(vhost, app)}:startRecord`, body));
  });
  $('dump-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = formValues(e.target);
    const [vhost, app] = splitApp(f.app);
    const body = { id: f.id, outputStreamName: f.outputStreamName || f.stream, outputPath: f.outputPath };
    act(`Start dump ${f.id}`, () => call('POST', `${streamPath(vhost, app, f.stream)}:startHlsDump`, body));
  });
}

// -- preview -----------------------------------------------------------------------------------------
function openPreview(s) {
  const { output, file } = playlistOf(s);
  const url = playlistUrl(state.status.listeners || {}, s.app, output, file);
  $('preview').hidden = false;
  $('preview-name').textContent = s.key;
  state.previewKey = s.key;
  if (!url) {
    $('preview-state').textContent = 'no LL-HLS port is open on this server';
    return;
  }
  play($('preview-video'), url, (text) => { $('preview-state').textContent = text; })
    .catch((e) => { $('preview-state').textContent = `error: ${e.message}`; });
}

function wirePreview() {
  const video = $('preview-video');
  video.addEventListener('timeupdate', () => {
    const l = latency();
    $('preview-state').textContent = `playing ${video.currentTime.toFixed(1)} s` +
      (l !== null ? `, latency ${l.toFixed(1)} s` : '');
  });
  $('preview-close').addEventListener('click', () => {
    stopPreview(video);
    state.previewKey = null;
    $('preview').hidden = true;
  });
}

// -- start ---------------------------------------------------------------------------------------------
function init() {
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = $('token').value.trim();
    try {
      showMain(await tryLogin(token));
      $('token').value = '';
    } catch (err) {
      session.clear();
      showLogin(err.status === 401 ? `The access token was refused (${err.message})` : err.message);
    }
  });
  $('logout').addEventListener('click', () => {
    session.clear();
    showLogin('Logged out.');
  });
  window.addEventListener('kiln:unauthorized', (e) => {
    session.clear();
    showLogin(`Please log in again: ${e.detail || 'the token was refused'}`);
  });
  wireForms();
  wirePreview();
  if (session.token) {
    tryLogin(session.token).then(showMain, () => showLogin());
  } else {
    showLogin();
  }
}

init();
