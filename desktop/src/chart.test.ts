import { describe, expect, it } from 'vitest';
import { chartGeometry, compactNumber, formatBytes, linearScale, MARGIN, niceTicks } from './chart';

describe('linearScale', () => {
  it('maps the ends of the domain onto the ends of the range', () => {
    const sc = linearScale(10, 20, 0, 100);
    expect(sc(10)).toBe(0);
    expect(sc(20)).toBe(100);
    expect(sc(15)).toBe(50);
    expect(sc(25)).toBe(150); // extrapolates; the chart clamps x itself
  });
  it('supports an inverted range (SVG y grows downwards)', () => {
    const sc = linearScale(0, 1000, 200, 0);
    expect(sc(0)).toBe(200);
    expect(sc(1000)).toBe(0);
    expect(sc(250)).toBe(150);
  });
  it('maps a zero-width domain to the middle of the range', () => {
    const sc = linearScale(5, 5, 0, 100);
    expect(sc(5)).toBe(50);
    expect(sc(999)).toBe(50);
  });
});

describe('niceTicks', () => {
  it('uses round steps that cover the data', () => {
    expect(niceTicks(0, 1234, 4)).toEqual([0, 500, 1000, 1500]);
    expect(niceTicks(0, 100, 4)).toEqual([0, 25, 50, 75, 100]);
    expect(niceTicks(0, 0.3, 3)).toEqual([0, 0.1, 0.2, 0.3]);
  });
  it('handles flat and empty data', () => {
    expect(niceTicks(0, 0)).toEqual([0, 1]);
    const t = niceTicks(500, 500);
    expect(t[0]).toBeLessThan(500);
    expect(t[t.length - 1]).toBeGreaterThan(500);
    expect(niceTicks(NaN, 3)).toEqual([0, 1]);
  });
  it('handles negative values and swapped bounds', () => {
    const t = niceTicks(50, -120, 4);
    expect(t[0]).toBeLessThanOrEqual(-120);
    expect(t[t.length - 1]).toBeGreaterThanOrEqual(50);
    expect(t).toContain(0);
  });
});

describe('chartGeometry', () => {
  const opts = { width: 400, height: 200 };
  const plotBottom = 200 - MARGIN.bottom;
  const plotRight = 400 - MARGIN.right;

  it('scales the first and last points onto the plot corners', () => {
    const g = chartGeometry([{ label: 'balance', points: [{ x: 0, y: 0 }, { x: 10, y: 1000 }] }], opts);
    expect(g.yDomain).toEqual([0, 1000]);
    const [a, b] = g.paths[0].points;
    expect(a).toEqual({ x: MARGIN.left, y: plotBottom });
    expect(b).toEqual({ x: plotRight, y: MARGIN.top });
    expect(g.paths[0].d).toBe(`M${MARGIN.left},${plotBottom} L${plotRight},${MARGIN.top}`);
  });

  it('sorts points by x and starts the y axis at zero', () => {
    const g = chartGeometry([{ label: 's', points: [{ x: 3, y: 600 }, { x: 1, y: 400 }] }], opts);
    expect(g.yDomain[0]).toBe(0);
    expect(g.paths[0].points[0].x).toBeLessThan(g.paths[0].points[1].x);
    expect(g.paths[0].points[0].y).toBeGreaterThan(g.paths[0].points[1].y); // 400 sits lower than 600
  });

  it('draws a single point as a flat line across the plot', () => {
    const g = chartGeometry([{ label: 's', points: [{ x: 5, y: 100 }] }], opts);
    expect(g.paths[0].points).toHaveLength(1);
    expect(g.paths[0].d.startsWith(`M${MARGIN.left},`)).toBe(true);
    expect(g.paths[0].d).toContain(`L${plotRight},`);
  });

  it('clamps points outside a fixed x window to the plot edges', () => {
    const g = chartGeometry([{ label: 'r1', points: [{ x: -50, y: 1 }, { x: 60, y: 2 }, { x: 200, y: 3 }] }], { ...opts, xDomain: [0, 120] });
    const xs = g.paths[0].points.map((p) => p.x);
    expect(Math.min(...xs)).toBe(MARGIN.left);
    expect(Math.max(...xs)).toBe(plotRight);
  });

  it('is empty (but valid) without data, and ignores non-finite values', () => {
    const g = chartGeometry([{ label: 's', points: [{ x: 1, y: NaN }] }], opts);
    expect(g.empty).toBe(true);
    expect(g.paths[0].d).toBe('');
    expect(g.yTicks.length).toBeGreaterThan(1);
  });

  it('gives each series its own colour', () => {
    const g = chartGeometry([{ label: 'a', points: [] }, { label: 'b', points: [] }], opts);
    expect(g.paths[0].color).not.toBe(g.paths[1].color);
  });
});

describe('labels', () => {
  it('formats axis numbers and bytes', () => {
    expect(compactNumber(1500)).toBe('1.5k');
    expect(compactNumber(2_000_000)).toBe('2M');
    expect(compactNumber(12.345)).toBe('12.35');
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(null)).toBe('—');
  });
});
