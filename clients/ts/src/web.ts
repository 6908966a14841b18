// Browsers: grpc-web (connect-web), on an origin the service allows
// (THEATRE_CORS_ORIGINS) or on the service's own origin (THEATRE_WEB_DIR).
import type { Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { bearer } from "./clients.js";

/** A grpc-web transport to `baseUrl` that sends `token()`. */
export function grpcWebTransport(baseUrl: string, token: () => string | undefined = () => undefined): Transport {
  return createGrpcWebTransport({ baseUrl, interceptors: [bearer(token)] });
}
