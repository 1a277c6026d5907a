// A small hand-written SVG line chart. The geometry is pure (and unit-tested); `lineChart`
// only turns it into SVG elements.
import { s } from './dom';

export interface Point { x: number; y: number }
export interface Series { label: string; points: Point[]; color?: string }

export interface ChartOptions {
  width?: number;
  height?: number;
  /** Force the y axis to start at zero (balances, lag). Default true. */
  zeroBased?: boolean;
  /** Fixed x domain, e.g. "the last two minutes". */
  xDomain?: [number, number];
  yFormat?: (v: number) => string;
  xFormat?: (v: number) => string;
  yTicks?: number;
}

export const PALETTE = ['#0b6e4f', '#1f5fa8', '#b35c00', '#7a3db8', '#a8323e', '#2b7a8c'];
export const MARGIN = { top: 12, right: 16, bottom: 26, left: 72 };

/** Maps [d0, d1] linearly onto [r0, r1]; a zero-width domain maps to the middle of the range. */
export function linearScale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  if (d1 === d0) return () => (r0 + r1) / 2;
  const k = (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/** Round tick values (1, 2, 5 × 10^n steps) covering [min, max]. */
export function niceTicks(min: number, max: number, count = 4): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max < min) [min, max] = [max, min];
  if (max === min) {
    if (min === 0) return [0, 1];
    const pad = Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? 10 * mag;
  const start = Math.floor(min / step) * step;
  const end = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let v = start; v <= end + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

export interface ChartGeometry {
  width: number;
  height: number;
  plot: { left: number; top: number; right: number; bottom: number };
  xDomain: [number, number];
  yDomain: [number, number];
  yTicks: { value: number; y: number }[];
  paths: { label: string; color: string; d: string; points: Point[] }[];
  empty: boolean;
}

export function chartGeometry(series: Series[], opts: ChartOptions = {}): ChartGeometry {
  const width = opts.width ?? 640;
  const height = opts.height ?? 220;
  const plot = { left: MARGIN.left, top: MARGIN.top, right: width - MARGIN.right, bottom: height - MARGIN.bottom };
  const all = series.flatMap((se) => se.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const xDomain: [number, number] = opts.xDomain ?? (xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1]);
  let yMin = ys.length ? Math.min(...ys) : 0;
  let yMax = ys.length ? Math.max(...ys) : 1;
  if (opts.zeroBased ?? true) { yMin = Math.min(0, yMin); yMax = Math.max(0, yMax); }
  const ticks = niceTicks(yMin, yMax, opts.yTicks ?? 4);
  const yDomain: [number, number] = [ticks[0], ticks[ticks.length - 1]];
  const sx = linearScale(xDomain[0], xDomain[1], plot.left, plot.right);
  const sy = linearScale(yDomain[0], yDomain[1], plot.bottom, plot.top);
  const clampX = (v: number) => Math.min(plot.right, Math.max(plot.left, v));
  const round = (v: number) => Math.round(v * 10) / 10;
  const paths = series.map((se, i) => {
    const pts = se.points
      .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
      .sort((a, b) => a.x - b.x)
      .map((p) => ({ x: round(clampX(sx(p.x))), y: round(sy(p.y)) }));
    // A single point is drawn as a short flat segment so it stays visible.
    const drawn = pts.length === 1 ? [{ x: plot.left, y: pts[0].y }, { x: plot.right, y: pts[0].y }] : pts;
    const d = drawn.map((p, j) => `${j === 0 ? 'M' : 'L'}${p.x},${p.y}`).join(' ');
    return { label: se.label, color: se.color ?? PALETTE[i % PALETTE.length], d, points: pts };
  });
  return {
    width, height, plot, xDomain, yDomain,
    yTicks: ticks.map((value) => ({ value, y: round(sy(value)) })),
    paths,
    empty: all.length === 0,
  };
}

/** Renders the chart as an <svg> (scales to its container's width). */
export function lineChart(series: Series[], opts: ChartOptions & { id?: string; title: string; emptyText?: string }): SVGSVGElement {
  const g = chartGeometry(series, opts);
  const yFormat = opts.yFormat ?? ((v: number) => String(v));
  const xFormat = opts.xFormat ?? ((v: number) => String(v));
  const { plot } = g;
  const svg = s('svg', {
    id: opts.id, class: 'chart', viewBox: `0 0 ${g.width} ${g.height}`, role: 'img', 'aria-label': opts.title,
    preserveAspectRatio: 'xMidYMid meet', 'data-points': String(g.paths.reduce((n, p) => n + p.points.length, 0)),
  }, s('title', null, opts.title));
  for (const t of g.yTicks) {
    svg.appendChild(s('line', { class: 'grid', x1: plot.left, x2: plot.right, y1: t.y, y2: t.y }));
    svg.appendChild(s('text', { class: 'tick', x: plot.left - 6, y: t.y + 4, 'text-anchor': 'end' }, yFormat(t.value)));
  }
  svg.appendChild(s('line', { class: 'axis', x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom }));
  if (!g.empty) {
    svg.appendChild(s('text', { class: 'tick', x: plot.left, y: g.height - 6, 'text-anchor': 'start' }, xFormat(g.xDomain[0])));
    svg.appendChild(s('text', { class: 'tick', x: plot.right, y: g.height - 6, 'text-anchor': 'end' }, xFormat(g.xDomain[1])));
  }
  for (const p of g.paths) {
    if (!p.d) continue;
    svg.appendChild(s('path', { class: 'line', d: p.d, stroke: p.color, fill: 'none', 'data-series': p.label }));
    const last = p.points[p.points.length - 1];
    if (last) svg.appendChild(s('circle', { cx: last.x, cy: last.y, r: 3, fill: p.color }));
  }
  if (g.empty) {
    svg.appendChild(s('text', { class: 'empty', x: (plot.left + plot.right) / 2, y: (plot.top + plot.bottom) / 2, 'text-anchor': 'middle' }, opts.emptyText ?? 'No data yet'));
  }
  return svg;
}

/** Short axis labels: 1500 -> "1.5k", 2000000 -> "2M". */
export function compactNumber(v: number): string {
  const a = Math.abs(v);
  const fmt = (n: number, suffix: string) => `${Number(n.toFixed(n < 10 ? 2 : 1))}${suffix}`;
  if (a >= 1e12) return fmt(v / 1e12, 'T');
  if (a >= 1e9) return fmt(v / 1e9, 'B');
  if (a >= 1e6) return fmt(v / 1e6, 'M');
  if (a >= 1e3) return fmt(v / 1e3, 'k');
  return String(Number(v.toFixed(2)));
}

/** Bytes with binary units: 1536 -> "1.5 KiB". */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
