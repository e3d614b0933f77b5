// Quick forms of cascade, rolling-restart (see test/support/scenario-quick.ts).
import { quickScenarioTests } from '../support/scenario-quick.js';

quickScenarioTests(['cascade', 'rolling-restart']);
