/** Register, log in, or enter as a visitor; errors shown inline. */
import { useState, type FormEvent } from 'react';
import { api, ApiError } from './api.js';

type Mode = 'login' | 'register' | 'visitor';

/** The account rules (src/protocol/common.ts Username and Password), shown before any attempt. */
const RULES = {
  username: '2–32 characters: letters, digits, _ . -',
  password: 'At least 6 characters',
} as const;

/**
 * One clean sentence from an API error: without the operation the API names
 * (`register: password: at least 6 characters` reads `Password: at least 6 characters`).
 */
function cleanError(message: string): string {
  const m = message.replace(/^(register|login|visitor): /, '');
  return m.charAt(0).toUpperCase() + m.slice(1);
}

/** Why the server ended the last session (GET /api/session `ended`). */
export interface Ended {
  code: string;
  message: string;
}

export function Entry({ onEntered, ended }: { onEntered: () => Promise<void>; ended?: Ended }) {
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
      setError(err instanceof ApiError ? cleanError(err.message) : String(err));
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
        {ended && (
          <p className="entry-ended" role="status">
            The server ended your last session: {endedWhy(ended)}.
          </p>
        )}
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
                aria-describedby={mode === 'register' ? 'rule-username' : undefined}
              />
            </label>
            {mode === 'register' && (
              <p className="hint rule" id="rule-username">
                {RULES.username}
              </p>
            )}
            <label>
              Password
              <input
                type="password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                autoComplete={mode === 'register' ? 'new-password' : 'current-password'}
                required
                aria-describedby={mode === 'register' ? 'rule-password' : undefined}
              />
            </label>
            {mode === 'register' && (
              <p className="hint rule" id="rule-password">
                {RULES.password}
              </p>
            )}
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

/** What the server said of the session's end, without its own "session ended:" lead-in. */
function endedWhy(e: Ended): string {
  const why = e.message.replace(/^session ended:\s*/i, '').trim();
  return why || (e.code === 'E_SESSION_INVALID' ? 'it no longer knows it' : e.code);
}
