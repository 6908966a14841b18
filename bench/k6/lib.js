// Shared by the k6 scenarios: the gRPC client, auth metadata and outcome counters.
import grpc from 'k6/net/grpc';
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';

export const ADDR = __ENV.THEATRE_ADDR || '127.0.0.1:50051';

// Must be called from the init context (once per VU).
export function newClient() {
  const client = new grpc.Client();
  client.load(
    [__ENV.PROTO_DIR],
    'theatre/v1/auth.proto',
    'theatre/v1/catalog.proto',
    'theatre/v1/booking.proto',
  );
  return client;
}

export function connectOnce(client) {
  if (__ITER === 0) {
    client.connect(ADDR, { plaintext: true, timeout: '30s' });
  }
}

export function bearer(token) {
  return { metadata: { authorization: `Bearer ${token}` }, timeout: '30s' };
}

// Outcome counters every scenario reports.
const calls = new Counter('calls');
const ok = new Counter('ok');
const failedPrecondition = new Counter('failed_precondition');
const internalOrUnavailable = new Counter('internal_or_unavailable');
const resourceExhausted = new Counter('resource_exhausted');
const otherErrors = new Counter('other_errors');
export const loserLatency = new Trend('loser_ms', true);

// Invokes `method` and counts the call by its status (with its latency for
// FAILED_PRECONDITION losers); returns the response.
export function call(client, method, message, params) {
  const t0 = Date.now();
  // Only the status is used: decoding every response into JS objects would
  // cost the load generator more CPU than the server spends answering.
  const response = client.invoke(method, message, { ...params, discardResponseMessage: true });
  const ms = Date.now() - t0;
  calls.add(1);
  const status = response.status;
  if (status === grpc.StatusOK) {
    ok.add(1);
  } else if (status === grpc.StatusFailedPrecondition) {
    failedPrecondition.add(1);
    loserLatency.add(ms);
  } else if (status === grpc.StatusInternal || status === grpc.StatusUnavailable) {
    internalOrUnavailable.add(1);
  } else if (status === grpc.StatusResourceExhausted) {
    resourceExhausted.add(1);
  } else {
    otherErrors.add(1);
    console.warn(`${method}: status ${status} ${JSON.stringify(response.error)}`);
  }
  return response;
}

// GETs `path` of the HTTP/JSON face (same port) and counts it like `call`:
// 409 is the FAILED_PRECONDITION of a taken seat, 429 RESOURCE_EXHAUSTED.
export function get(path, token) {
  const response = http.get(`http://${ADDR}${path}`, {
    headers: { authorization: `Bearer ${token}` },
    timeout: '30s',
    // As with discardResponseMessage: the server writes the JSON, k6 skips reading it.
    responseType: 'none',
  });
  calls.add(1);
  const status = response.status;
  if (status === 200) {
    ok.add(1);
  } else if (status === 409) {
    failedPrecondition.add(1);
  } else if (status === 500 || status === 503 || status === 0) {
    internalOrUnavailable.add(1);
  } else if (status === 429) {
    resourceExhausted.add(1);
  } else {
    otherErrors.add(1);
    console.warn(`GET ${path}: HTTP ${status}`);
  }
  return response;
}

export const summaryTrendStats = ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'];

export function writeSummary(data) {
  const out = {};
  out[__ENV.OUT] = JSON.stringify(data, null, 1);
  out.stdout = `${__ENV.SCENARIO || 'k6'}: ${JSON.stringify(pick(data))}\n`;
  return out;
}

function pick(data) {
  const m = data.metrics;
  const latency = m.grpc_req_duration ? 'grpc_req_duration' : 'http_req_duration';
  const v = (name, stat) => (m[name] ? m[name].values[stat] : 0);
  return {
    calls_per_s: Math.round(v('calls', 'rate')),
    p50: v(latency, 'p(50)'),
    p99: v(latency, 'p(99)'),
    errors: v('internal_or_unavailable', 'count') + v('other_errors', 'count') + v('resource_exhausted', 'count'),
  };
}
