/**
 * The stages of the charge path that the charge service times (claim,
 * provider attempt, record, and the waits for DB and downstream slots). The
 * service names them; src/metrics lays out a histogram for each, so the list
 * lives with the domain that produces the timings.
 */
export const CHARGE_STAGES = [
  'claim',
  'provider_attempt',
  'record',
  'db_acquire_wait',
  'provider_bulkhead_wait',
  'fx_bulkhead_wait',
  'fx_call',
] as const;
export type ChargeStage = (typeof CHARGE_STAGES)[number];
