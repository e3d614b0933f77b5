/**
 * Every scenario, in the order `bulwark bench` runs them: the healthy
 * ceiling first (it frames every other number), then single faults, then the
 * composed failure.
 */
import type { ScenarioDefinition } from '../definition.js';
import { bulkhead } from './bulkhead.js';
import { capacity } from './capacity.js';
import { cascade } from './cascade.js';
import { deploy } from './deploy.js';
import { overload } from './overload.js';
import { retryStorm } from './retry-storm.js';
import { slowProvider } from './slow-provider.js';

export const SCENARIOS: readonly ScenarioDefinition[] = [capacity, slowProvider, overload, retryStorm, deploy, bulkhead, cascade];

export function scenarioNamed(name: string): ScenarioDefinition | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
