// Writes dist/build-info.json (do not edit: generated at every build) with the
// commit and time of the build, for GET /version.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';

// GIT_COMMIT wins (image builds have no .git in their context).
let commit = process.env.GIT_COMMIT || 'unknown';
if (!process.env.GIT_COMMIT) {
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    // not a git checkout (a tarball install): leave it unknown
  }
}
mkdirSync('dist', { recursive: true });
writeFileSync(
  'dist/build-info.json',
  JSON.stringify({ git_commit: commit, build_time: new Date().toISOString() }) + '\n',
);
