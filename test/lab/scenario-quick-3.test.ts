// Quick forms of deploy, bulkhead (see test/support/scenario-quick.ts).
import { quickScenarioTests } from '../support/scenario-quick.js';

quickScenarioTests(['deploy', 'bulkhead']);
