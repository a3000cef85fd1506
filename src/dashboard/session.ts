// The token: pasted once into the sign-in form, or handed over by `ferry dev`'s link
// (`/#token=…`, a fragment: never sent to a server), then kept in this tab's sessionStorage and
// taken out of the address bar and the history at once.

const KEY = 'ferry.token';

export function tokenFromFragment(): string | null {
  const hash = location.hash;
  if (!hash.startsWith('#token=')) return null;
  const token = decodeURIComponent(hash.slice('#token='.length));
  history.replaceState(null, '', `${location.pathname}${location.search}#/endpoints`);
  return token.trim() || null;
}

export function storedToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export function storeToken(token: string): void {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(KEY);
}
