/**
 * The load generator as a library, for the scenario runner: build options
 * with `resolveLoadOptions` (or `parseLoadArgs` from argv), run with
 * `runLoad`, and use `writeOutcomes` / `renderReport` for the same files and
 * table the CLI writes.
 */
export { runLoad } from './run.js';
export { parseLoadArgs, resolveLoadOptions, LOAD_SPECS, type LoadInput, type ParsedLoadArgs } from './options.js';
export { writeOutcomes, parseOutcomes } from './outcomes.js';
export { renderReport } from './report.js';
export { parseSteps } from './schedule.js';
export { parseMix } from './requests.js';
export type * from './types.js';
