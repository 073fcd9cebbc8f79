// The admin backend as the audit log sees it: every request is handed to the backend it wraps,
// then recorded with its route, its parameters (nothing secret) and its outcome, `ok` or the
// error's code. Restore, verify, forget and prune are entries of their own action, with a summary
// of what they did; every other request is an `admin` entry. The audit routes are served here too.
import { codeOf } from './http-utils.js'
import type {
  AbortOptionsLike, AdminBackend, AuditEntryView, AuditHeadView, AuditShowRequest, AuditVerifyView, CreateSnapshotRequest, ForgetRequest, ForgetResultView,
  PeerView, ProgressView, PruneRequest, PruneResultView, RestoreRequest, RestoreResultView, SnapshotView, StatusView, VerifyRequest, VerifyResultView
} from './api.js'
import type { AuditAction, AuditService } from '../audit/index.js'

/** parameter names whose values are never logged */
const SECRET = /token|secret|password|passphrase|psk|private|credential/i
/** entries `audit show` returns unless asked for another number */
export const DEFAULT_SHOW_LIMIT = 1000

/** `params` with every secret-looking field replaced, recursively */
export function publicParams (params: unknown): unknown {
  if (Array.isArray(params)) return params.map(publicParams)
  if (params == null || typeof params !== 'object') return params
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(params)) out[k] = SECRET.test(k) ? '[redacted]' : publicParams(v)
  return out
}

export type AuditSink = Pick<AuditService, 'record' | 'show' | 'verify'> & { heads: Pick<AuditService['heads'], 'list'> }

export class AuditedBackend implements AdminBackend {
  private readonly inner: AdminBackend
  private readonly audit: AuditSink

  constructor (inner: AdminBackend, audit: AuditSink) {
    this.inner = inner
    this.audit = audit
  }

  /** runs one request and records it, whatever its outcome */
  private async run<T> (action: AuditAction, route: string, params: unknown, fn: () => Promise<T>, summary?: (result: T) => object): Promise<T> {
    let result: T
    try {
      result = await fn()
    } catch (err) {
      await this.audit.record(action, { route, ...(params != null ? { params: publicParams(params) } : {}), outcome: codeOf(err) })
      throw err
    }
    await this.audit.record(action, { route, ...(params != null ? { params: publicParams(params) } : {}), outcome: 'ok', ...(summary != null ? { result: summary(result) } : {}) })
    return result
  }

  async status (): Promise<StatusView> {
    return this.run('admin', 'GET /v1/status', undefined, async () => this.inner.status())
  }

  async peers (): Promise<PeerView[]> {
    return this.run('admin', 'GET /v1/peers', undefined, async () => this.inner.peers())
  }

  async createSnapshot (req: CreateSnapshotRequest): Promise<SnapshotView> {
    return this.run('admin', 'POST /v1/snapshots', req, async () => this.inner.createSnapshot(req), s => ({ id: s.id }))
  }

  async listSnapshots (): Promise<SnapshotView[]> {
    return this.run('admin', 'GET /v1/snapshots', undefined, async () => this.inner.listSnapshots())
  }

  async getSnapshot (id: string, options: { poll?: boolean } = {}): Promise<SnapshotView> {
    // the repeated asks of one long-poll are the one request already recorded
    if (options.poll === true) return this.inner.getSnapshot(id, options)
    return this.run('admin', 'GET /v1/snapshots/:id', { id }, async () => this.inner.getSnapshot(id))
  }

  async restore (req: RestoreRequest, options: AbortOptionsLike & { onProgress?: (ev: ProgressView) => void }): Promise<RestoreResultView> {
    return this.run('restore', 'POST /v1/restore', req, async () => this.inner.restore(req, options),
      r => ({ snapshot: r.snapshot, peerId: r.peerId, files: r.files, bytes: r.bytes, blocksFetched: r.blocksFetched }))
  }

  async verify (req: VerifyRequest, options: AbortOptionsLike): Promise<VerifyResultView> {
    return this.run('verify', 'POST /v1/verify', req, async () => this.inner.verify(req, options),
      r => ({ snapshot: r.snapshot, ok: r.ok, problems: r.participants.reduce((n, p) => n + p.problems.length, 0) }))
  }

  async forget (req: ForgetRequest, options: AbortOptionsLike): Promise<ForgetResultView> {
    return this.run('forget', 'POST /v1/forget', req, async () => this.inner.forget(req, options),
      r => ({ dryRun: r.dryRun, forgotten: r.forgotten.map(f => f.id), kept: r.kept.length, ...(r.prune != null ? { pruned: r.prune.deleted } : {}) }))
  }

  async prune (req: PruneRequest, options: AbortOptionsLike): Promise<PruneResultView> {
    return this.run('prune', 'POST /v1/prune', req, async () => this.inner.prune(req, options),
      r => ({ dryRun: r.dryRun, deleted: r.deleted, bytesFreed: r.bytesFreed }))
  }

  async auditShow (req: AuditShowRequest): Promise<AuditEntryView[]> {
    return this.run('admin', 'GET /v1/audit', req, async () => {
      const entries = await this.audit.show({ since: req.since != null ? Date.parse(req.since) : undefined, limit: req.limit ?? DEFAULT_SHOW_LIMIT })
      return entries.map(e => ({ seq: e.seq, time: e.time, action: e.action, data: e.data, signer: e.signer, file: e.file, line: e.line }))
    })
  }

  async auditVerify (options: AbortOptionsLike): Promise<AuditVerifyView> {
    return this.run('verify', 'POST /v1/audit/verify', undefined, async () => this.audit.verify(options),
      r => ({ ok: r.ok, lastSeq: r.lastSeq, ...(r.problem != null ? { problem: r.problem.kind, seq: r.problem.seq } : {}) }))
  }

  async auditHeads (): Promise<AuditHeadView[]> {
    return this.run('admin', 'GET /v1/audit/heads', undefined, async () => this.audit.heads.list().map(h => ({
      peerId: h.head.peerId,
      seq: h.head.seq,
      hash: h.head.hash,
      time: new Date(h.head.time).toISOString(),
      forks: h.forks.map(f => ({ seq: f.seq, hash: f.hash }))
    })))
  }
}
