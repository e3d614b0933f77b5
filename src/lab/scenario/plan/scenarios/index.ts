/**
 * Every scenario, in the order `bulwark bench` runs them: the healthy
 * ceiling first (it frames every other number), then single faults, then the
 * composed failure, crashes, misbehaving clients, and last the scale-out shape (two replicas behind HAProxy).
 */
import type { ScenarioDefinition } from '../definition.js';
import { abuse } from './abuse.js';
import { bulkhead } from './bulkhead.js';
import { capacity } from './capacity.js';
import { cascade } from './cascade.js';
import { crash } from './crash.js';
import { deploy } from './deploy.js';
import { overload } from './overload.js';
import { retryStorm } from './retry-storm.js';
import { rollingRestart } from './rolling-restart.js';
import { slowProvider } from './slow-provider.js';

export const SCENARIOS: readonly ScenarioDefinition[] = [
  capacity,
  slowProvider,
  overload,
  retryStorm,
  deploy,
  bulkhead,
  cascade,
  crash,
  abuse,
  rollingRestart,
];

export function scenarioNamed(name: string): ScenarioDefinition | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
