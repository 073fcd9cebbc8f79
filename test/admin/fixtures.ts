import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { AmbiguousIdError, NotFoundError } from '../../src/metadata/index.js'
import type { AdminBackend, CreateSnapshotRequest, ForgetRequest, ForgetResultView, PeerView, PruneRequest, PruneResultView, ProgressView, RestoreRequest, RestoreResultView, SnapshotStatus, SnapshotView, StatusView, VerifyRequest, VerifyResultView } from '../../src/admin/api.js'

export const PEER_A = '12D3KooWAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
export const PEER_B = '12D3KooWBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'

export const ID_AA11 = 'aa11' + '0'.repeat(60)
export const ID_AA22 = 'aa22' + '0'.repeat(60)
export const ID_BB33 = 'bb33' + '0'.repeat(60)
export const ID_NEW = 'cc44' + '1'.repeat(60)

export async function tempDir (prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `snapmesh-${prefix}-`))
}

export function snapshotView (id: string, status: SnapshotStatus = 'complete', at = Date.parse('2026-01-01T00:00:00.000Z')): SnapshotView {
  return {
    id,
    status,
    initiator: PEER_A,
    lamport: 1,
    startedAt: new Date(at).toISOString(),
    deadline: new Date(at + 120_000).toISOString(),
    ...(status !== 'running' ? { finishedAt: new Date(at + 5_000).toISOString() } : {}),
    participants: [
      {
        peerId: PEER_A,
        name: 'alpha',
        status: 'ok',
        root: 'bafyrootalpha',
        stats: { files: 3, dirs: 1, symlinks: 0, bytes: 3000, filesRead: 3, filesReused: 0, bytesRead: 3000, chunks: 3, newChunks: 3, newBytes: 3000, durationMs: 40 },
        errors: [{ source: 'etc', path: 'shadow', message: 'EACCES: permission denied' }],
        copies: 2,
        holders: [PEER_A, PEER_B],
        copiesCountedAt: new Date(at + 6_000).toISOString(),
        copiesCountedBy: PEER_A
      },
      status === 'complete'
        ? { peerId: PEER_B, name: 'beta', status: 'ok', root: 'bafyrootbeta', copies: 1 }
        : status === 'running'
          ? { peerId: PEER_B, name: 'beta', status: 'pending' }
          : { peerId: PEER_B, name: 'beta', status: 'missing' }
    ],
    ...(status === 'partial' ? { reasons: ['beta sent no result before the deadline'] } : {}),
    consistency: 'marker',
    copiesWanted: 2,
    protected: false
  }
}

export interface TestBackendInit {
  /** how a snapshot created through the API ends */
  outcome?: SnapshotStatus
  /** how long it stays 'running' */
  runningMs?: number
}

/**
 * An AdminBackend with fixed answers, so that what runs under test is the HTTP layer, its client
 * and the CLI. Snapshot IDs follow the agent's rules: a unique prefix finds one, else 404/409.
 */
export class TestBackend implements AdminBackend {
  readonly snapshots: SnapshotView[] = [snapshotView(ID_AA11), snapshotView(ID_AA22), snapshotView(ID_BB33, 'partial')]
  readonly restores: RestoreRequest[] = []
  restoreAborted = false
  private readonly outcome: SnapshotStatus
  private readonly runningMs: number
  private created?: { view: SnapshotView, at: number }
  getCalls = 0

  constructor (init: TestBackendInit = {}) {
    this.outcome = init.outcome ?? 'complete'
    this.runningMs = init.runningMs ?? 300
  }

  async status (): Promise<StatusView> {
    return {
      peerId: PEER_A,
      name: 'alpha',
      version: '0.1.0',
      addresses: ['/ip4/127.0.0.1/tcp/4101/p2p/' + PEER_A],
      uptimeSeconds: 75,
      peers: { known: 2, connected: 1 },
      snapshots: this.snapshots.length,
      dataDir: '/var/lib/snapmesh'
    }
  }

  async peers (): Promise<PeerView[]> {
    return [
      { peerId: PEER_B, name: 'beta', addresses: ['/ip4/127.0.0.1/tcp/4102', '/ip4/10.0.0.2/tcp/4102'], connected: true },
      { peerId: '12D3KooWCccc', addresses: [], connected: false }
    ]
  }

  async createSnapshot (req: CreateSnapshotRequest): Promise<SnapshotView> {
    const view = { ...snapshotView(ID_NEW, 'running', Date.now()), ...(req.tag != null ? { tag: req.tag } : {}) }
    this.created = { view, at: Date.now() }
    return view
  }

