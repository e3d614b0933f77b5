/**
 * Holds HTTP exchanges to the OpenAPI document: the operation (path template
 * and method) must exist, the status must be one of its responses, and a JSON
 * body must match that response's schema (JSON Schema 2020-12, as OpenAPI 3.1
 * uses). Exchanges the document does not describe on purpose (/metrics, 404 and
 * 405 for unknown routes and methods) are left out by the caller.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { ErrorObject, ValidateFunction } from 'ajv';

type Json = Record<string, unknown>;

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;

export interface Exchange {
  method: string;
  /** Path with query, as sent. */
  path: string;
  status: number;
  contentType: string | undefined;
  body: string;
}

export class Conformance {
  readonly #doc: Json;
  readonly #ajv: Ajv2020;
  readonly #cache = new Map<string, ValidateFunction>();

  constructor(doc: Json) {
    this.#doc = doc;
    this.#ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(this.#ajv);
    this.#ajv.addSchema({ $id: 'openapi.json', components: (doc as { components: Json }).components }, 'openapi.json');
  }

  /** The path template of the document that `path` matches, if any. */
  template(path: string): string | undefined {
    const bare = path.split('?')[0]!;
    for (const t of Object.keys(this.#doc.paths as Json)) {
      const re = new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      if (re.test(bare)) return t;
    }
    return undefined;
  }

  /** Problems of a JSON request body against the operation's request schema. */
  checkRequestBody(method: string, path: string, body: unknown): string[] {
    const t = this.template(path);
    const op = t ? (((this.#doc.paths as Json)[t] as Json)[method.toLowerCase()] as Json | undefined) : undefined;
    const schema = ((op?.requestBody as Json | undefined)?.content as Record<string, { schema: Json }> | undefined)?.[
      'application/json'
    ]?.schema;
    if (!schema) return [`${method} ${path}: no JSON request body documented`];
    const key = `${t} ${method} request`;
    let validate = this.#cache.get(key);
    if (!validate) {
      validate = this.#ajv.compile(rebase(schema));
      this.#cache.set(key, validate);
    }
    return validate(body)
      ? []
      : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '(body)'} ${e.message ?? ''}`);
  }

  /** Problems with one exchange (empty when it conforms). */
  check(x: Exchange): string[] {
    const where = `${x.method} ${x.path} → ${x.status}`;
    const t = this.template(x.path);
    if (!t) return [`${where}: no path in the document`];
    const op = ((this.#doc.paths as Json)[t] as Json)[x.method.toLowerCase()] as Json | undefined;
    if (!op) return [`${where}: no ${x.method} operation on ${t}`];
    const response = (op.responses as Json)[String(x.status)] as Json | undefined;
    if (!response)
      return [`${where}: status not documented (documented: ${Object.keys(op.responses as Json).join(', ')})`];
    const content = response.content as Record<string, { schema: Json }> | undefined;
    if (!content) return [];
    const mediaType = (x.contentType ?? '').split(';')[0]!.trim();
    const media = content[mediaType];
    if (!media)
      return [
        `${where}: content type ${mediaType || '(none)'} not documented (documented: ${Object.keys(content).join(', ')})`,
      ];
    let body: unknown;
    try {
      body = JSON.parse(x.body);
    } catch {
      return [`${where}: body is not JSON`];
    }
    const key = `${t} ${x.method} ${x.status} ${mediaType}`;
    let validate = this.#cache.get(key);
    if (!validate) {
      validate = this.#ajv.compile(rebase(media.schema));
      this.#cache.set(key, validate);
    }
    if (validate(body)) return [];
    return (validate.errors ?? []).map(
      (e: ErrorObject) => `${where}: ${e.instancePath || '(body)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`,
    );
  }
}

/** `#/components/...` references, made absolute against the registered document. */
function rebase(schema: unknown): Json {
  return JSON.parse(JSON.stringify(schema).replace(/"\$ref":"#\//g, '"$ref":"openapi.json#/')) as Json;
}
