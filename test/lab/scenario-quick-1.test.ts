// Quick forms of capacity, slow-provider (see test/support/scenario-quick.ts).
import { quickScenarioTests } from '../support/scenario-quick.js';

quickScenarioTests(['capacity', 'slow-provider']);
