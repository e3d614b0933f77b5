/**
 * The deployment artefacts hold the numbers a rolling restart depends on:
 * every Kubernetes object is valid against the API schemas (kubernetes-models),
 * the probes, grace period, PDB and Service line up with the gateway's real
 * settings, the HAProxy configuration parses (`haproxy -c`) and takes a
 * draining gateway out before it stops accepting, and the Dockerfile runs the
 * gateway on Node 20. These are file checks: nothing here needs a cluster.
 *
 * kubernetes-models accepts unknown fields, so a misspelt field would pass
 * schema validation; every field that matters is therefore read by name below,
 * and a typo in one of them fails as "missing".
 */
import { haproxyTool, promtoolTool } from '../support/system-tools.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy, type INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ServiceMonitor, type IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import {
  ConfigMap,
  Namespace,
  Secret,
  Service,
  type IConfigMap,
  type IContainer,
  type IProbe,
  type ISecret,
  type IService,
} from 'kubernetes-models/v1';
import { parseOptions } from '../../src/config/options.js';
import { checkCommon, gatewaySpecs } from '../../src/config/service.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const K8S_DIR = path.join(ROOT, 'deploy/k8s');
const HAPROXY_CFG = path.join(ROOT, 'deploy/haproxy/haproxy.cfg');
const DOCKERFILE = path.join(ROOT, 'Dockerfile');

// ---------------------------------------------------------------- Kubernetes

interface Validatable {
  validate(): void;
}

/** apiVersion/kind → schema-checked model. A kind missing here fails the test: add it, do not skip it. */
const MODELS: Record<string, (data: unknown) => Validatable> = {
  'v1/Namespace': (d) => new Namespace(d as ConstructorParameters<typeof Namespace>[0]),
  'v1/ConfigMap': (d) => new ConfigMap(d as IConfigMap),
  'v1/Secret': (d) => new Secret(d as ISecret),
  'v1/Service': (d) => new Service(d as IService),
  'apps/v1/Deployment': (d) => new Deployment(d as IDeployment),
  'policy/v1/PodDisruptionBudget': (d) => new PodDisruptionBudget(d as IPodDisruptionBudget),
  'networking.k8s.io/v1/NetworkPolicy': (d) => new NetworkPolicy(d as INetworkPolicy),
  'monitoring.coreos.com/v1/ServiceMonitor': (d) => new ServiceMonitor(d as IServiceMonitor),
};

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  file: string;
  raw: unknown;
}

