// Boot and session routing: login <-> the signed-in shell.
import './style.css';
import { api, onSessionLost } from './ipc';
import { toast } from './dom';
import { createShell, type Ctx, type Shell, type View } from './shell';
import { createLoginView } from './views/login';
import { customerViews } from './views/customer';
import { adminViews } from './views/admin';
import { dbaViews } from './views/dba';
import type { AppInfo, User } from './types';

const root = document.getElementById('app')!;
let shell: Shell | null = null;
let info: AppInfo | null = null;
let signedIn = false;

function viewsFor(user: User): (ctx: Ctx) => View[] {
  switch (user.role) {
    case 'customer': return customerViews;
    case 'branch_admin': return adminViews;
    case 'dba': return dbaViews;
    default: return () => [];
  }
}

function showLogin(notice?: string) {
  signedIn = false;
  root.replaceChildren(createLoginView({ notice, info, onLoggedIn: enterApp }));
}

function enterApp(user: User) {
  signedIn = true;
  if (shell && shell.user.id === user.id && shell.user.role === user.role) {
    // Same person after a lost session: back to where they were, drafts intact.
    root.replaceChildren(shell.el);
    shell.resume();
    shell.focus();
    return;
  }
  shell?.destroy();
  shell = createShell(user, viewsFor(user), logout);
  root.replaceChildren(shell.el);
  shell.focus();
}

async function logout() {
  try { await api.logout(); } catch { /* signing out locally regardless */ }
  shell?.destroy();
  shell = null; // an explicit sign-out forgets every draft
  document.getElementById('toast')?.replaceChildren(); // and the last user's notices
  showLogin('You have signed out.');
}

onSessionLost(() => {
  if (!signedIn) return;
  signedIn = false;
  shell?.suspend();
  showLogin('Your session has ended. Sign in again to continue where you left off.');
});

async function boot() {
  try { info = await api.appInfo(); } catch { info = null; }
  try {
    const user = await api.currentUser();
    if (user) { enterApp(user); return; }
  } catch (err) {
    if ((err as { code?: string }).code === 'unreachable') toast('Cannot reach the server', 'error');
  }
  showLogin();
}

void boot();
