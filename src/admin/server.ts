import fs from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import { logger } from '@libp2p/logger'
import { SocketInUseError } from './errors.js'
import { DEFAULT_MAX_BODY_BYTES, codeOf, errorBody, messageOf, sendError, statusForError } from './http-utils.js'
import { matchRoute } from './routes.js'
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
}

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
 * The admin API: HTTP/1.1 with JSON bodies on a Unix socket (mode 0600), routes under /v1.
 * `curl --unix-socket data/admin.sock http://agent/v1/status` works against it.
 */
export class AdminServer implements Startable {
  private readonly backend: AdminBackend
  private readonly socketPath: string
  private readonly maxBodyBytes: number
  private readonly pollIntervalMs: number
  private readonly progressIntervalMs: number
  private server?: http.Server

  constructor (components: AdminServerComponents, init: AdminServerInit) {
    this.backend = components.backend
    this.socketPath = init.socketPath
    this.maxBodyBytes = init.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
    this.pollIntervalMs = init.pollIntervalMs ?? 200
    this.progressIntervalMs = init.progressIntervalMs ?? 100
  }

  isStarted (): boolean {
    return this.server != null
  }

  async start (): Promise<void> {
    if (this.server != null) return
    await this.clearStaleSocket()
    const server = http.createServer((req, res) => { void this.dispatch(req, res) })
    // long-polls and restore streams last as long as they need to
    server.requestTimeout = 0
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(err.code === 'EADDRINUSE'
          ? new SocketInUseError(`${this.socketPath} was taken while this agent was starting: another agent is listening on it`)
          : err)
      }
      server.once('error', onError)
      server.listen(this.socketPath, () => {
        server.off('error', onError)
        resolve()
      })
    })
    try {
      await fs.chmod(this.socketPath, 0o600)
    } catch (err) {
      await new Promise<void>(resolve => server.close(() => { resolve() }))
      throw err
    }
    this.server = server
    log('listening on %s', this.socketPath)
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
    try {
      const url = new URL(req.url ?? '/', 'http://agent')
      const { handler, params } = matchRoute(method, url.pathname)
      await handler({
        backend: this.backend,
        req,
        res,
        url,
        params,
        maxBodyBytes: this.maxBodyBytes,
        pollIntervalMs: this.pollIntervalMs,
        progressIntervalMs: this.progressIntervalMs,
        signal: controller.signal
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
    }
  }
}