function loadYaml(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const out: unknown[] = [];
  for (const doc of docs) {
    assert.deepEqual(doc.errors, [], `${path.basename(file)}: YAML errors`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

const yamlFiles = readdirSync(K8S_DIR)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
const KUSTOMIZATION = 'kustomization.yaml';
const objects: K8sObject[] = yamlFiles
  .filter((f) => f !== KUSTOMIZATION)
  .flatMap((f) =>
    loadYaml(path.join(K8S_DIR, f)).map((raw) => {
      const o = raw as Partial<K8sObject>;
      assert.ok(
        typeof o.apiVersion === 'string' && typeof o.kind === 'string',
        `${f}: every document needs apiVersion and kind`,
      );
      assert.ok(o.metadata && typeof o.metadata.name === 'string', `${f}: ${o.kind} needs metadata.name`);
      return { apiVersion: o.apiVersion, kind: o.kind, metadata: o.metadata, file: f, raw } as K8sObject;
    }),
  );

function only<T>(kind: string): T {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind} in deploy/k8s, found ${found.length}`);
  return found[0]!.raw as T;
}

const deployment = only<IDeployment>('Deployment');
const services = objects.filter((o) => o.kind === 'Service').map((o) => o.raw as IService);
/** The Service clients use. */
const service = (() => {
  const s = services.find((x) => x.metadata?.name === 'bulwark');
  assert.ok(s, 'a Service named bulwark');
  return s;
})();
const networkPolicy = only<INetworkPolicy>('NetworkPolicy');
const serviceMonitor = only<IServiceMonitor>('ServiceMonitor');
const pdb = only<IPodDisruptionBudget>('PodDisruptionBudget');
const configMaps = objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.raw as IConfigMap);
const secrets = objects.filter((o) => o.kind === 'Secret').map((o) => o.raw as ISecret);

const podSpec = deployment.spec?.template.spec;
const podLabels = deployment.spec?.template.metadata?.labels ?? {};
assert.ok(podSpec, 'the Deployment has a pod template spec');
const gateway: IContainer = (() => {
  assert.equal(podSpec.containers.length, 1, 'one container per pod: the gateway');
  return podSpec.containers[0]!;
})();

/** Every gateway setting's environment variable name. */
const SETTING_ENVS = new Set(
  Object.values(gatewaySpecs)
    .map((s) => s.env)
    .filter((e): e is string => e !== undefined),
);

/** The environment the gateway container starts with: envFrom (ConfigMaps, Secrets), then env. */
function containerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of gateway.envFrom ?? []) {
    if (from.configMapRef) {
      const cm = configMaps.find((c) => c.metadata?.name === from.configMapRef!.name);
      assert.ok(cm, `envFrom configMapRef ${from.configMapRef.name} exists in deploy/k8s`);
      Object.assign(env, cm.data ?? {});
    }
    if (from.secretRef) {
      const s = secrets.find((c) => c.metadata?.name === from.secretRef!.name);
      assert.ok(s, `envFrom secretRef ${from.secretRef.name} exists in deploy/k8s`);
      Object.assign(env, s.stringData ?? {});
    }
  }
  for (const e of gateway.env ?? []) {
    if (e.value !== undefined) {
      env[e.name] = e.value;
      continue;
    }
    const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
    assert.ok(ref, `env ${e.name} has a value, a secretKeyRef or a configMapKeyRef`);
    const source = e.valueFrom?.secretKeyRef
      ? secrets.find((s) => s.metadata?.name === ref.name)?.stringData
      : configMaps.find((c) => c.metadata?.name === ref.name)?.data;
    assert.ok(source && ref.key in source, `env ${e.name}: ${ref.name}/${ref.key} exists in deploy/k8s`);
    env[e.name] = source[ref.key]!;
  }
  return env;
}

const env = containerEnv();
type GatewaySettings = ReturnType<typeof parseOptions<typeof gatewaySpecs>>['values'];
/** The settings the gateway would start with; a bad value fails the test that needs it, not the file. */
const parsed: { settings?: GatewaySettings; error?: unknown } = (() => {
  try {
    return { settings: parseOptions(gatewaySpecs, [], env).values };
  } catch (error) {
    return { error };
  }
})();
function settings(): GatewaySettings {
  assert.ok(
    parsed.settings,
    `the gateway would refuse to start with the manifests' environment: ${String(parsed.error)}`,
  );
  return parsed.settings;
}

const httpPort = (() => {
  const p = (gateway.ports ?? []).find((x) => x.name === 'http');
  assert.ok(p, 'the gateway container declares a port named "http"');
  return p.containerPort;
})();

/** A probe or Service targetPort, resolved to a container port number. */
function resolvePort(port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return (gateway.ports ?? []).find((p) => p.name === port)?.containerPort;
}

function assertHttpProbe(probe: IProbe | undefined, name: string, pathname: string): IProbe {
  assert.ok(probe, `${name} is set`);
  assert.ok(probe.httpGet, `${name} is an HTTP GET`);
  assert.equal(probe.httpGet.path, pathname, `${name} path`);
  assert.equal(resolvePort(probe.httpGet.port), settings().port, `${name} targets the gateway's PORT`);
  return probe;
}

/** Seconds the preStop hook holds the pod before SIGTERM. */
function preStopSeconds(): number {
  const hook = gateway.lifecycle?.preStop;
  assert.ok(hook, 'the gateway has a preStop hook (endpoint propagation before SIGTERM)');
  if (hook.sleep) return hook.sleep.seconds;
  const cmd = hook.exec?.command ?? [];
  assert.ok(
    cmd.length === 2 && /(^|\/)sleep$/.test(cmd[0]!) && /^\d+(\.\d+)?$/.test(cmd[1]!),
    `preStop is a plain sleep, got ${JSON.stringify(cmd)}`,
  );
  return Number(cmd[1]);
}

/** A Kubernetes quantity as a number of cores or bytes. */
function quantity(q: string | number | undefined): number {
  assert.ok(q !== undefined, 'quantity is set');
  if (typeof q === 'number') return q;
  const m = /^(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi)?$/.exec(q);
  assert.ok(m, `understood quantity ${q}`);
  const scale: Record<string, number> = {
    '': 1,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
  };
  return Number(m[1]) * scale[m[2] ?? '']!;
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

test('every object in deploy/k8s is valid against the Kubernetes API schemas', () => {
  assert.ok(objects.length >= 5, `found ${objects.length} objects`);
  for (const o of objects) {
    const model = MODELS[`${o.apiVersion}/${o.kind}`];
    assert.ok(model, `${o.file}: no schema model registered for ${o.apiVersion} ${o.kind}; add it to MODELS`);
    assert.doesNotThrow(() => model(o.raw).validate(), `${o.file}: ${o.kind} ${o.metadata.name}`);
  }
});

test('the schema check rejects a broken object (it is not vacuous)', () => {
  const broken = structuredClone(deployment) as unknown as { spec: { replicas: unknown } };
  broken.spec.replicas = 'two';
  assert.throws(() => MODELS['apps/v1/Deployment']!(broken).validate(), /replicas/);
});

test('kustomization.yaml lists every manifest and puts them in one namespace', () => {
  const [k] = loadYaml(path.join(K8S_DIR, KUSTOMIZATION)) as {
    kind?: string;
    namespace?: string;
    resources?: string[];
  }[];
  assert.equal(k?.kind, 'Kustomization');
  assert.deepEqual(
    [...(k.resources ?? [])].sort(),
    yamlFiles.filter((f) => f !== KUSTOMIZATION),
  );
  for (const o of objects) {
    if (o.kind === 'Namespace') assert.equal(o.metadata.name, k.namespace);
    else assert.equal(o.metadata.namespace, k.namespace, `${o.file}: ${o.kind} namespace`);
  }
});

test('probes: liveness GET /health and readiness GET /ready on the container port', () => {
  assertHttpProbe(gateway.livenessProbe, 'livenessProbe', '/health');
  if (gateway.startupProbe) assertHttpProbe(gateway.startupProbe, 'startupProbe', '/health');
  const ready = assertHttpProbe(gateway.readinessProbe, 'readinessProbe', '/ready');
  // A failing /ready (DB down, draining) leaves the Service within ~4 s.
  assert.ok((ready.periodSeconds ?? 10) <= 2, `readiness periodSeconds ${ready.periodSeconds} <= 2`);
  assert.ok((ready.failureThreshold ?? 3) <= 2, `readiness failureThreshold ${ready.failureThreshold} <= 2`);
  assert.equal(httpPort, settings().port, 'the "http" container port is the PORT setting');
});

test('terminationGracePeriodSeconds covers preStop + SHUTDOWN_DELAY_MS + SHUTDOWN_GRACE_MS', () => {
  const grace = podSpec.terminationGracePeriodSeconds ?? 30;
  const needed = preStopSeconds() + settings().shutdownDelayMs / 1000 + settings().shutdownGraceMs / 1000;
  assert.ok(
    grace > needed,
    `terminationGracePeriodSeconds ${grace} must exceed ${needed} s (preStop + delay + drain), with margin to close`,
  );
  assert.ok(preStopSeconds() >= 3, 'preStop leaves kube-proxy and ingresses a few seconds to withdraw the pod');
});

test('rolling update never drops below the replica count; the PDB allows one voluntary eviction', () => {
  const spec = deployment.spec!;
  assert.ok((spec.replicas ?? 1) >= 2, 'at least two replicas');
  assert.equal(spec.strategy?.type ?? 'RollingUpdate', 'RollingUpdate');
  assert.equal(spec.strategy?.rollingUpdate?.maxUnavailable, 0);
  assert.ok(Number(spec.strategy?.rollingUpdate?.maxSurge ?? 0) >= 1, 'maxSurge >= 1, or a rollout could never start');
  assert.ok(selects(spec.selector.matchLabels, podLabels), 'the Deployment selector matches its pod template');

  assert.ok(selects(pdb.spec?.selector?.matchLabels, podLabels), "the PDB selects the Deployment's pods");
  assert.equal(pdb.spec?.selector?.matchExpressions, undefined, 'PDB selector by labels only (checked above)');
  const min = pdb.spec?.minAvailable;
  assert.equal(typeof min, 'number', 'PDB minAvailable is a count');
  assert.ok(
    (min as number) >= 1 && (min as number) < (spec.replicas ?? 1),
    `PDB minAvailable ${min} keeps one pod up and still lets a node drain`,
  );
});

test('the Service targets the http port, never the admin port', () => {
  assert.equal(service.spec?.type ?? 'ClusterIP', 'ClusterIP');
  assert.ok(selects(service.spec?.selector, podLabels), "the Service selects the Deployment's pods");
  const ports = service.spec?.ports ?? [];
  assert.ok(ports.length >= 1);
  for (const p of ports) {
    const target = resolvePort(p.targetPort ?? p.port);
    assert.equal(target, httpPort, `Service port ${p.name ?? p.port} targets the http container port`);
    assert.notEqual(target, settings().adminPort, 'the admin port is not published');
    assert.notEqual(target, metricsPort, 'the metrics port is not published to clients');
  }
  assert.ok(
    ports.some((p) => p.port === 80),
    'the Service listens on 80',
  );
  assert.ok(
    !(gateway.ports ?? []).some((p) => p.containerPort === settings().adminPort),
    'the admin port is not a container port',
  );
  assert.match(settings().adminHost, /^(127\.\d+\.\d+\.\d+|::1|localhost)$/, 'ADMIN_HOST stays loopback');
});

test('resources: requests and limits are set and consistent', () => {
  for (const c of podSpec.containers) {
    const r = c.resources;
    assert.ok(r?.requests?.cpu !== undefined && r.requests.memory !== undefined, `${c.name}: cpu and memory requests`);
    assert.ok(r.limits?.memory !== undefined, `${c.name}: memory limit`);
    assert.ok(quantity(r.requests.memory) <= quantity(r.limits.memory), `${c.name}: memory request <= limit`);
    if (r.limits.cpu !== undefined)
      assert.ok(quantity(r.requests.cpu) <= quantity(r.limits.cpu), `${c.name}: cpu request <= limit`);
    // A rollout runs replicas + maxSurge pods; on a 2-core node (~1.9 CPU
    // allocatable) their requests must still fit.
    const pods = (deployment.spec?.replicas ?? 1) + Number(deployment.spec?.strategy?.rollingUpdate?.maxSurge ?? 0);
    assert.ok(pods * quantity(r.requests.cpu) <= 1.9, `${pods} pods x ${r.requests.cpu} CPU fit a 2-core node`);
  }
});

test('every environment key is a real gateway setting, and the values pass start-up validation', () => {
  const keys = [
    ...configMaps.flatMap((c) => Object.keys(c.data ?? {})),
    ...secrets.flatMap((s) => Object.keys({ ...(s.stringData ?? {}), ...(s.data ?? {}) })),
    ...(gateway.env ?? []).map((e) => e.name),
  ];
  const unknown = keys.filter((k) => !SETTING_ENVS.has(k));
  assert.deepEqual(unknown, [], `not settings of src/config/service.ts gatewaySpecs: ${unknown.join(', ')}`);
  assert.ok(parsed.settings, `the gateway would refuse to start: ${String(parsed.error)}`);
  assert.equal(checkCommon(parsed.settings), undefined, 'cross-field rules');
  // Production never falls back to the embedded Postgres or the simulator.
  for (const name of ['DATABASE_URL', 'PROVIDER_URL', 'FX_URL']) assert.ok(env[name], `${name} is set for the gateway`);
  // The committed Secret is a placeholder, never a real credential.
  for (const s of secrets) {
    for (const [k, v] of Object.entries(s.stringData ?? {}))
      assert.match(v, /CHANGE_ME/, `Secret ${s.metadata?.name}/${k} holds a placeholder`);
    assert.equal(s.data, undefined, `Secret ${s.metadata?.name}: stringData placeholders only`);
  }
});

const metricsPort = (() => {
  const p = (gateway.ports ?? []).find((x) => x.name === 'metrics');
  assert.ok(p, 'the gateway container declares a port named "metrics"');
  return p.containerPort;
})();

test('Prometheus scrapes /metrics on a port of its own, which the client Service does not publish', () => {
  assert.equal(settings().metricsPort, metricsPort, 'METRICS_PORT is the "metrics" container port');
  assert.notEqual(metricsPort, httpPort);
  // Discovery by pod annotation (deploy/prometheus/prometheus-kubernetes.yml).
  const a = deployment.spec?.template.metadata?.annotations ?? {};
  assert.equal(a['prometheus.io/scrape'], 'true');
  assert.equal(Number(a['prometheus.io/port']), metricsPort);
  assert.equal(a['prometheus.io/path'] ?? '/metrics', '/metrics');
  // The Prometheus Operator: ServiceMonitor → the headless metrics Service → the metrics port.
  const target = services.find((x) => selects(serviceMonitor.spec.selector.matchLabels, x.metadata?.labels ?? {}));
  assert.ok(target, 'the ServiceMonitor selects a Service');
  assert.notEqual(target.metadata?.name, service.metadata?.name, 'not the client Service');
  assert.equal(target.spec?.clusterIP, 'None', 'headless: it publishes nothing to clients');
  assert.ok(selects(target.spec?.selector, podLabels), 'the metrics Service selects the gateway pods');
  const endpoint = serviceMonitor.spec.endpoints?.[0];
  const port = target.spec?.ports?.find((p) => p.name === endpoint?.port);
  assert.ok(port, `the metrics Service has the port the ServiceMonitor names (${endpoint?.port})`);
  assert.equal(resolvePort(port.targetPort ?? port.port), metricsPort);
  assert.equal(endpoint?.path ?? '/metrics', '/metrics');
  assert.equal(serviceMonitor.spec.jobLabel, 'app.kubernetes.io/name', 'job "bulwark", the name the rules select');
  assert.equal(target.metadata?.labels?.['app.kubernetes.io/name'], 'bulwark');
  for (const p of service.spec?.ports ?? [])
    assert.notEqual(resolvePort(p.targetPort ?? p.port), metricsPort, 'the client Service does not publish /metrics');
});

test('the NetworkPolicy admits clients to http, only the monitoring namespace to metrics, and nobody to admin', () => {
  const spec = networkPolicy.spec!;
  assert.ok(selects(spec.podSelector.matchLabels, podLabels), 'it selects the gateway pods');
  assert.deepEqual([...(spec.policyTypes ?? [])].sort(), ['Egress', 'Ingress']);
  const admitted = (port: number) =>
    (spec.ingress ?? []).filter((r) => (r.ports ?? []).some((p) => resolvePort(p.port) === port));
  assert.equal(admitted(httpPort).length, 1);
  const metricsRules = admitted(metricsPort);
  assert.equal(metricsRules.length, 1);
  assert.deepEqual(
    metricsRules[0]!.from?.map((f) => f.namespaceSelector?.matchLabels),
    [{ 'kubernetes.io/metadata.name': 'monitoring' }],
  );
  assert.equal(admitted(settings().adminPort).length, 0, 'the admin port is admitted from nowhere');
  for (const r of spec.ingress ?? []) assert.ok((r.ports ?? []).length > 0, 'every ingress rule names its ports');
  const egressPorts = (spec.egress ?? []).flatMap((r) => (r.ports ?? []).map((p) => p.port));
  for (const p of [53, 5432, 443]) assert.ok(egressPorts.includes(p), `egress to port ${p}`);
});

test(
  'promtool accepts the Kubernetes scrape config (its relabelling, job name and rules)',
  { skip: promtoolTool().skip },
  () => {
    const file = path.join(ROOT, 'deploy/prometheus/prometheus-kubernetes.yml');
    const text = readFileSync(file, 'utf8');
    assert.match(text, /job_name: bulwark\n/);
    assert.match(text, /kubernetes_sd_configs:\n {6}- role: pod\n/);
    // Debian's Prometheus is built without Kubernetes discovery: check the rest
    // of the file with a static target in its place.
    const copy = path.join(path.dirname(file), '.prometheus-kubernetes.check.yml');
    writeFileSync(
      copy,
      text.replace(
        /kubernetes_sd_configs:\n {6}- role: pod\n {8}namespaces:\n {10}names: \[bulwark\]\n/,
        "static_configs:\n      - targets: ['127.0.0.1:9464']\n",
      ),
    );
    try {
      const r = spawnSync(promtoolTool().path!, ['check', 'config', copy], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    } finally {
      rmSync(copy, { force: true });
    }
  },
);

// ------------------------------------------------------------------- HAProxy

const haproxyText = readFileSync(HAPROXY_CFG, 'utf8');
/** Configuration lines without comments. */
const haproxyLines = haproxyText
  .split('\n')
  .map((l) => l.replace(/#.*$/, '').trim())
  .filter((l) => l !== '');

function msValue(v: string): number {
  const m = /^(\d+)(us|ms|s|m)?$/.exec(v);
  assert.ok(m, `HAProxy time ${v}`);
  return Number(m[1]) * { us: 1e-3, ms: 1, s: 1000, m: 60000 }[m[2] ?? 'ms']!;
}

test('haproxy -c accepts deploy/haproxy/haproxy.cfg', { skip: haproxyTool().skip }, () => {
  const r = spawnSync(haproxyTool().path!, ['-c', '-f', HAPROXY_CFG], { encoding: 'utf8' });
  assert.ok(
    !r.error,
    `haproxy is needed to check the config (Debian package haproxy: apt-get install -y haproxy): ${String(r.error)}`,
  );
  assert.equal(r.status, 0, `haproxy -c:\n${r.stdout}${r.stderr}`);
});

test('HAProxy checks /ready fast enough to drop a draining gateway before it stops accepting', () => {
  assert.ok(
    haproxyLines.includes('option httpchk') || haproxyLines.includes('option httpchk GET /ready'),
    'option httpchk',
  );
  assert.ok(
    haproxyLines.some((l) => /^http-check send meth GET uri \/ready\b/.test(l)) ||
      haproxyLines.includes('option httpchk GET /ready'),
    'health check GET /ready',
  );
  assert.ok(haproxyLines.includes('http-check expect status 200'));
  const ds = haproxyLines.find((l) => l.startsWith('default-server '));
  assert.ok(ds, 'default-server line with the check timings');
  const arg = (k: string) => new RegExp(`\\b${k} (\\S+)`).exec(ds)?.[1];
  const inter = msValue(arg('inter') ?? '2s');
  const fall = Number(arg('fall') ?? 3);
  const checkTimeout = msValue(
    /^timeout check (\S+)/.exec(haproxyLines.find((l) => l.startsWith('timeout check ')) ?? '')?.[1] ?? '0',
  );
  // Worst case: /ready fails just after a check passed, then `fall` failures.
  const worstMs = inter * fall + checkTimeout;
  const delay = /SHUTDOWN_DELAY_MS=(\d+)/.exec(haproxyText);
  assert.ok(delay, 'the config documents the SHUTDOWN_DELAY_MS its gateways run with');
  assert.ok(
    worstMs < Number(delay[1]),
    `out of rotation within ${worstMs} ms, before SHUTDOWN_DELAY_MS=${delay[1]} ends`,
  );
  assert.ok(worstMs <= 2000, 'a draining gateway leaves within ~2 s');
});

test('HAProxy retries only what the Idempotency-Key makes safe, with timeouts above the longest deadline', () => {
  const retryOn = haproxyLines.filter((l) => l.startsWith('retry-on '));
  assert.equal(retryOn.length, 1, 'one retry-on line');
  const kinds = retryOn[0]!.split(/\s+/).slice(1);
  assert.deepEqual(
    kinds.filter((k) => !['conn-failure', 'empty-response'].includes(k)),
    [],
    `retry-on ${kinds.join(' ')}`,
  );
  assert.ok(
    haproxyLines.some((l) => /^retries [12]$/.test(l)),
    'retries 1-2',
  );
  assert.ok(
    haproxyLines.some((l) => l.startsWith('option redispatch')),
    'option redispatch',
  );
  assert.ok(haproxyLines.includes('http-reuse safe'), 'http-reuse safe');
  const maxDeadline = gatewaySpecs.maxRequestTimeoutMs.default;
  for (const t of ['server', 'client']) {
    const line = haproxyLines.find((l) => l.startsWith(`timeout ${t} `));
    assert.ok(line, `timeout ${t}`);
    assert.ok(msValue(line.split(/\s+/)[2]!) > maxDeadline, `timeout ${t} above MAX_REQUEST_TIMEOUT_MS ${maxDeadline}`);
  }
  const stats = /bind "\$\{BULWARK_LB_STATS_BIND-([^}]+)\}"/.exec(haproxyText);
  assert.ok(stats && stats[1]!.startsWith('127.'), 'the stats page binds loopback by default');
});

// ---------------------------------------------------------------- Dockerfile

test('the Dockerfile runs `bulwark serve` from dist on Node 20 as a non-root user', () => {
  // Instructions with line continuations joined and comments dropped.
  const instructions = readFileSync(DOCKERFILE, 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const args = new Map<string, string>();
  for (const l of instructions) {
    const m = /^ARG (\w+)=(\S+)$/.exec(l);
    if (m) args.set(m[1]!, m[2]!);
  }
  const froms = instructions.filter((l) => l.startsWith('FROM '));
  assert.ok(froms.length >= 2, 'multi-stage build');
  for (const f of froms) {
    const image = f.split(/\s+/)[1]!.replace(/^\$\{(\w+)\}$/, (_, name: string) => args.get(name) ?? '');
    assert.match(image, /^node:20[.-]/, `base image is Node 20: ${f}`);
  }
  const cmds = instructions.filter((l) => l.startsWith('CMD '));
  assert.equal(cmds.length, 1);
  assert.deepEqual(
    JSON.parse(cmds[0]!.slice(4)),
    ['node', 'dist/src/cli/main.js', 'serve'],
    'exec-form CMD, so SIGTERM reaches node',
  );
  assert.ok(existsSync(path.join(ROOT, 'dist/src/cli/main.js')), 'the CMD entry point is what npm run build produces');
  const users = instructions.filter((l) => l.startsWith('USER '));
  assert.ok(users.length > 0 && !/^USER (root|0)(:|$)/.test(users.at(-1)!), 'the runtime stage drops root');
  assert.ok(instructions.includes(`EXPOSE ${gatewaySpecs.port.default}`), 'EXPOSE the default PORT');
  const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim());
  for (const p of ['node_modules', 'dist', '.bulwark']) assert.ok(ignored.includes(p), `.dockerignore leaves out ${p}`);
  for (const p of ['src', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json'])
    assert.ok(!ignored.includes(p), `.dockerignore keeps ${p} (the build needs it)`);
});
