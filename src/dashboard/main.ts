// The dashboard's entry: sign-in (a pasted token, or `ferry dev`'s link), the navigation, and a
// router over the address's fragment (`#/tasks?status=failed`, `#/task/<id>`, …) that gives each
// view the element to draw into and aborts the one it replaces.

import { createApi, type Api } from './api';
import { fill, h } from './dom';
import { forgetToken, storedToken, storeToken, tokenFromFragment } from './session';
import type { View } from './view';
import { endpointsView } from './views/endpoints';
import { lineageView } from './views/lineage';
import { objectsView, objectView } from './views/objects';
import { taskView } from './views/task';
import { tasksView } from './views/tasks';

const VIEWS: Record<string, { view: View; nav: string; title: string }> = {
  endpoints: { view: endpointsView, nav: 'endpoints', title: 'Endpoints' },
  tasks: { view: tasksView, nav: 'tasks', title: 'Tasks' },
  task: { view: taskView, nav: 'tasks', title: 'Task' },
  lineage: { view: lineageView, nav: 'tasks', title: 'Lineage' },
  objects: { view: objectsView, nav: 'objects', title: 'Objects' },
  object: { view: objectView, nav: 'objects', title: 'Object' },
};

const main = document.getElementById('view') as HTMLElement;
const live = document.getElementById('announce') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const signOut = document.getElementById('sign-out') as HTMLButtonElement;
let current: AbortController | null = null;
let api: Api | null = null;

function announce(message: string): void {
  live.textContent = message;
}

function signIn(token: string): void {
  storeToken(token);
  api = createApi(token, () => {
    forgetToken();
    api = null;
    announce('The token was refused (expired or revoked): sign in again.');
    showSignIn();
  });
  nav.hidden = false;
  signOut.hidden = false;
  if (!location.hash.startsWith('#/')) location.hash = '#/endpoints';
  else void render();
}

function showSignIn(): void {
  current?.abort();
  nav.hidden = true;
  signOut.hidden = true;
  const input = h('input', { id: 'token', name: 'token', type: 'password', required: true, autocomplete: 'off', spellcheck: false });
  const form = h(
    'form',
    { class: 'sign-in', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title' }, 'Sign in'),
    h('p', {}, 'Paste a Ferry access token. It is kept in this tab only (session storage) and sent only to this gateway. Under ', h('code', {}, 'npm start'), ', open the dashboard link it prints instead.'),
    h('div', { class: 'field' }, h('label', { for: 'token' }, 'Access token'), input),
    h('button', { type: 'submit' }, 'Sign in'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (token) signIn(token);
  });
  fill(main, form);
  document.title = 'Sign in · Ferry';
  input.focus();
}

async function render(): Promise<void> {
  if (!api) return showSignIn();
  const [path = '', queryText = ''] = location.hash.replace(/^#\/?/, '').split('?', 2);
  const [name = 'endpoints', ...args] = path.split('/');
  const entry = VIEWS[name] ?? VIEWS.endpoints!;
  current?.abort();
  const controller = new AbortController();
  current = controller;
  for (const link of nav.querySelectorAll('a')) {
    if (link.dataset.nav === entry.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${entry.title} · Ferry`;
  announce('');
  fill(main, h('p', { class: 'muted' }, 'Loading…'));
  try {
    await entry.view({ api, root: main, args, query: new URLSearchParams(queryText), announce, signal: controller.signal });
  } catch (err) {
    if (controller.signal.aborted) return;
    const what = (err as Error).message;
    fill(main, h('h1', {}, entry.title), h('p', { role: 'alert', class: 'error' }, what));
  }
}

signOut.addEventListener('click', () => {
  forgetToken();
  api = null;
  announce('Signed out');
  showSignIn();
});
window.addEventListener('hashchange', () => {
  if (location.hash.startsWith('#token=')) {
    const token = tokenFromFragment();
    if (token) return signIn(token);
  }
  void render();
});

const token = tokenFromFragment() ?? storedToken();
if (token) signIn(token);
else showSignIn();
