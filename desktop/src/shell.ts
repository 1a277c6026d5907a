// The signed-in application frame: header, role-specific navigation, views and pollers.
// The shell (with every form's DOM, i.e. the user's drafts) stays in memory while the user
// signs in again after a lost session, so they come back to the same view with drafts intact.
import { h } from './dom';
import type { User } from './types';
import { notificationCenter } from './views/notifications';

export interface View {
  id: string;
  label: string;
  el: HTMLElement;
  /** Called each time the view becomes visible (and after signing in again): refresh data. */
  show(): void;
  /** false: no button in the side navigation (the view is opened from elsewhere, e.g. the header). */
  inNav?: boolean;
  /** true: its navigation button carries a count (`#<id>-count`, set with `ctx.setBadge`). */
  badge?: boolean;
}

export interface Ctx {
  user: User;
  navigate(id: string): void;
  /** Runs `task` every `ms` while signed in (never overlapping itself). */
  poll(task: () => Promise<void>, ms: number): void;
  setBadge(viewId: string, count: number): void;
}

export interface Shell {
  user: User;
  el: HTMLElement;
  /** Moves keyboard focus into the current view (after the shell is attached). */
  focus(): void;
  suspend(): void;
  resume(): void;
  destroy(): void;
}

const ROLE_LABELS: Record<string, string> = { customer: 'Customer', branch_admin: 'Branch admin', dba: 'Database administrator' };

interface Poller { task: () => Promise<void>; ms: number; timer: number | null; running: boolean }

export function createShell(user: User, build: (ctx: Ctx) => View[], onLogout: () => void): Shell {
  const pollers: Poller[] = [];
  const navButtons = new Map<string, HTMLButtonElement>();
  const badges = new Map<string, HTMLElement>();
  let views: View[] = [];
  let current: View | null = null;
  let active = true;

  const main = h('main', { id: 'view', class: 'content', tabindex: -1 });
  const nav = h('nav', { class: 'sidenav', 'aria-label': 'Main' });

  const ctx: Ctx = {
    user,
    navigate,
    poll(task, ms) {
      const p: Poller = { task, ms, timer: null, running: false };
      pollers.push(p);
      if (active) start(p);
    },
    setBadge(viewId, count) {
      const b = badges.get(viewId);
      if (!b) return;
      b.textContent = String(count);
      b.dataset.count = String(count);
      b.setAttribute('aria-label', `${count} pending`);
    },
  };

  function start(p: Poller) {
    if (p.timer !== null) return;
    const run = async () => {
      if (p.running || !active) return;
      p.running = true;
      try { await p.task(); } catch { /* each task reports its own errors */ } finally { p.running = false; }
    };
    void run();
    p.timer = window.setInterval(run, p.ms);
  }
  function stop(p: Poller) {
    if (p.timer !== null) clearInterval(p.timer);
    p.timer = null;
  }

  function navigate(id: string) {
    const next = views.find((v) => v.id === id);
    if (!next) return;
    for (const v of views) v.el.hidden = v !== next;
    for (const [vid, b] of navButtons) {
      if (vid === id) b.setAttribute('aria-current', 'page'); else b.removeAttribute('aria-current');
    }
    const changed = current !== next;
    current = next;
    next.show();
    if (changed) next.el.querySelector<HTMLElement>('h1')?.focus({ preventScroll: true });
  }

  const logout = h('button', { id: 'logout', type: 'button', class: 'ghost' }, 'Sign out');
  logout.addEventListener('click', onLogout);
  // Every role: the bell in the header and its one poller (stopped with the shell's other pollers).
  const notifications = notificationCenter(ctx);
  const header = h('header', { class: 'topbar' },
    h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, 'F'), 'FlexiBank'),
    h('div', { class: 'who' },
      h('span', { id: 'whoami', 'data-role': user.role, 'data-username': user.username },
        h('strong', null, user.full_name), ' ', h('span', { class: 'whoami-role' }, ROLE_LABELS[user.role] ?? user.role)),
      notifications.bell,
      logout));

  views = [...build(ctx), notifications.view];
  navButtons.set(notifications.view.id, notifications.bell);
  for (const v of views) {
    v.el.hidden = true;
    v.el.classList.add('view');
    v.el.dataset.view = v.id;
    v.el.querySelector('h1')?.setAttribute('tabindex', '-1');
    main.appendChild(v.el);
    if (v.inNav === false) continue;
    const b = h('button', { id: `nav-${v.id}`, type: 'button', class: 'nav-item' }, h('span', null, v.label));
    if (v.id === 'queue' || v.badge) {
      const badge = h('span', { id: `${v.id}-count`, class: 'badge', 'data-count': '0', 'aria-label': '0 pending' }, '0');
      badges.set(v.id, badge);
      b.appendChild(badge);
    }
    b.addEventListener('click', () => navigate(v.id));
    navButtons.set(v.id, b);
    nav.appendChild(b);
  }

  const el = h('div', { id: 'shell', class: 'shell', 'data-role': user.role },
    h('a', { href: '#view', class: 'skip' }, 'Skip to content'), header, nav, main);
  if (views.length) navigate(views[0].id);

  return {
    user,
    el,
    focus() { current?.el.querySelector<HTMLElement>('h1')?.focus({ preventScroll: true }); },
    suspend() { active = false; pollers.forEach(stop); },
    resume() {
      active = true;
      pollers.forEach(start);
      current?.show();
    },
    destroy() { active = false; pollers.forEach(stop); el.remove(); },
  };
}
