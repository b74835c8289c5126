/** Shown when the page has no API token (auth.ts): how to open it with its token. */
export function Locked() {
  return (
    <main className="entry">
      <section className="entry-card" aria-labelledby="locked-title">
        <h1 id="locked-title">Hybrid Chat</h1>
        <p role="alert">
          This page needs its peer&apos;s access token. Open the URL printed by{' '}
          <code>hchat peer</code> (the <code>ui=</code> address, with <code>?token=</code>), or the
          one <code>npm start</code> printed for this peer.
        </p>
        <p className="hint">
          The token is also in the file <code>api-token</code> of the peer&apos;s data folder.
        </p>
      </section>
    </main>
  );
}
