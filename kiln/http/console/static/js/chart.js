// Per-stream history sampled by the page (the server keeps no time series) and drawn as small SVG charts.

import { h, svg } from './dom.js';

export const WINDOW_MS = 5 * 60 * 1000;  // what a chart shows

// stream key -> [{t, bytesIn, viewers, bitrate}]
const history = new Map();

export function sample(key, now, totalBytesIn, viewers) {
  const points = history.get(key) || [];
  const last = points[points.length - 1];
  let bitrate = null;
  if (last && now > last.t && totalBytesIn >= last.bytesIn) {
    bitrate = ((totalBytesIn - last.bytesIn) * 8 * 1000) / (now - last.t);
  }
  points.push({ t: now, bytesIn: totalBytesIn, viewers, bitrate });
  while (points.length && points[0].t < now - WINDOW_MS) points.shift();
  history.set(key, points);
  return points;
}

export function latest(key) {
  const points = history.get(key) || [];
  return points[points.length - 1] || null;
}

export function forget(keep) {
  for (const key of [...history.keys()]) if (!keep.has(key)) history.delete(key);
}

// A line chart of one field over the window; the newest value and the maximum are written out, so the
// figure can be read without hovering.
export function chart(key, field, label, format) {
  const points = (history.get(key) || []).filter((p) => p[field] !== null && p[field] !== undefined);
  const width = 220, height = 48;
  const now = points.length ? points[points.length - 1].t : 0;
  // the x axis spans what was sampled (at least a minute, at most the window), so a new chart is not a sliver
  const span = Math.min(WINDOW_MS, Math.max(60000, points.length ? now - points[0].t : 0));
  const max = Math.max(1, ...points.map((p) => p[field]));
  const coords = points.map((p) => {
    const x = width - ((now - p.t) / span) * width;
    const y = height - 2 - (p[field] / max) * (height - 4);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const last = points.length ? points[points.length - 1][field] : null;
  const line = svg('polyline', { points: coords.join(' '), fill: 'none', class: 'line' });
  const picture = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
    'aria-label': `${label}: ${points.length} samples, last ${last === null ? 'none' : format(last)}`,
    class: 'chart', 'data-field': field, 'data-samples': points.length },
    svg('title', {}, `${label} over the last ${Math.round(span / 60000)} minute(s)`), line);
  return h('figure', { class: 'chart-box' }, picture,
    h('figcaption', {}, `${label} ${last === null ? '–' : format(last)} (max ${format(max)})`));
}
