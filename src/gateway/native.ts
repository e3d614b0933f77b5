/**
 * Loads uWebSockets.js and proves the native binding is in use. The npm mirror
 * silently falls back to a slow pure-JS server when its binary cannot load;
 * a gateway on the fallback would pass tests and fail in production, so it
 * must refuse to start instead.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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

/**
 * The Node versions bulwark runs on: package.json `engines.node`, the one
 * place they are written (the tests check it against the uWebSockets.js
 * binaries and every runtime dependency's own `engines`). Read at run time so
 * the refusal and npm can never disagree.
 */
export const NODE_ENGINES: string = (
  JSON.parse(
    readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../package.json'), 'utf8'),
  ) as { engines: { node: string } }
).engines.node;

type Version = readonly [number, number, number];

function parseVersion(text: string): Version | null {
  const m = /^v?(\d+)(?:\.(\d+|x))?(?:\.(\d+|x))?$/.exec(text.trim());
  if (!m) return null;
  const n = (p: string | undefined) => (p === undefined || p === 'x' ? 0 : Number(p));
  return [n(m[1]), n(m[2]), n(m[3])];
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/**
 * `>=A.B.C <D` (the only shape `engines.node` is written in: a floor and the
 * next major) → the floor and the ceiling. Runtime code cannot use `semver`
 * (not a runtime dependency), so anything else is refused rather than guessed.
 */
export function parseNodeRange(range: string): { min: Version; below: Version } {
  const m = /^>=\s*(\S+)\s+<\s*(\S+)$/.exec(range.trim());
  const min = m ? parseVersion(m[1]!) : null;
  const below = m ? parseVersion(m[2]!) : null;
  if (!min || !below) throw new Error(`engines.node must read ">=A.B.C <D"; got "${range}"`);
  return { min, below };
}

/** Throws NativeBindingError (start-up refusal, exit 2) when `version` is outside `range`. */
export function checkNodeVersion(version: string = process.versions.node, range: string = NODE_ENGINES): void {
  const v = parseVersion(version);
  const { min, below } = parseNodeRange(range);
  if (v && compare(v, min) >= 0 && compare(v, below) < 0) return;
  throw new NativeBindingError(
    `Node ${version} is outside the versions bulwark supports (package.json engines: node ${range}); ` +
      `refusing to start. Run Node ${min.join('.')} or a later ${min[0]}.x release below ${below.join('.')}.`,
  );
}

/** Node majors both `engines` allows and this platform has a uWebSockets.js binary for. */
function enginesMajorsWithBinary(): number[] {
  const { min, below } = parseNodeRange(NODE_ENGINES);
  return supportedNodeMajors().filter(
    (m) => m >= min[0] && (m < below[0] || (m === below[0] && below[1] + below[2] > 0)),
  );
}

const loaded = load();
export const uwsInfo: Readonly<UwsInfo> = Object.freeze(loaded.info);

/**
 * The uWebSockets.js module; throws NativeBindingError on a Node outside
 * `engines` (undici 7, for one, needs 20.18.1) or unless the native binding
 * loaded.
 */
export function nativeUws(): typeof Uws {
  checkNodeVersion();
  if (!uwsInfo.native) {
    throw new NativeBindingError(
      `uWebSockets.js native binding did not load (Node ${process.versions.node}, ABI ${process.versions.modules}, ${process.platform}-${process.arch}); ` +
        'refusing to start on the slow pure-JS fallback. ' +
        `Run a Node that package.json engines allows (node ${NODE_ENGINES}), and unset UWS_USE_FALLBACK; ` +
        `of those, this uWebSockets.js build (${uwsInfo.version}) has a binary on ${process.platform}-${process.arch} ` +
        `for Node ${enginesMajorsWithBinary().join(', ') || 'none'}.`,
    );
  }
  return loaded.uws;
}
