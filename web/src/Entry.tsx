/** Register, log in, or enter as a visitor; errors shown inline. */
import { useState, type FormEvent } from 'react';
import { api, ApiError } from './api.js';

type Mode = 'login' | 'register' | 'visitor';

export function Entry({ onEntered }: { onEntered: () => Promise<void> }) {
  const [mode, setMode] = useState<Mode>('login');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError('');
    setBusy(true);
    try {
      if (mode === 'register') {
        await api.register(username, password);
        await api.login(username, password);
      } else if (mode === 'login') {
        await api.login(username, password);
      } else {
        await api.visitor(name);
      }
      await onEntered();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const action =
    mode === 'login' ? 'Log in' : mode === 'register' ? 'Register' : 'Enter as visitor';
  return (
    <main className="entry">
      <form className="entry-card" onSubmit={submit} aria-labelledby="entry-title">
        <h1 id="entry-title">Hybrid Chat</h1>
        <div className="tabs" role="tablist" aria-label="How to enter">
          {(['login', 'register', 'visitor'] as const).map((m) => (
            <button
              key={m}
              type="button"
              role="tab"
              aria-selected={mode === m}
              className={mode === m ? 'tab active' : 'tab'}
              onClick={() => {
                setMode(m);
                setError('');
              }}
            >
              {m === 'login' ? 'Log in' : m === 'register' ? 'Register' : 'Visitor'}
            </button>
          ))}
        </div>
        {mode === 'visitor' ? (
          <label>
            Display name
            <input
              value={name}
              onChange={(e) => setName(e.target.value)}
              autoComplete="nickname"
              required
              maxLength={32}
            />
          </label>
        ) : (
          <>
            <label>
              Username
              <input
                value={username}
                onChange={(e) => setUsername(e.target.value)}
                autoComplete="username"
                required
                maxLength={32}
              />
            </label>
            <label>
              Password
              <input
                type="password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                autoComplete={mode === 'register' ? 'new-password' : 'current-password'}
                required
              />
            </label>
          </>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {action}
        </button>
        {mode === 'visitor' && (
          <p className="hint">Visitors read channels that allow them; they cannot post.</p>
        )}
      </form>
    </main>
  );
}
