/** Small HTTP helpers for the simulator tests (global fetch, JSON in and out). */

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test assertions read arbitrary fields
}

export async function request(url: string, init?: RequestInit): Promise<JsonResponse> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
}

export interface ChargeBody {
  amount?: unknown;
  currency?: unknown;
  source?: unknown;
  reference?: unknown;
  description?: unknown;
  metadata?: unknown;
}

export const VISA: ChargeBody = { amount: 1000, currency: 'usd', source: 'tok_visa' };

export function postCharge(
  baseUrl: string,
  key: string | undefined,
  body: ChargeBody | string = VISA,
  init: RequestInit = {},
): Promise<JsonResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key !== undefined) headers['idempotency-key'] = key;
  return request(`${baseUrl}/v1/charges`, {
    ...init,
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export function putFaults(baseUrl: string, faults: unknown): Promise<JsonResponse> {
  return request(`${baseUrl}/_faults`, { method: 'PUT', body: JSON.stringify(faults) });
}

export async function reset(baseUrl: string): Promise<void> {
  await request(`${baseUrl}/_faults`, { method: 'DELETE' });
  await request(`${baseUrl}/_ledger`, { method: 'DELETE' });
}

export async function waitFor(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > timeoutMs) throw new Error('waitFor: condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
