/**
 * The machine a report was measured on, for the top of the report: a number
 * means nothing without the cores, CPU and memory it came from.
 */
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import type { MachineInfo } from '../../report/types.js';

function cpuModel(): string {
  // os.cpus() can be empty in some containers; /proc/cpuinfo is the fallback.
  const fromOs = cpus()[0]?.model?.trim();
  if (fromOs) return fromOs;
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // not Linux
  }
  return 'unknown';
}

export function machineInfo(date = new Date()): MachineInfo {
  return {
    cores: cpus().length,
    cpu_model: cpuModel(),
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    date: date.toISOString(),
  };
}
