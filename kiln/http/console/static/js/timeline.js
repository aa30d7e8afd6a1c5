// The journal as a timeline: the newest records for the filters (entity prefix, type, since) from
// GET /v1/journal, then every new one by polling with after=<lastSeq>; a search box narrows what is shown.

import { call } from './api.js';
import { h, replaceChildren } from './dom.js';

const SHOWN = 500;  // records kept on the page
const POLL_MS = 1500;

export class Timeline {
  constructor(form, list, count, error, types) {
    this.form = form;
    this.list = list;
    this.count = count;
    this.error = error;
    this.types = types;
    this.records = [];  // oldest first
    this.lastSeq = null;
    this.generation = 0;  // a filter change makes older answers stale
    this.timer = null;
    this.knownTypes = new Set();
    form.addEventListener('submit', (e) => e.preventDefault());
    for (const name of ['entity', 'type', 'since']) {
      form.elements[name].addEventListener('change', () => this.reload());
      form.elements[name].addEventListener('input', () => this.reloadSoon());  // while typing, once it pauses
    }
    form.elements.search.addEventListener('input', () => this.render());
    form.elements.live.addEventListener('change', () => this.schedule());
  }

  filters() {
    const q = new URLSearchParams();
    const { entity, type, since } = this.form.elements;
    if (entity.value.trim()) q.set('entity', entity.value.trim());
    if (type.value.trim()) q.set('type', type.value.trim());
    if (since.value) q.set('since', new Date(since.value).toISOString());
    return q;
  }

  async reload() {
    clearTimeout(this.timer);  // a poll of the old filters must not run alongside the new one
    this.generation++;
    this.records = [];
    this.lastSeq = null;
    await this.poll();
  }

  reloadSoon() {
    clearTimeout(this.typing);
    this.typing = setTimeout(() => this.reload(), 400);
  }

  start() {
    this.reload();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.form.elements.live.checked) this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  async poll() {
    const generation = this.generation;
    const q = this.filters();
    q.set('limit', this.lastSeq === null ? '200' : '1000');
    if (this.lastSeq !== null) q.set('after', String(this.lastSeq));
    try {
      const page = await call('GET', `/journal?${q}`);
      if (generation !== this.generation) return;
      this.error.textContent = '';
      this.records.push(...page.records);
      if (this.records.length > SHOWN) this.records.splice(0, this.records.length - SHOWN);
      const last = page.records.length ? page.records[page.records.length - 1].seq : page.lastSeq;
      // with more=true an after= page stopped at its limit: continue from its last record
      this.lastSeq = page.more && this.lastSeq !== null ? last : Math.max(last, page.lastSeq);
      for (const r of page.records) this.learnType(r.type);
      if (page.records.length || this.list.childElementCount === 0) this.render();
    } catch (e) {
      if (generation !== this.generation) return;
      this.error.textContent = e.message;
    }
    if (generation === this.generation) this.schedule();
  }

  learnType(type) {
    if (this.knownTypes.has(type)) return;
    this.knownTypes.add(type);
    replaceChildren(this.types, ...[...this.knownTypes].sort().map((t) => h('option', { value: t })));
  }

  render() {
    const needle = this.form.elements.search.value.trim().toLowerCase();
    const shown = needle
      ? this.records.filter((r) => `${r.type} ${r.entity} ${JSON.stringify(r.payload)}`.toLowerCase().includes(needle))
      : this.records;
    replaceChildren(this.list, ...shown.slice().reverse().map(item));
    this.count.textContent = `${shown.length} of ${this.records.length} records shown` +
      (this.lastSeq !== null ? ` (journal at seq ${this.lastSeq})` : '');
  }
}

function item(r) {
  const payload = JSON.stringify(r.payload);
  const when = new Date(r.time);
  return h('li', { class: `record kind-${r.entity.split(':')[0]}`, dataset: { seq: r.seq, type: r.type } },
    h('span', { class: 'seq', text: `#${r.seq}` }),
    h('time', { datetime: r.time, title: r.time, text: Number.isNaN(when.getTime()) ? r.time : when.toLocaleString() }),
    h('span', { class: 'type', text: r.type }),
    h('span', { class: 'entity', text: r.entity }),
    h('details', {}, h('summary', { text: payload.length > 140 ? payload.slice(0, 140) + '…' : payload }),
      h('pre', { text: JSON.stringify(r.payload, null, 2) })));
}
