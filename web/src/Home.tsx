/**
 * Home, the view of no server (as in Discord): the direct messages (given as children), create a
 * channel, browse the directory of the central server and join.
 */
import { useCallback, useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { api, ApiError, type Channel, type Me } from './api.js';

/** Home: the direct messages, create a channel, browse the directory and join. */
export function Home({
  me,
  joined,
  onOpen,
  onChanged,
  children,
}: {
  me: Me;
  joined: Channel[];
  onOpen: (c: Channel) => void;
  onChanged: () => Promise<void>;
  /** What comes first on Home: the direct messages (not for visitors). */
  children?: ReactNode;
}) {
  const [name, setName] = useState('');
  const [allowVisitors, setAllowVisitors] = useState(false);
  const [directory, setDirectory] = useState<Channel[] | null>(null);
  const [error, setError] = useState('');

  const connected = me.connection === 'connected';
  const browse = useCallback(async () => {
    if (!connected) return; // the directory lives on the server
    try {
      setDirectory(await api.directory());
      setError('');
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }, [connected]);
  useEffect(() => {
    void browse();
    const timer = setInterval(() => void browse(), 10_000);
    return () => clearInterval(timer);
  }, [browse, joined.length]);

  async function create(e: FormEvent) {
    e.preventDefault();
    try {
      const c = await api.create(name, allowVisitors);
      setName('');
      await onChanged();
      onOpen(c);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }

  async function join(c: Channel) {
    try {
      const j = await api.join(c.id);
      await onChanged();
      onOpen(j);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }

  return (
    <div className="home">
      {children}
      {me.role === 'user' && (
        <form className="create" onSubmit={create}>
          <label>
            Channel name
            <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={64} />
          </label>
          <label className="check">
            <input
              type="checkbox"
              checked={allowVisitors}
              onChange={(e) => setAllowVisitors(e.target.checked)}
            />
            Allow visitors
          </label>
          <button type="submit" className="primary">
            Create channel
          </button>
        </form>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <h2 className="section">
        Directory{' '}
        <button className="link" onClick={() => void browse()} disabled={!connected}>
          Refresh directory
        </button>
      </h2>
      {!connected && (
        <p className="hint">The directory is on the central server: back online to browse.</p>
      )}
      <ul className="directory">
        {(directory ?? []).map((c) => {
          const mine = c.joined || joined.some((j) => j.id === c.id);
          // The name opens (or joins) the channel too, as its button does.
          const go = () => (mine ? onOpen(joined.find((j) => j.id === c.id) ?? c) : join(c));
          return (
            <li key={c.id}>
              <button className="dir-name" onClick={() => void go()} tabIndex={-1}>
                # {c.name} <small>by {c.owner}</small>
              </button>
              <button onClick={() => void go()}>
                {mine ? 'Open' : 'Join'} {c.name}
              </button>
            </li>
          );
        })}
      </ul>
    </div>
  );
}
