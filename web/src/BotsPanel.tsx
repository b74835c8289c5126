/**
 * "Bots and tokens" (issue 17; docs/REST.md), Discord's developer settings: a modal dialog in
 * which a user makes bot accounts, makes REST API tokens for itself or its bots (the secret is
 * shown once), and lists and revokes its tokens. What the peer or the server refuses is said
 * in the dialog.
 */
import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { useModal } from './useModal.js';
import { api, ApiError, type Bot, type Channel, type MadeToken, type Token } from './api.js';
import { Confirm } from './Confirm.js';
import { MadeTokenBox, TokenForm } from './TokenForm.js';
import './bots.css';

export function BotsPanel({ me, onClose }: { me: string; onClose: () => void }) {
  const dialog = useModal();
  const tokensHeading = useRef<HTMLHeadingElement>(null);
  const id = useId();
  const [bots, setBots] = useState<Bot[]>([]);
  const [tokens, setTokens] = useState<Token[] | null>(null);
  const [channels, setChannels] = useState<Channel[]>([]);
  const [botName, setBotName] = useState('');
  const [made, setMade] = useState<MadeToken | null>(null);
  const [revoking, setRevoking] = useState<Token | null>(null);
  const [error, setError] = useState('');
  /** Bumped when the revoke confirmation closes: the focus goes to the list once it is gone. */
  const [answered, setAnswered] = useState(0);

  useEffect(() => {
    if (answered > 0) tokensHeading.current?.focus();
  }, [answered]);

  // useModal gives the focus back to "Bots and tokens" once the panel is gone.
  const close = onClose;

  /** Runs one call of the API; its refusal is shown in the dialog. True when it succeeded. */
  const attempt = useCallback(async (f: () => Promise<unknown>): Promise<boolean> => {
    try {
      setError('');
      await f();
      return true;
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
      return false;
    }
  }, []);

  const reload = useCallback(
    () =>
      attempt(async () => {
        const [b, t, c] = await Promise.all([api.bots(), api.tokens(), api.channels()]);
        setBots(b);
        setTokens(t);
        setChannels(c);
      }),
    [attempt],
  );
  useEffect(() => void reload(), [reload]);

  async function createBot(e: FormEvent) {
    e.preventDefault();
    if (await attempt(() => api.createBot(botName.trim()))) {
      setBotName('');
      await reload();
    }
  }

  const names = new Map(channels.map((c) => [c.id, `#${c.name}`]));
  return (
    <dialog
      ref={dialog}
      className="confirm bots-panel"
      aria-labelledby={`${id}-title`}
      onCancel={(e) => {
        e.preventDefault();
        // Escape in the revoke confirmation closes only that one.
        if (e.target === e.currentTarget) close();
      }}
    >
      <h2 id={`${id}-title`}>Bots and tokens</h2>
      <p className="hint">
        Bots and scripts use the server&apos;s REST API with a token. A bot is an account of its own
        that you own; it signs its messages, which others see marked BOT.
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}

      <section aria-labelledby={`${id}-bots`}>
        <h3 id={`${id}-bots`}>Your bots</h3>
        {bots.length === 0 ? (
          <p className="hint">No bots yet.</p>
        ) : (
          <ul className="bot-list">
            {bots.map((b) => (
              <li key={b.username}>
                {b.username} <span className="hint">made {day(b.createdAt)}</span>
              </li>
            ))}
          </ul>
        )}
        <form className="bot-form" onSubmit={createBot}>
          <label htmlFor={`${id}-bot-name`}>Bot username</label>
          <input
            id={`${id}-bot-name`}
            value={botName}
            required
            minLength={2}
            maxLength={32}
            pattern="[A-Za-z0-9_.\-]{2,32}"
            autoComplete="off"
            autoFocus
            aria-describedby={`${id}-bot-hint`}
            onChange={(e) => setBotName(e.target.value)}
          />
          <button type="submit" className="primary-fill">
            Create bot
          </button>
          <p className="hint" id={`${id}-bot-hint`}>
            2 to 32 letters, digits, _ . or -.
          </p>
        </form>
      </section>

      <section aria-labelledby={`${id}-new`}>
        <h3 id={`${id}-new`}>New token</h3>
        {made ? (
          <MadeTokenBox
            made={made}
            onDone={() => {
              setMade(null);
              tokensHeading.current?.focus();
            }}
          />
        ) : (
          <TokenForm
            me={me}
            bots={bots}
            channels={channels}
            onCreate={async (t) => {
              let answer: MadeToken | undefined;
              const ok = await attempt(async () => (answer = await api.createToken(t)));
              if (ok && answer) {
                setMade(answer);
                await reload();
              }
              return ok;
            }}
          />
        )}
      </section>

      <section aria-labelledby={`${id}-tokens`}>
        <h3 id={`${id}-tokens`} ref={tokensHeading} tabIndex={-1}>
          Your tokens
        </h3>
        {tokens?.length === 0 && <p className="hint">No tokens yet.</p>}
        <ul className="token-list">
          {tokens?.map((t) => (
            <li key={t.id} className={t.revokedAt !== null ? 'revoked' : undefined}>
              <span className="token-name">{t.name}</span>
              <dl>
                <dt>Account</dt>
                <dd>{t.account}</dd>
                <dt>Access</dt>
                <dd>{t.scopes.includes('write') ? 'read and write' : 'read'}</dd>
                <dt>Channels</dt>
                <dd>{t.channels ? t.channels.map((c) => names.get(c) ?? c).join(', ') : 'all'}</dd>
                <dt>Created</dt>
                <dd>{day(t.createdAt)}</dd>
                <dt>Expires</dt>
                <dd>{t.expiresAt === null ? 'never' : day(t.expiresAt)}</dd>
                {t.revokedAt !== null && (
                  <>
                    <dt>Revoked</dt>
                    <dd>{day(t.revokedAt)}</dd>
                  </>
                )}
              </dl>
              {t.revokedAt === null && (
                <button
                  type="button"
                  className="danger"
                  aria-label={`Revoke ${t.name}`}
                  onClick={() => setRevoking(t)}
                >
                  Revoke
                </button>
              )}
            </li>
          ))}
        </ul>
      </section>

      <div className="confirm-buttons">
        <button type="button" onClick={close}>
          Close
        </button>
      </div>
      {revoking && (
        <Confirm
          title={`Revoke “${revoking.name}”`}
          text={`Revoke the token “${revoking.name}” of ${revoking.account}? Whatever uses it is refused from its next request, on every server. This cannot be undone.`}
          action="Revoke"
          onAnswer={async (yes) => {
            const t = revoking;
            setRevoking(null);
            setAnswered((n) => n + 1);
            if (yes && (await attempt(() => api.revokeToken(t.id)))) await reload();
          }}
        />
      )}
    </dialog>
  );
}

function day(ms: number): string {
  return new Date(ms).toLocaleDateString(undefined, { dateStyle: 'medium' });
}
