// The Theatre API (theatre.v1) for TypeScript: the messages and services of
// the contract in proto/, the google.rpc error details its errors carry, and
// the few helpers every client needs (clients on a transport, the bearer
// token, the stable reason of an error). Transports: `@theatre/client/node`
// (gRPC over HTTP/2) and `@theatre/client/web` (grpc-web from a browser).
export * from "./gen/theatre/v1/auth_pb.js";
export * from "./gen/theatre/v1/catalog_pb.js";
export * from "./gen/theatre/v1/booking_pb.js";
export * from "./gen/theatre/v1/events_pb.js";
export * from "./gen/google/rpc/error_details_pb.js";
export * from "./gen/google/rpc/status_pb.js";
export * from "./clients.js";
export { Code, ConnectError } from "@connectrpc/connect";
export { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
