import fs from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import { logger } from '@libp2p/logger'
import { ReadOnlySocketError, SocketInUseError } from './errors.js'
import { DEFAULT_MAX_BODY_BYTES, codeOf, errorBody, messageOf, sendError, statusForError } from './http-utils.js'
import { SocketPathTakenError } from '../util/errors.js'
import { listenPrivately } from '../util/listen.js'
import { isRead, matchRoute, type SocketKind } from './routes.js'
import type { AdminBackend } from './api.js'
import type { Startable } from '@libp2p/interface'

const log = logger('snapmesh:admin')

export interface AdminServerComponents {
  backend: AdminBackend
}

export interface AdminServerInit {
  /** absolute path of the Unix socket to listen on */
  socketPath: string
  /** largest request body accepted; default 64 KiB */
  maxBodyBytes?: number
  /** how often `GET /v1/snapshots/:id?wait=1` asks the backend again; default 200 ms */
  pollIntervalMs?: number
  /** least time between two progress lines of a restore stream; default 100 ms */
  progressIntervalMs?: number
  /** 'read' serves only the read routes and answers 403 to the rest; default 'full' */
  kind?: SocketKind
  /** the socket's permission bits, set before anyone else can reach it; default 0o600 */
  mode?: number
  /** the gid the socket is given; default the agent's own group */
  gid?: number
  /** bounds on slow clients; see ADMIN_TIMEOUTS */
  timeouts?: Partial<AdminTimeouts>
}

/** how long the server waits for a client, in ms */
export interface AdminTimeouts {
  /** until a request's headers are complete, from its connection or the end of the previous answer */
  headersMs: number
  /** until a whole request (headers and body) has arrived */
  requestMs: number
  /** an idle connection between two requests is closed after this */
  keepAliveMs: number
  /**
   * no byte moving either way for this long closes the connection, except while the agent is
   * working on an answer (a long-poll, a restore stream): then the agent is the one being waited for
   */
  idleMs: number
}

export const ADMIN_TIMEOUTS: AdminTimeouts = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000, idleMs: 60_000 }

/** answers within this time or the socket counts as abandoned */
const PROBE_TIMEOUT_MS = 1000

/** Whether something accepts connections on the Unix socket at `path`. */
async function isListening (path: string): Promise<boolean> {
  return new Promise<boolean>(resolve => {
    const c = net.connect(path)
    const done = (live: boolean): void => {
      clearTimeout(timer)
      c.destroy()
      resolve(live)
    }
    const timer = setTimeout(() => { done(false) }, PROBE_TIMEOUT_MS)
    c.once('connect', () => { done(true) })
    c.once('error', () => { done(false) })
  })
}

/**
 * The admin API: HTTP/1.1 with JSON bodies on a Unix socket (mode 0600 unless told), routes under
 * /v1. A 'read' server is the read-only socket: the write routes answer 403 there.
 * `curl --unix-socket data/admin.sock http://agent/v1/status` works against it.
 */
export class AdminServer implements Startable {
  private readonly backend: AdminBackend
  private readonly socketPath: string
  private readonly maxBodyBytes: number
  private readonly pollIntervalMs: number
  private readonly progressIntervalMs: number
  private readonly kind: SocketKind
  private readonly mode: number
  private readonly gid?: number
  private readonly timeouts: AdminTimeouts
  private server?: http.Server

  constructor (components: AdminServerComponents, init: AdminServerInit) {
    this.backend = components.backend
    this.socketPath = init.socketPath
    this.maxBodyBytes = init.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
    this.pollIntervalMs = init.pollIntervalMs ?? 200
    this.progressIntervalMs = init.progressIntervalMs ?? 100
    this.kind = init.kind ?? 'full'
    this.mode = init.mode ?? 0o600
    this.gid = init.gid
    this.timeouts = { ...ADMIN_TIMEOUTS, ...init.timeouts }
  }

  isStarted (): boolean {
    return this.server != null
  }

  async start (): Promise<void> {
    if (this.server != null) return
    await this.clearStaleSocket()
    const t = this.timeouts
    const server = http.createServer({
      // how often headersMs and requestMs are checked
      connectionsCheckingInterval: Math.max(20, Math.min(1000, Math.floor(t.headersMs / 4)))
    }, (req, res) => { void this.dispatch(req, res) })
    server.headersTimeout = t.headersMs
    // a body must arrive in time; the answer (long-polls, restore streams) is not bounded by it
    server.requestTimeout = t.requestMs
    server.keepAliveTimeout = t.keepAliveMs
    server.timeout = t.idleMs
    try {
      await listenPrivately(server, this.socketPath, { mode: this.mode, gid: this.gid })
    } catch (err) {
      throw err instanceof SocketPathTakenError ? new SocketInUseError(err.message) : err
    }
    this.server = server
    log('listening on %s (%s, mode %s)', this.socketPath, this.kind, this.mode.toString(8))
  }

  /** Closes the socket; requests in flight are cut off (a running restore is aborted). */
  async stop (): Promise<void> {
    const server = this.server
    if (server == null) return
    this.server = undefined
    const closed = new Promise<void>(resolve => server.close(() => { resolve() }))
    server.closeAllConnections()
    await closed
    await fs.rm(this.socketPath, { force: true })
    log('stopped listening on %s', this.socketPath)
  }

  /** Removes a socket file nobody answers on; refuses if a process is listening or it is not a socket. */
  private async clearStaleSocket (): Promise<void> {
    const path = this.socketPath
    let st
    try {
      st = await fs.lstat(path)
    } catch (err: any) {
      if (err.code === 'ENOENT') return
      throw err
    }
    if (!st.isSocket()) throw new SocketInUseError(`${path} exists and is not a socket: refusing to replace it`)
    if (await isListening(path)) throw new SocketInUseError(`another agent is already listening on ${path}`)
    log('removing stale socket %s', path)
    await fs.rm(path, { force: true })
  }

  private async dispatch (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const controller = new AbortController()
    res.once('close', () => { if (!res.writableFinished) controller.abort() })
    const method = req.method ?? 'GET'
    // the client waits for the agent now: no idle limit until the answer is handed over
    req.socket.setTimeout(0)
    try {
      const url = new URL(req.url ?? '/', 'http://agent')
      const { handler, params, route } = matchRoute(method, url.pathname)
      if (this.kind === 'read' && !isRead(route, method)) throw new ReadOnlySocketError(this.socketPath, `${method} ${url.pathname}`)
      await handler({
        backend: this.backend,
        req,
        res,
        url,
        params,
        maxBodyBytes: this.maxBodyBytes,
        pollIntervalMs: this.pollIntervalMs,
        progressIntervalMs: this.progressIntervalMs,
        signal: controller.signal,
        kind: this.kind,
        socketPath: this.socketPath
      })
    } catch (err) {
      const status = statusForError(err)
      if (status >= 500) log.error('%s %s failed: %s', method, req.url, (err as Error)?.stack ?? err)
      else log('%s %s: %d %s %s', method, req.url, status, codeOf(err), messageOf(err))
      if (res.destroyed || res.writableEnded) return
      if (res.headersSent) {
        // a stream already under way ends with an error line
        res.end(JSON.stringify({ type: 'error', ...errorBody(err) }) + '\n')
      } else {
        sendError(res, err)
      }
    } finally {
      // an answer the client does not read is bounded again (Node sets keepAliveMs once it is sent)
      if (!res.writableFinished && !res.destroyed) req.socket.setTimeout(this.timeouts.idleMs)
    }
  }
}
