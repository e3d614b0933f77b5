// Quick forms of crash, abuse (see test/support/scenario-quick.ts).
import { quickScenarioTests } from '../support/scenario-quick.js';

quickScenarioTests(['crash', 'abuse']);
