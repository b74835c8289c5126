/**
 * The page a peer serves at `/` when it was built without its web UI (`npm run build` makes
 * dist/web): what this process is and the local API it offers. Static: nothing of the user's is
 * rendered into it.
 */
export function renderHome(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hybrid Chat peer</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; background: #1e1f22; color: #dbdee1; margin: 2rem auto; max-width: 46rem; padding: 0 1rem; }
  code { background: #2b2d31; padding: 0 .3em; border-radius: 3px; }
  h1 { font-size: 1.4rem; }
</style>
</head>
<body>
<h1>Hybrid Chat peer</h1>
<p>This peer is running, but was built without its web UI (<code>npm run build</code> makes it). Its local JSON API answers under <code>/api/</code> on this address only:
<code>POST /api/register</code>, <code>POST /api/login</code>, <code>POST /api/visitor</code>,
<code>GET /api/me</code>, <code>PUT /api/status</code>, <code>GET /api/peers</code>,
<code>GET /api/directory</code>, <code>GET|POST /api/channels</code>,
<code>POST /api/channels/:id/join</code>, <code>GET|POST /api/channels/:id/messages</code>,
<code>GET /api/events</code> (server-sent events).</p>
<p>Every call needs this peer's API token: send <code>Authorization: Bearer &lt;token&gt;</code> (the token is in the file <code>api-token</code> of the peer's data folder), or open the <code>ui=</code> URL printed by <code>hchat peer</code>, with its <code>?token=</code>.</p>
<p>The README of the project describes each call.</p>
</body>
</html>
`;
}
