/**
 * Loads uWebSockets.js and proves the native binding is in use. The npm mirror
 * silently falls back to a slow pure-JS server when its binary cannot load;
 * a gateway on the fallback would pass tests and fail in production, so it
 * must refuse to start instead.
 */
import { readdirSync } from 'node:fs';
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

/** Node's module ABI → its major version, for the ABIs uWebSockets.js builds ship. */
const NODE_MAJOR_OF_ABI: Readonly<Record<number, number>> = {
  83: 14,
  93: 16,
  108: 18,
  115: 20,
  120: 21,
  127: 22,
  131: 23,
  137: 24,
};

/**
 * The Node major versions this uWebSockets.js build ships a binary for on this
 * platform, read from its binaries folder (uws_<platform>_<arch>_<abi>.node).
 */
export function supportedNodeMajors(
  dir = path.dirname(require.resolve('uWebSockets.js/package.json')),
  platform: string = process.platform,
  arch: string = process.arch,
): number[] {
  let files: string[];
  try {
    files = readdirSync(path.join(dir, 'binaries'));
  } catch {
    return [];
  }
  const prefix = `uws_${platform}_${arch}_`;
  const majors = files
    .filter((f) => f.startsWith(prefix) && f.endsWith('.node'))
    .map((f) => NODE_MAJOR_OF_ABI[Number(f.slice(prefix.length, -'.node'.length))])
    .filter((m): m is number => m !== undefined);
  return [...new Set(majors)].sort((a, b) => a - b);
}

const loaded = load();
export const uwsInfo: Readonly<UwsInfo> = Object.freeze(loaded.info);

/** The uWebSockets.js module; throws NativeBindingError unless the native binding loaded. */
export function nativeUws(): typeof Uws {
  if (!uwsInfo.native) {
    throw new NativeBindingError(
      `uWebSockets.js native binding did not load (Node ${process.versions.node}, ABI ${process.versions.modules}, ${process.platform}-${process.arch}); ` +
        'refusing to start on the slow pure-JS fallback. ' +
        `This uWebSockets.js build (${uwsInfo.version}) ships binaries for Node ${supportedNodeMajors().join(', ') || 'no version'} on ${process.platform}-${process.arch}; ` +
        'run one of those (package.json "engines" names the one we test), and unset UWS_USE_FALLBACK.',
    );
  }
  return loaded.uws;
}
