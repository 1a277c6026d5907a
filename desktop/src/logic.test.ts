import { describe, expect, it } from 'vitest';
import { errorMessage, formatDuration } from './errors';
import { IpcError, toIpcError } from './ipc';
import { failingIndex } from './views/batch';
import { checkNewCustomer } from './views/admin-customers';
import { actionsFor } from './views/admin-accounts';
import { lagSeries } from './views/dba';
import { hhmm, zoneToShow } from './views/settings';

describe('errors', () => {
  it('normalises the command error object and stray strings', () => {
    const e = toIpcError({ kind: 'problem', status: 409, code: 'insufficient_funds', detail: 'x', retry_after_s: null });
    expect(e).toBeInstanceOf(IpcError);
    expect(e.code).toBe('insufficient_funds');
    expect(toIpcError('command foo not found').code).toBe('internal');
  });
  it('speaks plainly', () => {
    const p = (code: string, extra: object = {}) => ({ kind: 'problem', status: 400, code, detail: '', retry_after_s: null, ...extra });
    expect(errorMessage(p('invalid_credentials'))).toBe('Wrong username or password');
    expect(errorMessage(p('insufficient_funds'))).toBe('Insufficient funds');
    expect(errorMessage(p('not_found'))).toBe('No such account');
    expect(errorMessage({ kind: 'unreachable', status: 0, code: 'unreachable', detail: 'timeout', retry_after_s: null })).toBe('Cannot reach the server');
    expect(errorMessage(p('locked_out', { retry_after_s: 899 }))).toBe('Too many failed attempts. Locked for 14 min 59 s');
    expect(errorMessage(p('validation_failed', { kind: 'invalid', detail: 'amount: at most 2 decimal places' }))).toBe('Please check your input: amount: at most 2 decimal places');
  });
  it('formats durations', () => {
    expect(formatDuration(900)).toBe('15 min 0 s');
    expect(formatDuration(59.2)).toBe('1 min 0 s');
    expect(formatDuration(5)).toBe('5 s');
    expect(formatDuration(-3)).toBe('0 s');
  });
});

describe('batch', () => {
  it('finds the failing item index in the detail', () => {
    expect(failingIndex('item 17: insufficient funds')).toBe(17);
    expect(failingIndex('index 0 failed')).toBe(0);
    expect(failingIndex('no primary')).toBeNull();
  });
});

describe('admin', () => {
  const ok = { username: 'carol.d', full_name: 'Carol D', national_id: 'N1', phone: '+91 (80) 1234-5678', email: 'c@x.in', password: 'twelve chars' };
  it('checks a new customer like the server', () => {
    expect(checkNewCustomer(ok)).toBeNull();
    expect(checkNewCustomer({ ...ok, password: 'elevenchars' })).toBe('Password must be at least 12 characters');
    expect(checkNewCustomer({ ...ok, username: 'ab' })).toMatch(/^Username/);
    expect(checkNewCustomer({ ...ok, email: 'nope' })).toMatch(/email/);
    expect(checkNewCustomer({ ...ok, phone: 'call me' })).toMatch(/phone/);
  });
  it('offers only the actions that make sense', () => {
    expect(actionsFor('active')).toEqual(['freeze', 'close']);
    expect(actionsFor('frozen')).toEqual(['unfreeze', 'close']);
    expect(actionsFor('closed')).toEqual([]);
  });
});

describe('lag chart series', () => {
  const node = (name: string, role: string, lag: number | null) => ({ name, role, timeline: 1, lsn: '0/1', replay_lag_bytes: lag, replay_lag_seconds: 0, sync_state: null });
  it('draws one line per replica and drops a node once it is promoted', () => {
    const colors = new Map<string, string>();
    const series = lagSeries([
      { t: 1, nodes: [node('primary', 'primary', null), node('replica1', 'replica', 10), node('replica2', 'replica', 30)] },
      { t: 2, nodes: [node('primary', 'fenced', null), node('replica1', 'primary', null), node('replica2', 'replica', 5)] },
    ], colors);
    expect(series.map((s) => s.label)).toEqual(['replica1', 'replica2']);
    expect(series[0].points).toEqual([{ x: 1, y: 10 }]);
    expect(series[1].points).toEqual([{ x: 1, y: 30 }, { x: 2, y: 5 }]);
    expect(series[0].color).not.toBe(series[1].color);
    expect(colors.get('replica1')).toBe(series[0].color);
  });
});

describe('notification settings', () => {
  it('reads time inputs as HH:MM', () => {
    expect(hhmm('22:00')).toBe('22:00');
    expect(hhmm('07:05:00')).toBe('07:05');
    expect(hhmm('24:00')).toBeNull();
    expect(hhmm('7:00')).toBeNull();
    expect(hhmm('')).toBeNull();
  });
  it("offers this computer's time zone until one matters", () => {
    expect(zoneToShow({ quiet_hours: null, time_zone: 'UTC' }, 'Asia/Kolkata')).toBe('Asia/Kolkata');
    expect(zoneToShow({ quiet_hours: null, time_zone: '' }, 'Asia/Kolkata')).toBe('Asia/Kolkata');
    expect(zoneToShow({ quiet_hours: { start: '22:00', end: '07:00' }, time_zone: 'UTC' }, 'Asia/Kolkata')).toBe('UTC');
    expect(zoneToShow({ quiet_hours: null, time_zone: 'Europe/Berlin' }, 'Asia/Kolkata')).toBe('Europe/Berlin');
  });
});
