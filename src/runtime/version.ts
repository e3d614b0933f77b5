/**
 * What /version reports. git_commit and build_time come from
 * dist/build-info.json, written by scripts/build-info.mjs at build time, so a
 * running binary says which source it was built from.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

const pkg = readJson(path.join(root, 'package.json'));
const build = readJson(path.join(root, 'dist', 'build-info.json'));

export const versionInfo = Object.freeze({
  service: 'bulwark',
  version: typeof pkg.version === 'string' ? pkg.version : 'unknown',
  git_commit: typeof build.git_commit === 'string' ? build.git_commit : 'unknown',
  build_time: typeof build.build_time === 'string' ? build.build_time : 'unknown',
  node: process.version,
});
