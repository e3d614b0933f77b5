// Quick forms of overload, retry-storm (see test/support/scenario-quick.ts).
import { quickScenarioTests } from '../support/scenario-quick.js';

quickScenarioTests(['overload', 'retry-storm']);
