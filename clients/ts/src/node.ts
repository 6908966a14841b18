// Node: gRPC over HTTP/2 (connect-node), for backend services and scripts.
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { bearer } from "./clients.js";

/** A gRPC transport to `baseUrl` (`http://127.0.0.1:50051`) that sends `token()`. */
export function grpcTransport(baseUrl: string, token: () => string | undefined = () => undefined): Transport {
  return createGrpcTransport({ baseUrl, interceptors: [bearer(token)] });
}
