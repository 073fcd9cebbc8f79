import fs from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import { logger } from '@libp2p/logger'
import { BadRequestError, SocketInUseError } from './errors.js'
import { describeErrors, validateCreate, validateRestore, validateVerify } from './schemas.js'
import type { AdminBackend, CreateSnapshotRequest, ErrorBody, ProgressView, RestoreRequest, VerifyRequest } from './api.js'
import type { Startable } from '@libp2p/interface'

const log = logger('snapmesh:admin')

export interface AdminServerInit {
  socketPath: string
  /** largest request body accepted; default 64 KiB */
  maxBodyBytes?: number
}

function statusOf (err: any): number {
  if (typeof err?.status === 'number') return err.status
  const code = String(err?.code ?? '')
  if (code === 'ERR_NOT_FOUND') return 404
  if (code === 'ERR_AMBIGUOUS') return 409
  if (code.startsWith('ERR_INVALID') || code === 'ERR_UNSAFE_PATH') return 400
  return 500
}

/**
 * The admin API: HTTP/1.1 with JSON bodies on a Unix socket (mode 0600), routes under /v1.
 * `curl --unix-socket data/admin.sock http://agent/v1/status` works as it does against Docker.
 */
export class AdminServer implements Startable {
  private readonly backend: AdminBackend
  private readonly init: AdminServerInit
  private server?: http.Server

  constructor (components: { backend: AdminBackend }, init: AdminServerInit) {
    this.backend = components.backend
    this.init = init
  }

