import http from 'node:http'
import { AdminError, AgentNotRunningError } from './errors.js'
import type { CreateSnapshotRequest, PeerView, ProgressView, RestoreRequest, RestoreResultView, SnapshotView, StatusView, VerifyRequest, VerifyResultView } from './api.js'

export { AdminError, AgentNotRunningError } from './errors.js'

/** The typed client of the admin API: the only way the CLI talks to an agent. */
export class AdminClient {
  readonly socketPath: string

  constructor (init: { socketPath: string }) {
    this.socketPath = init.socketPath
  }

  private async request (method: string, path: string, body?: unknown, options: { signal?: AbortSignal, onLine?: (line: any) => void } = {}): Promise<any> {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    return new Promise((resolve, reject) => {
      const req = http.request({
        socketPath: this.socketPath,
        method,
        path,
        signal: options.signal,
        headers: payload != null ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}
      }, (res) => {
        const ndjson = String(res.headers['content-type'] ?? '').startsWith('application/x-ndjson')
        let text = ''
        let last: any
        res.setEncoding('utf8')
        res.on('data', (d: string) => {
          text += d
          if (!ndjson) return
          let nl: number
          while ((nl = text.indexOf('\n')) >= 0) {
            const line = text.slice(0, nl)
            text = text.slice(nl + 1)
            if (line.trim() === '') continue
            try {
              last = JSON.parse(line)
            } catch {
              continue
            }
            options.onLine?.(last)
          }
        })
        res.on('error', reject)
        res.on('end', () => {
          if (ndjson) { resolve(last); return }
          let value: any
          try {
            value = text === '' ? undefined : JSON.parse(text)
          } catch {
            reject(new AdminError(res.statusCode ?? 500, 'ERR_BAD_RESPONSE', `the agent sent a response that is not JSON: ${text.slice(0, 200)}`))
            return
          }
          if ((res.statusCode ?? 500) >= 400) {
            reject(new AdminError(res.statusCode ?? 500, String(value?.code ?? 'ERR_UNKNOWN'), String(value?.error ?? `HTTP ${String(res.statusCode)}`)))
          } else {
            resolve(value)
          }
        })
      })
      req.on('error', (err: any) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          reject(new AgentNotRunningError(`no agent is listening on ${this.socketPath} (is \`snapmesh agent\` running?)`))
        } else {
          reject(err)
        }
      })
      if (payload != null) req.write(payload)
      req.end()
    })
  }

  async status (): Promise<StatusView> { return this.request('GET', '/v1/status') }
  async peers (): Promise<PeerView[]> { return this.request('GET', '/v1/peers') }
  async listSnapshots (): Promise<SnapshotView[]> { return this.request('GET', '/v1/snapshots') }
  async createSnapshot (req: CreateSnapshotRequest = {}): Promise<SnapshotView> { return this.request('POST', '/v1/snapshots', req) }

  async getSnapshot (id: string, options: { wait?: boolean, timeoutSeconds?: number } = {}): Promise<SnapshotView> {
    const q = options.wait === true ? `?wait=1&timeout=${options.timeoutSeconds ?? 60}` : ''
    return this.request('GET', `/v1/snapshots/${encodeURIComponent(id)}${q}`)
  }

  async verify (req: VerifyRequest, options: { signal?: AbortSignal } = {}): Promise<VerifyResultView> {
    return this.request('POST', '/v1/verify', req, { signal: options.signal })
  }

  /** Streams progress to `onProgress`; resolves with the result or rejects with the agent's error. */
  async restore (req: RestoreRequest, options: { signal?: AbortSignal, onProgress?: (ev: ProgressView) => void } = {}): Promise<RestoreResultView> {
    const last: ProgressView | undefined = await this.request('POST', '/v1/restore', req, {
      signal: options.signal,
      onLine: (ev: ProgressView) => { if (ev.type === 'progress') options.onProgress?.(ev) }
    })
    if (last?.type === 'done') return last.result
    if (last?.type === 'error') throw new AdminError(400, last.code ?? 'ERR_RESTORE', last.error)
    throw new AdminError(500, 'ERR_BAD_RESPONSE', 'the restore stream ended without a result')
  }
}
