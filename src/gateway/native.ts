/**
 * Loads uWebSockets.js and proves the native binding is in use. The npm mirror
 * silently falls back to a slow pure-JS server when its binary cannot load;
 * a gateway on the fallback would pass tests and fail in production, so it
 * must refuse to start instead.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as Uws from 'uWebSockets.js';

const require = createRequire(import.meta.url);

export interface UwsInfo {
  native: boolean;
  /** Package version of the uWebSockets.js build. */
  version: string;
  /** File name of the loaded native binary, when native. */
  binary: string | null;
}

export class NativeBindingError extends Error {
  override readonly name = 'NativeBindingError';
}

function load(): { uws: typeof Uws; info: UwsInfo } {
  const uws = require('uWebSockets.js') as typeof Uws;
  const pkgPath = require.resolve('uWebSockets.js/package.json');
  const version = (require(pkgPath) as { version: string }).version;
  // A native addon loaded through require() is cached under its .node path;
  // the fallback loads only JavaScript.
  const binary = Object.keys(require.cache).find((k) => /uws_[^/\\]+\.node$/.test(k));
  return { uws, info: { native: binary !== undefined, version, binary: binary ? path.basename(binary) : null } };
}

const loaded = load();
export const uwsInfo: Readonly<UwsInfo> = Object.freeze(loaded.info);

/** The uWebSockets.js module; throws NativeBindingError unless the native binding loaded. */
export function nativeUws(): typeof Uws {
  if (!uwsInfo.native) {
    throw new NativeBindingError(
      `uWebSockets.js native binding did not load (Node ${process.versions.node}, ABI ${process.versions.modules}, ${process.platform}-${process.arch}); ` +
        'refusing to start on the slow pure-JS fallback. Use a Node version the uWebSockets.js build ships a binary for, and unset UWS_USE_FALLBACK.',
    );
  }
  return loaded.uws;
}
