/**
 * An app's OpenAPI document made when it is first read, not when the process starts. Loading
 * @fastify/swagger (and @fastify/swagger-ui, with their YAML and JSON-schema dependencies) took
 * ~45 ms of the ~365 ms a server or a peer took to start on an idle machine: every process paid it,
 * and few ever read the document. The app's routes are recorded as they are registered (as
 * @fastify/swagger's own `onRoute` hook does); the first read registers them, with their
 * schemas, on a fastify instance of the document's own that has @fastify/swagger, whose
 * document is then the app's (test/openapi.test.ts and test/local-openapi.test.ts compare it
 * with the checked-in one). That instance only describes: its handlers never run.
 */
import Fastify, { type FastifyInstance, type RouteOptions } from 'fastify';
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';

/** The document's instance, made once; `more` adds to it (the REST API's pages, swagger-ui). */
export type DocsInstance = () => Promise<FastifyInstance>;

/**
 * Records `app`'s routes from now on; the answer makes (once) and gives the instance whose
 * `swagger()` is `app`'s document. Call before the routes to document are registered.
 */
export function documentLater(
  app: FastifyInstance,
  options: FastifyDynamicSwaggerOptions,
  more?: (docs: FastifyInstance) => Promise<void>,
): DocsInstance {
  const routes: RouteOptions[] = [];
  // Hidden ones are left out of the document anyway (the pages that serve it among them).
  app.addHook('onRoute', (route) => {
    if ((route.schema as { hide?: boolean } | undefined)?.hide !== true) routes.push(route);
  });
  let docs: Promise<FastifyInstance> | undefined;
  const build = async () => {
    const { default: swagger } = await import('@fastify/swagger');
    // HEAD routes are the app's own (recorded), not made again here.
    const d = Fastify({ exposeHeadRoutes: false, logger: false });
    // Its schemas are zod's, described by `options.transform`; nothing is validated here.
    d.setValidatorCompiler(() => () => true);
    d.setSerializerCompiler(() => (data) => JSON.stringify(data));
    await d.register(swagger, options);
    if (more) await more(d);
    await d.register(async (scope) => {
      for (const r of routes)
        scope.route({
          method: r.method,
          url: r.url,
          schema: r.schema,
          config: r.config,
          // Only described: a request that reaches one here (a page's URL with `..`) is refused.
          handler: async (_req, reply) => reply.callNotFound(),
        });
    });
    await d.ready();
    return d;
  };
  return () => (docs ??= build());
}
