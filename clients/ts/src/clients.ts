import {
  type Client,
  Code,
  ConnectError,
  type Interceptor,
  type Transport,
  createClient,
} from "@connectrpc/connect";

import {
  type ErrorInfo,
  ErrorInfoSchema,
  type PreconditionFailure,
  PreconditionFailureSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";
import { AuthService } from "./gen/theatre/v1/auth_pb.js";
import { BookingService } from "./gen/theatre/v1/booking_pb.js";
import { CatalogService } from "./gen/theatre/v1/catalog_pb.js";

/** The domain of every ErrorInfo the service sends. */
export const ERROR_DOMAIN = "theatre.v1";

/** A typed client of each service, all on one transport. */
export interface TheatreClients {
  auth: Client<typeof AuthService>;
  catalog: Client<typeof CatalogService>;
  booking: Client<typeof BookingService>;
}

export function theatreClients(transport: Transport): TheatreClients {
  return {
    auth: createClient(AuthService, transport),
    catalog: createClient(CatalogService, transport),
    booking: createClient(BookingService, transport),
  };
}

/**
 * Sends `authorization: Bearer <token>` with every call while `token()`
 * returns one, so a client made before login starts sending it after.
 */
export function bearer(token: () => string | undefined): Interceptor {
  return (next) => async (req) => {
    const value = token();
    if (value) req.header.set("authorization", `Bearer ${value}`);
    return next(req);
  };
}

/**
 * What a refusal says a program can branch on: its code, its stable reason
 * (`SEAT_TAKEN`, `SHOW_STARTED`, `TOKEN_EXPIRED`, … — the README and
 * options.proto list them) and the reason's metadata.
 */
export interface Refusal {
  code: Code;
  reason: string;
  metadata: Record<string, string>;
  message: string;
  /** The seats or other subjects a FAILED_PRECONDITION names. */
  violations: PreconditionFailure["violations"];
  /** How long to wait before a retry, where the service said (RetryInfo). */
  retryAfterMs?: number;
}

/** Reads a refusal from anything a call threw (a ConnectError or not). */
export function refusal(err: unknown): Refusal {
  const error = ConnectError.from(err);
  const info: ErrorInfo | undefined = error
    .findDetails(ErrorInfoSchema)
    .find((i) => i.domain === ERROR_DOMAIN);
  const retry = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
  return {
    code: error.code,
    reason: info?.reason ?? "",
    metadata: info?.metadata ?? {},
    message: error.rawMessage,
    violations: error.findDetails(PreconditionFailureSchema).flatMap((p) => p.violations),
    retryAfterMs: retry && Number(retry.seconds) * 1000 + Math.round(retry.nanos / 1e6),
  };
}

/** The canonical gRPC name of a code, as grpcurl and the logs write it: `FAILED_PRECONDITION`. */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** True for faults that are not the caller's: the same call may succeed later. */
export function isRetryable(err: unknown): boolean {
  const { code } = ConnectError.from(err);
  return code === Code.Unavailable || code === Code.DeadlineExceeded || code === Code.ResourceExhausted;
}
