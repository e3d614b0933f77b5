/**
 * A listener that serves only GET /metrics, for deployments that keep the
 * scrape off the public port (METRICS_PORT): the Kubernetes Service publishes
 * the HTTP port only, Prometheus scrapes the pods' metrics port directly, and
 * a NetworkPolicy lets only the monitoring namespace reach it.
 */
import type { us_listen_socket } from 'uWebSockets.js';
import { problem } from '../errors/catalogue.js';
import { Exchange } from './http.js';
import { nativeUws } from './native.js';

const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class MetricsListener {
  readonly #app = nativeUws().App();
  #socket: us_listen_socket | null = null;

  constructor(render: () => Promise<string>, onError: (e: unknown) => void) {
    this.#app.get('/metrics', (res) => {
      const x = new Exchange(res); // onAborted is attached before the render's await
      render().then(
        (body) => x.send({ status: 200, body, contentType: METRICS_CONTENT_TYPE }),
        (e: unknown) => {
          onError(e);
          x.send(problem('internal_error'));
        },
      );
    });
    this.#app.any('/*', (res, req) => {
      const x = new Exchange(res);
      x.head = req.getMethod() === 'head';
      x.send(problem('not_found', { detail: 'This port serves GET /metrics only' }));
    });
  }

  listen(host: string, port: number): Promise<number> {
    const uws = nativeUws();
    return new Promise((resolve, reject) => {
      this.#app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`cannot listen for metrics on ${host}:${port}`));
        this.#socket = socket;
        resolve(uws.us_socket_local_port(socket));
      });
    });
  }

  close(): void {
    if (this.#socket) nativeUws().us_listen_socket_close(this.#socket);
    this.#socket = null;
  }
}
