import http from 'node:http'
import { AdminError, AgentNotRunningError, SocketAccessError } from './errors.js'
import { statusForCode } from './http-utils.js'
import type { AuditEntryView, AuditHeadView, AuditShowRequest, AuditVerifyView, CreateSnapshotRequest, ForgetRequest, ForgetResultView, PeerView, ProgressView, PruneRequest, PruneResultView, RestoreRequest, RestoreResultView, SnapshotView, StatusView, VerifyRequest, VerifyResultView } from './api.js'
import type { AbortOptions } from '@libp2p/interface'

export { AdminError, AgentNotRunningError, SocketAccessError } from './errors.js'

export interface AdminClientInit {
  /** the agent's admin socket */
  socketPath: string
}

export interface GetSnapshotOptions extends AbortOptions {
  /** answer only once the snapshot is no longer running, or when `timeoutSeconds` passed */
  wait?: boolean
  /** how long the agent waits at most; default 60 */
  timeoutSeconds?: number
}

export interface RestoreOptions extends AbortOptions {
  /** called for every progress line the agent streams */
  onProgress?: (ev: Extract<ProgressView, { type: 'progress' }>) => void
}

interface RequestOptions extends AbortOptions {
  body?: unknown
  /** for NDJSON answers: called with every parsed line; the request resolves with the last */
  onLine?: (line: unknown) => void
}

/** The typed client of the admin API: the only way the CLI talks to an agent. */
export class AdminClient {
  readonly socketPath: string

  constructor (init: AdminClientInit) {
    this.socketPath = init.socketPath
  }

  async status (options: AbortOptions = {}): Promise<StatusView> {
    return this.request('GET', '/v1/status', options) as Promise<StatusView>
  }

  async peers (options: AbortOptions = {}): Promise<PeerView[]> {
    return this.request('GET', '/v1/peers', options) as Promise<PeerView[]>
  }

  async listSnapshots (options: AbortOptions = {}): Promise<SnapshotView[]> {
    return this.request('GET', '/v1/snapshots', options) as Promise<SnapshotView[]>
  }

  async createSnapshot (req: CreateSnapshotRequest = {}, options: AbortOptions = {}): Promise<SnapshotView> {
    return this.request('POST', '/v1/snapshots', { ...options, body: req }) as Promise<SnapshotView>
  }

  /** `id` may be a unique prefix of a snapshot ID. */
  async getSnapshot (id: string, options: GetSnapshotOptions = {}): Promise<SnapshotView> {
    const query = options.wait === true ? `?wait=1&timeout=${options.timeoutSeconds ?? 60}` : ''
    return this.request('GET', `/v1/snapshots/${encodeURIComponent(id)}${query}`, options) as Promise<SnapshotView>
  }

  async verify (req: VerifyRequest, options: AbortOptions = {}): Promise<VerifyResultView> {
    return this.request('POST', '/v1/verify', { ...options, body: req }) as Promise<VerifyResultView>
  }

  async forget (req: ForgetRequest, options: AbortOptions = {}): Promise<ForgetResultView> {
    return this.request('POST', '/v1/forget', { ...options, body: req }) as Promise<ForgetResultView>
  }

  async prune (req: PruneRequest = {}, options: AbortOptions = {}): Promise<PruneResultView> {
    return this.request('POST', '/v1/prune', { ...options, body: req }) as Promise<PruneResultView>
  }

  /** the agent's audit log entries, oldest first */
  async auditShow (req: AuditShowRequest = {}, options: AbortOptions = {}): Promise<AuditEntryView[]> {
    const q = new URLSearchParams()
    if (req.since != null) q.set('since', req.since)
    if (req.limit != null) q.set('limit', String(req.limit))
    const query = q.size > 0 ? `?${q.toString()}` : ''
    return this.request('GET', `/v1/audit${query}`, options) as Promise<AuditEntryView[]>
  }

  /** checks the agent's audit log against itself and the heads other members hold of it */
  async auditVerify (options: AbortOptions = {}): Promise<AuditVerifyView> {
    return this.request('POST', '/v1/audit/verify', { ...options, body: {} }) as Promise<AuditVerifyView>
  }

  /** the newest audit head the agent holds of every other member */
  async auditHeads (options: AbortOptions = {}): Promise<AuditHeadView[]> {
    return this.request('GET', '/v1/audit/heads', options) as Promise<AuditHeadView[]>
  }

  /**
   * Restores while the agent streams progress to `onProgress`; resolves with the result or rejects
   * with the agent's error as an AdminError. Aborting the signal makes the agent stop the restore.
   */
  async restore (req: RestoreRequest, options: RestoreOptions = {}): Promise<RestoreResultView> {
    const last = await this.request('POST', '/v1/restore', {
      signal: options.signal,
      body: req,
      onLine: (line) => {
        const ev = line as ProgressView
        if (ev.type === 'progress') options.onProgress?.(ev)
      }
    }) as ProgressView | undefined
    if (last?.type === 'done') return last.result
    if (last?.type === 'error') {
      const code = last.code ?? 'ERR_INTERNAL'
      throw new AdminError(statusForCode(code), code, last.error)
    }
    throw new AdminError(502, 'ERR_BAD_RESPONSE', 'the agent ended the restore stream without a result')
  }

  private async request (method: string, path: string, options: RequestOptions = {}): Promise<unknown> {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
    return new Promise((resolve, reject) => {
      const req = http.request({
        socketPath: this.socketPath,
        method,
        path,
        signal: options.signal,
        headers: payload != null
          ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }
          : {}
      }, (res) => {
        const status = res.statusCode ?? 0
        const ndjson = status < 400 && String(res.headers['content-type'] ?? '').startsWith('application/x-ndjson')
        let text = ''
        let last: unknown
        let failed = false
        const fail = (err: Error): void => {
          if (failed) return
          failed = true
          res.destroy()
          reject(err)
        }
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
          if (!ndjson) return
          let nl: number
          while (!failed && (nl = text.indexOf('\n')) >= 0) {
            const line = text.slice(0, nl).trim()
            text = text.slice(nl + 1)
            if (line === '') continue
            try {
              last = JSON.parse(line)
            } catch {
              fail(new AdminError(502, 'ERR_BAD_RESPONSE', `the agent sent a stream line that is not JSON: ${line.slice(0, 200)}`))
              return
            }
            options.onLine?.(last)
          }
        })
        res.on('error', fail)
        res.on('end', () => {
          if (failed) return
          if (ndjson) {
            resolve(last)
            return
          }
          let value: any
          try {
            value = text === '' ? undefined : JSON.parse(text)
          } catch {
            reject(new AdminError(status, 'ERR_BAD_RESPONSE', `the agent sent an answer that is not JSON (HTTP ${status}): ${text.slice(0, 200)}`))
            return
          }
          if (status >= 400) {
            const code = typeof value?.code === 'string' ? value.code : 'ERR_HTTP'
            const message = typeof value?.error === 'string' ? value.error : `the agent answered HTTP ${status}`
            reject(new AdminError(status, code, message))
          } else {
            resolve(value)
          }
        })
      })
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK') {
          reject(new AgentNotRunningError(`no agent is listening on ${this.socketPath} (is \`snapmesh agent\` running?)`))
        } else if (err.code === 'EACCES' || err.code === 'EPERM') {
          reject(new SocketAccessError(`permission denied on ${this.socketPath}: its mode or group (adminSocketMode/Group, readSocketMode/Group) leaves this user out, or a folder on its path does (the read-only socket may be open to you: --socket PATH)`))
        } else {
          reject(err)
        }
      })
      req.end(payload)
    })
  }
}