  async listSnapshots (): Promise<SnapshotView[]> {
    return [...this.snapshots, ...(this.created != null ? [this.current()] : [])]
  }

  private current (): SnapshotView {
    const c = this.created
    if (c == null) throw new Error('nothing created')
    if (Date.now() - c.at < this.runningMs) return c.view
    return { ...snapshotView(c.view.id, this.outcome, c.at), ...(c.view.tag != null ? { tag: c.view.tag } : {}) }
  }

  async getSnapshot (id: string): Promise<SnapshotView> {
    this.getCalls++
    if (id === 'boom') throw new Error('the catalog is on fire')
    if (id === 'zz') throw Object.assign(new Error('prefix "zz" is not hexadecimal'), { code: 'ERR_INVALID_PREFIX' })
    const matches = (await this.listSnapshots()).filter(s => s.id.startsWith(id))
    if (matches.length === 0) throw new NotFoundError(`no snapshot matches "${id}"`)
    if (matches.length > 1) throw new AmbiguousIdError(`"${id}" matches ${matches.length} snapshots: ${matches.map(s => s.id.slice(0, 8)).join(', ')}`)
    return matches[0]
  }

  readonly forgets: ForgetRequest[] = []

  /** forgets by ID from the fixed list (a dry run leaves it), or by keep rules (the newest `last`) */
  async forget (req: ForgetRequest): Promise<ForgetResultView> {
    this.forgets.push(req)
    const brief = (s: SnapshotView): ForgetResultView['forgotten'][number] => ({ id: s.id, startedAt: s.startedAt, status: s.status })
    let doomed: SnapshotView[]
    let kept: ForgetResultView['kept'] = []
    if (req.keep != null) {
      const last = req.keep.last ?? 0
      kept = this.snapshots.slice(0, last).map(s => ({ ...brief(s), reasons: ['last'] }))
      doomed = this.snapshots.slice(last)
    } else {
      doomed = await Promise.all((req.snapshots ?? []).map(async id => this.getSnapshot(id)))
    }
    if (req.dryRun !== true) {
      for (const d of doomed) this.snapshots.splice(this.snapshots.indexOf(d), 1)
    }
    return { dryRun: req.dryRun === true, forgotten: doomed.map(brief), kept, ...(req.prune === true ? { prune: await this.prune({ dryRun: req.dryRun }) } : {}) }
  }

  async prune (req: PruneRequest): Promise<PruneResultView> {
    return { dryRun: req.dryRun === true, roots: 4, referenced: 120, stored: 150, deleted: 30, bytesFreed: 31_457_280, young: 0, durationMs: 12 }
  }

  async verify (req: VerifyRequest): Promise<VerifyResultView> {
    const bad = req.snapshot === 'bb33'
    return {
      snapshot: req.snapshot,
      ok: !bad,
      participants: [{
        peerId: PEER_A,
        name: 'alpha',
        blocks: 3,
        copies: 6,
        problems: bad ? [{ holder: PEER_B, cid: 'bafyblock', path: 'etc/hosts', state: 'missing' }] : []
      }]
    }
  }

  async restore (req: RestoreRequest, options: { signal?: AbortSignal, onProgress?: (ev: ProgressView) => void }): Promise<RestoreResultView> {
    this.restores.push(req)
    if (req.snapshot === 'slow') {
      await new Promise((resolve, reject) => {
        options.signal?.addEventListener('abort', () => {
          this.restoreAborted = true
          reject(new Error('restore aborted'))
        })
      })
    }
    if (req.snapshot === 'evil') throw Object.assign(new Error('refusing to restore "../x": it leaves the target'), { code: 'ERR_UNSAFE_PATH' })
    if (req.snapshot === 'ff') throw new NotFoundError('no snapshot matches "ff"')
    // "long": progress lines far apart, as a restore waiting on slow peers sends them
    const gapMs = req.snapshot === 'long' ? 700 : 60
    for (let i = 1; i <= 3; i++) {
      options.onProgress?.({ type: 'progress', phase: 'restore', files: i, bytes: i * 1000, totalBytes: 3000 })
      await new Promise(resolve => setTimeout(resolve, gapMs))
    }
    return { snapshot: ID_AA11, peerId: PEER_A, name: 'alpha', target: req.target, files: 3, dirs: 1, symlinks: 0, bytes: 3000, blocksFetched: 2, filesKept: 0, durationMs: 180 }
  }
}
