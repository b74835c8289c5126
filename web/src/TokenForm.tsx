/**
 * The "New token" form of the bots panel (docs/REST.md "Tokens"): a name, the account it acts
 * as (you or one of your bots), read or read and write, optionally some of your channels only,
 * optionally an expiry in days. The made token is shown once by `MadeTokenBox`, with Copy.
 */
import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import type { Bot, Channel, MadeToken, NewToken } from './api.js';
import { API_LIMITS } from '../../src/shared/limits.js';

export function TokenForm({
  me,
  bots,
  channels,
  onCreate,
}: {
  me: string;
  bots: Bot[];
  /** The channels you are in: a token may be limited to some of them. */
  channels: Channel[];
  /** Makes the token; resolves true when it was made (the form is then cleared). */
  onCreate: (t: NewToken) => Promise<boolean>;
}) {
  const id = useId();
  const [name, setName] = useState('');
  const [account, setAccount] = useState('');
  const [write, setWrite] = useState(false);
  const [only, setOnly] = useState<string[]>([]);
  const [days, setDays] = useState('');
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const t: NewToken = { name: name.trim(), scopes: write ? ['read', 'write'] : ['read'] };
    if (account) t.account = account;
    if (only.length > 0) t.channels = only;
    if (days) t.expiresInDays = Number(days);
    setBusy(true);
    if (await onCreate(t)) {
      setName('');
      setOnly([]);
      setDays('');
    }
    setBusy(false);
  }

  return (
    <form className="token-form" onSubmit={submit}>
      <label htmlFor={`${id}-name`}>Token name</label>
      <input
        id={`${id}-name`}
        value={name}
        maxLength={64}
        required
        autoComplete="off"
        onChange={(e) => setName(e.target.value)}
      />
      <label htmlFor={`${id}-account`}>Acts as</label>
      <select id={`${id}-account`} value={account} onChange={(e) => setAccount(e.target.value)}>
        <option value="">{me} (you)</option>
        {bots.map((b) => (
          <option key={b.username} value={b.username}>
            {b.username} (bot)
          </option>
        ))}
      </select>
      <fieldset>
        <legend>Access</legend>
        <label className="check">
          <input
            type="radio"
            name={`${id}-scope`}
            checked={!write}
            onChange={() => setWrite(false)}
          />
          Read
        </label>
        <label className="check">
          <input
            type="radio"
            name={`${id}-scope`}
            checked={write}
            onChange={() => setWrite(true)}
          />
          Read and write
        </label>
      </fieldset>
      {channels.length > 0 && (
        <fieldset>
          <legend>Only these channels</legend>
          <p className="hint">None ticked: every channel the account is in.</p>
          {channels.slice(0, API_LIMITS.maxTokenChannels).map((c) => (
            <label className="check" key={c.id}>
              <input
                type="checkbox"
                checked={only.includes(c.id)}
                onChange={(e) =>
                  setOnly((o) => (e.target.checked ? [...o, c.id] : o.filter((x) => x !== c.id)))
                }
              />
              #{c.name}
            </label>
          ))}
        </fieldset>
      )}
      <label htmlFor={`${id}-days`}>Expires after (days)</label>
      <input
        id={`${id}-days`}
        type="number"
        min={1}
        max={API_LIMITS.maxTokenDays}
        step={1}
        value={days}
        placeholder="never"
        aria-describedby={`${id}-days-hint`}
        onChange={(e) => setDays(e.target.value)}
      />
      <p className="hint" id={`${id}-days-hint`}>
        1 to {API_LIMITS.maxTokenDays}; empty: until you revoke it.
      </p>
      <div className="confirm-buttons">
        <button type="submit" className="primary-fill" disabled={busy}>
          Create token
        </button>
      </div>
    </form>
  );
}

/** A token just made: its secret, shown this once, with Copy. It takes the focus. */
export function MadeTokenBox({ made, onDone }: { made: MadeToken; onDone: () => void }) {
  const id = useId();
  const field = useRef<HTMLInputElement>(null);
  const [said, setSaid] = useState('');
  useEffect(() => field.current?.focus(), [made.id]);

  async function copy() {
    try {
      await navigator.clipboard.writeText(made.token);
      setSaid('Copied.');
    } catch {
      // The browser refused the clipboard: the token is selected for Ctrl+C instead.
      field.current?.select();
      setSaid('This browser refused to copy: the token is selected, press Ctrl+C.');
    }
  }

  return (
    <div className="made-token" role="group" aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>Token “{made.name}” made</h3>
      <p className="warning" id={`${id}-note`}>
        Copy it now: you will not see it again. Anyone who has it acts as {made.account}.
      </p>
      <label htmlFor={`${id}-token`}>Your new token</label>
      <input
        ref={field}
        id={`${id}-token`}
        className="token-secret"
        value={made.token}
        readOnly
        spellCheck={false}
        aria-describedby={`${id}-note`}
        onFocus={(e) => e.currentTarget.select()}
      />
      <p className="hint" role="status">
        {said}
      </p>
      <div className="confirm-buttons">
        <button type="button" className="primary-fill" onClick={() => void copy()}>
          Copy
        </button>
        <button type="button" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}
