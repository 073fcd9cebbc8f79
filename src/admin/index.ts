import { AdminClient } from './client.js'
import { AdminServer } from './server.js'
import type { AdminClientInit } from './client.js'
import type { AdminServerComponents, AdminServerInit } from './server.js'

export * from './api.js'
export { AdminServer, ADMIN_TIMEOUTS } from './server.js'
export type { AdminServerComponents, AdminServerInit, AdminTimeouts } from './server.js'
export type { SocketKind } from './routes.js'
export { AdminClient } from './client.js'
export { AuditedBackend, publicParams, type AuditSink } from './audited.js'
export type { AdminClientInit, GetSnapshotOptions, RestoreOptions } from './client.js'
export {
  AdminError,
  AgentNotRunningError,
  SocketInUseError,
  RouteNotFoundError,
  MethodNotAllowedError,
  BodyTooLargeError,
  InvalidJsonError,
  InvalidRequestError,
  ReadOnlySocketError,
  SocketSetupError,
  SocketAccessError
} from './errors.js'
export { statusForCode } from './http-utils.js'

/** The admin HTTP server on a Unix socket, serving `backend`. */
export function createAdminServer (components: AdminServerComponents, init: AdminServerInit): AdminServer {
  return new AdminServer(components, init)
}

/** A client of the agent listening on `init.socketPath`. */
export function createAdminClient (init: AdminClientInit): AdminClient {
  return new AdminClient(init)
}
