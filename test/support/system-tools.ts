/**
 * System binaries some suites need (Chromium, promtool/prometheus, HAProxy),
 * none of which npm installs. On a developer's fresh machine a missing one
 * skips the suites that need it, with one loud line naming the Debian package
 * to install; under BULWARK_REQUIRE_SYSTEM_TOOLS=1 (what .ci/run sets) a
 * missing one fails instead, so CI always runs everything.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

export const REQUIRE_ENV = 'BULWARK_REQUIRE_SYSTEM_TOOLS';

export interface SystemTool {
  /** Absolute path of the binary, when found. */
  path: string | undefined;
  /** A skip reason for node:test (`{ skip: tool.skip }`), or false when the tool is there. */
  skip: string | false;
}

/**
 * Looked in after PATH: a test runner's PATH often lacks the sbin folders, and
 * Debian installs haproxy in /usr/sbin.
 */
export const SYSTEM_TOOL_DIRS: readonly string[] = ['/usr/local/bin', '/usr/bin', '/usr/sbin'];
/**
 * Replaces SYSTEM_TOOL_DIRS (a PATH-style list; empty means none), so a run can
 * prove the skip path on a machine where the tools are installed:
 * `PATH=/tmp/emptybin BULWARK_SYSTEM_TOOL_DIRS= node --test …`.
 */
export const DIRS_ENV = 'BULWARK_SYSTEM_TOOL_DIRS';

const said = new Set<string>();

/**
 * Find `name` ($NAME_UPPER override, then PATH, then SYSTEM_TOOL_DIRS or
 * $BULWARK_SYSTEM_TOOL_DIRS). Missing: throws under
 * BULWARK_REQUIRE_SYSTEM_TOOLS=1, otherwise returns a skip reason and prints it
 * once to stderr.
 */
export function systemTool(name: string, debianPackage: string, env: NodeJS.ProcessEnv = process.env): SystemTool {
  const override = env[name.toUpperCase()];
  const dirs = env[DIRS_ENV] === undefined ? SYSTEM_TOOL_DIRS : env[DIRS_ENV].split(path.delimiter);
  const candidates = [
    override,
    ...[...(env.PATH ?? '').split(path.delimiter), ...dirs].filter(Boolean).map((d) => path.join(d, name)),
  ];
  const found = candidates.find((p): p is string => typeof p === 'string' && p !== '' && existsSync(p));
  if (found) return { path: found, skip: false };
  const how = `${name} is not installed: apt-get install ${debianPackage} (or set ${name.toUpperCase()}=/path/to/${name})`;
  if (env[REQUIRE_ENV] === '1') throw new Error(`${how}; ${REQUIRE_ENV}=1 makes a missing tool fail the run`);
  const reason = `SKIPPED: ${how}`;
  if (!said.has(name)) {
    said.add(name);
    process.stderr.write(`\n*** ${reason} ***\n\n`);
  }
  return { path: undefined, skip: reason };
}

export const chromiumTool = (): SystemTool => systemTool('chromium', 'chromium');
export const promtoolTool = (): SystemTool => systemTool('promtool', 'prometheus');
export const prometheusTool = (): SystemTool => systemTool('prometheus', 'prometheus');
export const haproxyTool = (): SystemTool => systemTool('haproxy', 'haproxy');