  async start (): Promise<void> {
    await this.clearStaleSocket()
    const server = http.createServer((req, res) => { void this.handle(req, res) })
    server.requestTimeout = 0
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.init.socketPath, () => { server.off('error', reject); resolve() })
    })
    await fs.chmod(this.init.socketPath, 0o600)
    this.server = server
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server == null) return
    this.server = undefined
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => { resolve() }))
    await fs.rm(this.init.socketPath, { force: true })
  }

  /** removes a socket file nobody answers on; refuses to start if an agent is listening there */
  private async clearStaleSocket (): Promise<void> {
    const path = this.init.socketPath
    let st
    try {
      st = await fs.lstat(path)
    } catch {
      return
    }
    if (!st.isSocket()) throw new SocketInUseError(`${path} exists and is not a socket: refusing to replace it`)
    const live = await new Promise<boolean>(resolve => {
      const c = net.connect(path)
      c.once('connect', () => { c.destroy(); resolve(true) })
      c.once('error', () => { resolve(false) })
    })
    if (live) throw new SocketInUseError(`another agent is already listening on ${path}`)
    await fs.rm(path, { force: true })
  }

  private async readBody (req: http.IncomingMessage): Promise<unknown> {
    const max = this.init.maxBodyBytes ?? 64 * 1024
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > max) throw new BadRequestError(413, 'ERR_TOO_LARGE', `request body of ${declared} bytes exceeds ${max}`)
    const parts: Buffer[] = []
    let size = 0
    for await (const chunk of req) {
      size += (chunk as Buffer).length
      if (size > max) throw new BadRequestError(413, 'ERR_TOO_LARGE', `request body exceeds ${max} bytes`)
      parts.push(chunk as Buffer)
    }
    if (size === 0) return {}
    try {
      return JSON.parse(Buffer.concat(parts).toString('utf8'))
    } catch (err: any) {
      throw new BadRequestError(400, 'ERR_INVALID_JSON', `request body is not valid JSON: ${String(err.message)}`)
    }
  }

  private async handle (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body)
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
    const fail = (err: any): void => {
      const status = statusOf(err)
      if (status >= 500) log.error('%s %s failed: %s', req.method, req.url, err?.stack ?? err)
      const body: ErrorBody = { error: String(err?.message ?? err), code: String(err?.code ?? 'ERR_INTERNAL') }
      if (res.headersSent) {
        res.end(JSON.stringify({ type: 'error', error: body.error, code: body.code }) + '\n')
      } else {
        send(status, body)
      }
    }
    try {
      const url = new URL(req.url ?? '/', 'http://agent')
      const parts = url.pathname.split('/').filter(p => p !== '')
      const method = req.method ?? 'GET'
      const allow = (methods: string[]): void => {
        if (!methods.includes(method)) throw new BadRequestError(405, 'ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${url.pathname} (allowed: ${methods.join(', ')})`)
      }
      if (parts[0] !== 'v1') throw new BadRequestError(404, 'ERR_NOT_FOUND', `no route ${url.pathname}: routes live under /v1`)
      const route = parts.slice(1)
      if (route.length === 1 && route[0] === 'status') {
        allow(['GET'])
        send(200, await this.backend.status())
      } else if (route.length === 1 && route[0] === 'peers') {
        allow(['GET'])
        send(200, await this.backend.peers())
      } else if (route.length === 1 && route[0] === 'snapshots') {
        allow(['GET', 'POST'])
        if (method === 'GET') {
          send(200, await this.backend.listSnapshots())
        } else {
          const body = await this.readBody(req)
          if (!validateCreate(body)) throw new BadRequestError(400, 'ERR_INVALID_REQUEST', describeErrors(validateCreate.errors))
          send(201, await this.backend.createSnapshot(body as CreateSnapshotRequest))
        }
      } else if (route.length === 2 && route[0] === 'snapshots') {
        allow(['GET'])
        const id = decodeURIComponent(route[1])
        let snap = await this.backend.getSnapshot(id)
        if (url.searchParams.get('wait') === '1' || url.searchParams.get('wait') === 'true') {
          const timeout = Number(url.searchParams.get('timeout') ?? 60)
          if (!Number.isFinite(timeout) || timeout < 0 || timeout > 86400) throw new BadRequestError(400, 'ERR_INVALID_REQUEST', 'query "timeout" must be 0 to 86400 seconds')
          const until = Date.now() + timeout * 1000
          let closed = false
          res.once('close', () => { closed = true })
          while (snap.status === 'running' && Date.now() < until && !closed) {
            await new Promise(resolve => setTimeout(resolve, 200))
            snap = await this.backend.getSnapshot(snap.id)
          }
        }
        send(200, snap)
      } else if (route.length === 1 && route[0] === 'verify') {
        allow(['POST'])
        const body = await this.readBody(req)
        if (!validateVerify(body)) throw new BadRequestError(400, 'ERR_INVALID_REQUEST', describeErrors(validateVerify.errors))
        const controller = new AbortController()
        res.once('close', () => { if (!res.writableFinished) controller.abort() })
        send(200, await this.backend.verify(body as VerifyRequest, { signal: controller.signal }))
      } else if (route.length === 1 && route[0] === 'restore') {
        allow(['POST'])
        const body = await this.readBody(req)
        if (!validateRestore(body)) throw new BadRequestError(400, 'ERR_INVALID_REQUEST', describeErrors(validateRestore.errors))
        const controller = new AbortController()
        res.once('close', () => { if (!res.writableFinished) controller.abort() })
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        const line = (ev: ProgressView): void => { res.write(JSON.stringify(ev) + '\n') }
        let lastProgress = 0
        try {
          const result = await this.backend.restore(body as RestoreRequest, {
            signal: controller.signal,
            onProgress: (ev) => {
              const now = Date.now()
              if (now - lastProgress < 100) return
              lastProgress = now
              line(ev)
            }
          })
          line({ type: 'done', result })
          res.end()
        } catch (err: any) {
          line({ type: 'error', error: String(err?.message ?? err), code: String(err?.code ?? 'ERR_INTERNAL') })
          res.end()
        }
      } else {
        throw new BadRequestError(404, 'ERR_NOT_FOUND', `no route ${url.pathname}`)
      }
    } catch (err) {
      fail(err)
    }
  }
}
