/**
 * Contract checks of the REST API v1 (issue 17): every answer a test gets is validated against
 * the OpenAPI document the server serves (`/api/v1/openapi.json`), by the route template, method
 * and status it was answered with. An answer with no documented status, or a body its schema
 * does not allow, fails the test that got it.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';

type Spec = { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };

/** A checker of answers against the served document. */
export async function contract(httpBase: string) {
  const spec = (await (await fetch(new URL('/api/v1/openapi.json', httpBase))).json()) as Spec;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema(spec, 'spec');
  const routes = Object.keys(spec.paths).map((p) => ({
    template: p,
    re: new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }));
  const ptr = (...parts: string[]) =>
    parts.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

  /** Throws unless `body`, answered `status` to `method path`, is what the document says. */
  function check(method: string, path: string, status: number, body: unknown): void {
    const bare = path.split('?')[0]!;
    const route = routes.find((r) => r.re.test(bare));
    if (!route) throw new Error(`no documented route for ${method} ${bare}`);
    const op = spec.paths[route.template]![method.toLowerCase()];
    if (!op) throw new Error(`${method} ${route.template} is not documented`);
    if (!op.responses[String(status)])
      throw new Error(`${method} ${route.template}: status ${status} is not documented`);
    const ref = `spec#/${ptr('paths', route.template, method.toLowerCase(), 'responses', String(status), 'content', 'application/json', 'schema')}`;
    const validate = ajv.getSchema(ref);
    if (!validate) throw new Error(`no schema at ${ref}`);
    if (!validate(body))
      throw new Error(
        `${method} ${bare} ${status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 400)}`,
      );
  }
  return { spec, check };
}
