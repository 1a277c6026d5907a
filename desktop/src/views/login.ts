// Sign-in: password, then the 6-digit code (or a recovery code); first-time users enroll an
// authenticator (QR + secret) and are shown their recovery codes once.
import { api, toIpcError } from '../ipc';
import { errorMessage, formatDuration } from '../errors';
import { busy, clear, field, h } from '../dom';
import type { AppInfo, Enrollment, User } from '../types';

export interface LoginOptions {
  notice?: string;
  info?: AppInfo | null;
  onLoggedIn: (user: User) => void;
}

export function createLoginView(opts: LoginOptions): HTMLElement {
  let countdown: number | null = null;
  let recoveryMode = false;
  let enrolling = false;

  // ---- Step 1: username + password
  const username = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, spellcheck: 'false', autocapitalize: 'off' });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const loginError = h('p', { id: 'login-error', class: 'error', role: 'alert', hidden: true });
  const loginSubmit = h('button', { id: 'login-submit', type: 'submit', class: 'primary' }, 'Sign in');
  // A consortium: several banks configured, the user picks theirs (the first by default).
  const banks = opts.info?.banks ?? [];
  const bank = h('select', { id: 'login-bank', name: 'bank' },
    banks.map((b) => h('option', { value: b.bank_id }, b.name || b.bank_id)));
  if (opts.info?.bank_id && banks.some((b) => b.bank_id === opts.info?.bank_id)) bank.value = opts.info.bank_id;
  const bankField = banks.length > 1 ? field('Bank', bank) : null;
  const loginForm = h('form', { id: 'login-form', novalidate: true },
    bankField, field('Username', username), field('Password', password), loginError, loginSubmit);

  // ---- Step 2: enrollment (first sign-in) + code
  const enrollQr = h('img', { id: 'enroll-qr', alt: 'QR code to add FlexiBank to your authenticator app', width: 180, height: 180 });
  const enrollSecret = h('code', { id: 'enroll-secret', class: 'secret' });
  const enrollBlock = h('div', { id: 'enroll', class: 'enroll', hidden: true },
    h('p', null, 'Scan this QR code with your authenticator app, or type the key below into it. Then enter the 6-digit code the app shows.'),
    enrollQr,
    h('p', { class: 'secret-line' }, 'Key: ', enrollSecret));

  const code = h('input', { id: 'mfa-code', name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 6, pattern: '[0-9]{6}', spellcheck: 'false' });
  const codeField = field('6-digit code', code, 'From your authenticator app');
  const recovery = h('input', { id: 'recovery-code', name: 'recovery_code', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off' });
  const recoveryField = field('Recovery code', recovery, 'One of the codes you saved when you set up sign-in');
  recoveryField.hidden = true;
  const mfaError = h('p', { id: 'mfa-error', class: 'error', role: 'alert', hidden: true });
  const mfaSubmit = h('button', { id: 'mfa-submit', type: 'submit', class: 'primary' }, 'Verify');
  const useRecovery = h('button', { id: 'use-recovery', type: 'button', class: 'link' }, 'Use a recovery code instead');
  const back = h('button', { id: 'mfa-back', type: 'button', class: 'link' }, 'Start over');
  const mfaForm = h('form', { id: 'mfa-form', novalidate: true, hidden: true },
    enrollBlock, codeField, recoveryField, mfaError, mfaSubmit, h('div', { class: 'links' }, useRecovery, back));

  // ---- Step 3: recovery codes, shown once
  const codesList = h('ol', { id: 'recovery-codes', class: 'codes' });
  const codesContinue = h('button', { id: 'recovery-continue', type: 'button', class: 'primary' }, 'I have saved them');
  const codesStep = h('div', { id: 'recovery-step', hidden: true },
    h('h2', null, 'Your recovery codes'),
    h('p', null, 'Keep these codes somewhere safe. Each one lets you sign in once if you lose your phone. They are shown only now.'),
    codesList, codesContinue);

  const serverLine = h('p', { id: 'login-server', class: 'muted small' });
  const showServer = () => {
    const chosen = banks.find((b) => b.bank_id === bank.value);
    const url = chosen?.server_url ?? opts.info?.server_url ?? '';
    serverLine.textContent = `${chosen && banks.length > 1 ? `${chosen.name} · ` : ''}Server ${url} · app ${opts.info?.version ?? ''}`;
  };
  showServer();
  bank.addEventListener('change', showServer);
  const notice = h('p', { id: 'login-notice', class: 'notice', role: 'status', hidden: !opts.notice }, opts.notice ?? '');
  const title = h('h1', { id: 'login-title', tabindex: -1 }, 'Sign in');
  const card = h('section', { class: 'login-card', 'aria-labelledby': 'login-title' },
    h('div', { class: 'brand big' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, 'F'), 'FlexiBank'),
    title, notice, loginForm, mfaForm, codesStep,
    opts.info ? serverLine : null);
  const root = h('div', { id: 'login', class: 'login' }, card);

  function stopCountdown() {
    if (countdown !== null) clearInterval(countdown);
    countdown = null;
  }

  function showErr(el: HTMLElement, err: unknown, overrides: Record<string, string> = {}) {
    stopCountdown();
    const e = toIpcError(err);
    el.hidden = false;
    if (e.code === 'locked_out' && e.retryAfterS != null) {
      const until = Date.now() + e.retryAfterS * 1000;
      const tick = () => {
        const left = (until - Date.now()) / 1000;
        if (!el.isConnected && countdown !== null) { stopCountdown(); return; }
        if (left <= 0) { el.textContent = 'You can try again now.'; el.dataset.code = 'locked_out_over'; stopCountdown(); return; }
        el.textContent = `Too many failed attempts. Locked for ${formatDuration(left)}`;
      };
      el.dataset.code = 'locked_out';
      tick();
      countdown = window.setInterval(tick, 1000);
      return;
    }
    el.dataset.code = e.code;
    el.textContent = errorMessage(e, overrides);
  }
  function plainErr(el: HTMLElement, message: string) {
    stopCountdown();
    el.hidden = false;
    el.textContent = message;
    el.dataset.code = 'local';
  }
  function hideErr(el: HTMLElement) {
    stopCountdown();
    el.hidden = true;
    el.textContent = '';
    delete el.dataset.code;
  }

  function step(which: 'password' | 'mfa' | 'codes') {
    loginForm.hidden = which !== 'password';
    mfaForm.hidden = which !== 'mfa';
    codesStep.hidden = which !== 'codes';
    title.textContent = which === 'password' ? 'Sign in' : which === 'mfa' ? (enrolling ? 'Set up two-step sign-in' : 'Two-step sign-in') : 'Save your recovery codes';
  }

  function setRecoveryMode(on: boolean) {
    recoveryMode = on;
    codeField.hidden = on;
    recoveryField.hidden = !on;
    useRecovery.textContent = on ? 'Use the code from my authenticator app' : 'Use a recovery code instead';
    hideErr(mfaError);
    (on ? recovery : code).focus();
  }

  function startMfa(enrollment: Enrollment | null) {
    enrolling = enrollment !== null;
    enrollBlock.hidden = !enrolling;
    useRecovery.hidden = enrolling;
    if (enrollment) {
      enrollQr.src = `data:image/png;base64,${enrollment.qr_png_base64}`;
      enrollSecret.textContent = enrollment.secret_base32;
      enrollSecret.title = enrollment.otpauth_uri;
    }
    code.value = '';
    recovery.value = '';
    setRecoveryMode(false);
    step('mfa');
    code.focus();
  }

  function restart(message?: string) {
    step('password');
    password.value = '';
    hideErr(mfaError);
    if (message) plainErr(loginError, message); else hideErr(loginError);
    password.focus();
  }

  loginForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const u = username.value.trim();
    if (!u || !password.value) {
      plainErr(loginError, 'Enter your username and password');
      (u ? password : username).focus();
      return;
    }
    hideErr(loginError);
    notice.hidden = true;
    void busy(loginSubmit, async () => {
      try {
        const answer = await api.login(u, password.value, banks.length > 1 ? bank.value : undefined);
        // The chosen bank stays the default when the login screen comes back (sign-out, lost session).
        if (opts.info && banks.length > 1) opts.info.bank_id = bank.value;
        startMfa(answer.next === 'enroll' ? answer.enrollment : null);
      } catch (err) {
        showErr(loginError, err);
        password.select();
      }
    });
  });

  mfaForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = recoveryMode ? recovery.value.trim() : code.value.replace(/\s+/g, '');
    if (!recoveryMode && !/^\d{6}$/.test(value)) {
      plainErr(mfaError, 'Enter the 6-digit code from your authenticator app');
      code.focus();
      return;
    }
    if (recoveryMode && !value) {
      plainErr(mfaError, 'Enter one of your recovery codes');
      recovery.focus();
      return;
    }
    hideErr(mfaError);
    void busy(mfaSubmit, async () => {
      try {
        const answer = recoveryMode ? await api.verifyRecovery(value) : await api.verifyCode(value);
        password.value = '';
        const codes = answer.recovery_codes ?? [];
        if (codes.length > 0) {
          clear(codesList, codes.map((c) => h('li', null, h('code', null, c))));
          step('codes');
          codesContinue.focus();
          codesContinue.onclick = () => opts.onLoggedIn(answer.user);
        } else {
          opts.onLoggedIn(answer.user);
        }
      } catch (err) {
        const e = toIpcError(err);
        if (e.code === 'unauthenticated') {
          restart('Sign-in took too long. Please enter your password again.');
          return;
        }
        showErr(mfaError, err, recoveryMode ? { invalid_totp: 'That recovery code is not valid or was already used' } : {});
        const input = recoveryMode ? recovery : code;
        input.select();
        input.focus();
      }
    });
  });

  useRecovery.addEventListener('click', () => setRecoveryMode(!recoveryMode));
  back.addEventListener('click', () => restart());
  code.addEventListener('input', () => { code.value = code.value.replace(/[^\d]/g, '').slice(0, 6); });

  queueMicrotask(() => username.focus());
  return root;
}
