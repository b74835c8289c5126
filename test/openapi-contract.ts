/**
 * Contract checks of an API against the OpenAPI document it serves (issue 17): the REST API v1
 * (`/api/v1/openapi.json`) and a peer's local API (`/api/openapi.json`). Every answer a test
 * gets is validated by the route template, method and status it was answered with (an exact
 * status, else its range such as `4XX`). An answer with no documented status, a body where the
 * document says none, or a JSON body its schema does not allow, fails the test that got it.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';

type Answer = { content?: Record<string, unknown> };
type Spec = { paths: Record<string, Record<string, { responses: Record<string, Answer> }>> };

/**
 * A checker of answers against the document served at `docPath` of `httpBase`, fetched with
 * `headers` (the local API's token).
 */
export async function contract(
  httpBase: string,
  docPath = '/api/v1/openapi.json',
  headers: Record<string, string> = {},
) {
  const res = await fetch(new URL(docPath, httpBase), { headers });
  const spec = (await res.json()) as Spec;
  // Formats (ipv4, …) are not checked: ajv knows none without ajv-formats.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema(spec, 'spec');
  // Fixed segments first: `/api/streams/{id}/watch` is no `/api/streams/{id}/{x}`.
  const params = (p: string) => p.split('{').length;
  const routes = Object.keys(spec.paths)
    .sort((a, b) => params(a) - params(b))
    .map((p) => ({ template: p, re: new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+')}$`) }));
  const ptr = (...parts: string[]) =>
    parts.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

  /** The documented answer of `method path` with `status`, and where it is in the document. */
  function answerOf(method: string, path: string, status: number) {
    const bare = path.split('?')[0]!;
    const route = routes.find((r) => r.re.test(bare));
    if (!route) throw new Error(`no documented route for ${method} ${bare}`);
    const m = method.toLowerCase();
    const op = spec.paths[route.template]![m];
    if (!op) throw new Error(`${method} ${route.template} is not documented`);
    const key = [String(status), `${String(status)[0]}XX`].find((k) => op.responses[k]);
    if (!key) throw new Error(`${method} ${route.template}: status ${status} is not documented`);
    return { bare, route, m, key, answer: op.responses[key]! };
  }

  /**
   * Throws unless an answer that is not JSON (an event stream, a file, a picture), answered
   * `status` to `method path`, has a media type the document gives it.
   */
  function checkType(method: string, path: string, status: number, type: string | null): void {
    const { bare, answer } = answerOf(method, path, status);
    const media = (type ?? '').split(';')[0]!.trim().toLowerCase();
    const [top] = media.split('/');
    const documented = Object.keys(answer.content ?? {});
    if (!documented.some((d) => d === media || d === '*/*' || d === `${top}/*`))
      throw new Error(`${method} ${bare} ${status}: ${media} is none of ${documented.join(', ')}`);
  }

  /** Throws unless `body`, answered `status` to `method path`, is what the document says. */
  function check(method: string, path: string, status: number, body: unknown): void {
    const { bare, route, m, key, answer } = answerOf(method, path, status);
    if (!answer.content || Object.keys(answer.content).length === 0) {
      if (body !== undefined && body !== '')
        throw new Error(`${method} ${bare} ${status}: a body where the document says none`);
      return;
    }
    if (!answer.content['application/json'])
      throw new Error(`${method} ${bare} ${status}: not a JSON answer (check its bytes instead)`);
    const ref = `spec#/${ptr('paths', route.template, m, 'responses', key, 'content', 'application/json', 'schema')}`;
    const validate = ajv.getSchema(ref);
    if (!validate) throw new Error(`no schema at ${ref}`);
    if (!validate(body))
      throw new Error(
        `${method} ${bare} ${status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 400)}`,
      );
  }
  return { spec, check, checkType };
}
