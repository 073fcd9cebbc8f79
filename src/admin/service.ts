// What each admin route calls: the AdminBackend that the HTTP server on the admin socket serves.
// Every method delegates to the component that owns the work and maps its answer to the API's
// wire types; nothing here decides protocol or policy.
import path from 'node:path'
import { restore } from '../restore/index.js'
import { InvalidRequestError, NoPartDataError, UnknownParticipantError } from './errors.js'
import { toSnapshotView } from './views.js'
import type {
  AbortOptionsLike, AdminBackend, CreateSnapshotRequest, ForgetRequest, ForgetResultView, KeepRules, PeerView, ProgressView, PruneRequest, PruneResultView,
  RestoreRequest, RestoreResultView, SnapshotView, StatusView, VerifyRequest, VerifyResultView
} from './api.js'
import type { Membership } from '../membership/index.js'
import type { Catalog, SnapshotRecord } from '../metadata/index.js'
import type { Mesh } from '../node/index.js'
import type { CopyChecker } from '../replication/check.js'
import type { HolderFinder } from '../replication/holders.js'
import type { RetentionPolicy, RetentionService } from '../retention/index.js'
import type { SnapshotService } from '../snapshot/service.js'

export interface AdminServiceComponents {
  mesh: Pick<Mesh, 'peerId' | 'addresses'>
  membership: Pick<Membership, 'connected' | 'known'>
  catalog: Pick<Catalog, 'list' | 'resolve'>
  snapshots: Pick<SnapshotService, 'create'> & { frozen: () => string[] }
  retention: Pick<RetentionService, 'forget' | 'prune'>
  checker: Pick<CopyChecker, 'check'>
  holders: Pick<HolderFinder, 'forOwner'>
  apps: () => { socket: string, apps: string[], snapshots: Array<{ id: string, pending: string[] }> }
  quarantine: () => { quarantined: number, replaced: number, failed: number, pending: number }
  clock?: () => number
}

export interface AdminServiceInit {
  name: string
  version: string
  dataDir: string
  copiesWanted: number
}

type Brief = ForgetResultView['forgotten'][number]

function brief (r: SnapshotRecord): Brief {
  return { id: r.id, ...(r.tag != null ? { tag: r.tag } : {}), startedAt: new Date(r.startedAt).toISOString(), status: r.status }
}

/** the API's keep rules (seconds) as the retention policy (milliseconds) */
export function policyOf (k: KeepRules): RetentionPolicy {
  const { withinSeconds, ...counts } = k
  const policy: RetentionPolicy = {}
  for (const [key, value] of Object.entries(counts)) if (value != null) (policy as Record<string, unknown>)[key] = value
  if (withinSeconds != null) policy.within = withinSeconds * 1000
  return policy
}

export class AdminService implements AdminBackend {
  private readonly c: AdminServiceComponents
  private readonly init: AdminServiceInit
  private readonly clock: () => number
  private readonly startedAt: number

  constructor (components: AdminServiceComponents, init: AdminServiceInit) {
    this.c = components
    this.init = init
    this.clock = components.clock ?? Date.now
    this.startedAt = this.clock()
  }

  private async view (record: SnapshotRecord): Promise<SnapshotView> {
    return toSnapshotView(record, { copiesWanted: this.init.copiesWanted })
  }

  async status (): Promise<StatusView> {
    const apps = this.c.apps()
    return {
      peerId: this.c.mesh.peerId,
      name: this.init.name,
      version: this.init.version,
      addresses: this.c.mesh.addresses(),
      uptimeSeconds: Math.round((this.clock() - this.startedAt) / 1000),
      peers: { known: (await this.c.membership.known()).length, connected: (await this.c.membership.connected()).length },
      snapshots: (await this.c.catalog.list()).length,
      dataDir: this.init.dataDir,
      apps: { socket: apps.socket, connected: apps.apps, pendingCuts: apps.snapshots.filter(x => x.pending.length > 0).map(x => ({ id: x.id, pending: x.pending })) },
      frozenFor: this.c.snapshots.frozen(),
      quarantine: this.c.quarantine()
    }
  }

  async peers (): Promise<PeerView[]> {
    const out: PeerView[] = (await this.c.membership.known()).map(p => ({ peerId: p.peerId, name: p.name, addresses: p.addresses, connected: p.connected }))
    return out.sort((a, b) => (a.name ?? a.peerId).localeCompare(b.name ?? b.peerId))
  }

  async createSnapshot (req: CreateSnapshotRequest): Promise<SnapshotView> {
    const record = await this.c.snapshots.create({
      tag: req.tag,
      consistency: req.consistency,
      prepareTimeoutMs: req.prepareTimeoutSeconds != null ? req.prepareTimeoutSeconds * 1000 : undefined
    })
    // listed from the moment the call returns
    return this.view(record)
  }

  async listSnapshots (): Promise<SnapshotView[]> {
    return Promise.all((await this.c.catalog.list()).map(async r => this.view(r)))
  }

  async getSnapshot (id: string): Promise<SnapshotView> {
    return this.view(await this.c.catalog.resolve(id))
  }

  /** one participant of a snapshot, by peer ID or host name */
  private participant (record: SnapshotRecord, node: string): SnapshotRecord['results'][number] {
    const matches = record.results.filter(r => r.peerId === node || r.name === node)
    if (matches.length === 0) {
      const known = record.results.map(r => `${r.name} (${r.peerId})`).join(', ')
      throw new UnknownParticipantError(`snapshot ${record.id.slice(0, 8)} has no participant ${JSON.stringify(node)}; participants: ${known || 'none'}`)
    }
    if (matches.length > 1) throw new InvalidRequestError(`more than one participant is named ${JSON.stringify(node)}: use its peer ID`)
    return matches[0]
  }

  async verify (req: VerifyRequest, options: AbortOptionsLike = {}): Promise<VerifyResultView> {
    const record = await this.c.catalog.resolve(req.snapshot)
    const parts = (req.node != null ? [this.participant(record, req.node)] : record.results).filter(r => r.status === 'ok' && r.root != null)
    const out: VerifyResultView = { snapshot: record.id, ok: true, participants: [] }
    for (const part of parts) {
      if (part.root == null) continue
      const checked = await this.c.checker.check(part.peerId, part.root, { readData: req.readData, repair: req.repair }, options)
      if (checked.problems.some(p => p.repaired !== true)) out.ok = false
      out.participants.push({ peerId: part.peerId, name: part.name, blocks: checked.blocks, copies: checked.copies, problems: checked.problems })
    }
    return out
  }

  async restore (req: RestoreRequest, options: AbortOptionsLike & { onProgress?: (ev: ProgressView) => void } = {}): Promise<RestoreResultView> {
    if (!path.isAbsolute(req.target)) throw new InvalidRequestError(`target must be an absolute path, got ${JSON.stringify(req.target)}`)
    const record = await this.c.catalog.resolve(req.snapshot)
    const part = this.participant(record, req.node ?? this.c.mesh.peerId)
    if (part.status !== 'ok' || part.root == null) throw new NoPartDataError(`participant ${part.name} has no data in snapshot ${record.id.slice(0, 8)}: ${part.error ?? 'its part failed'}`)
    const { getter } = await this.c.holders.forOwner(part.peerId)
    const started = this.clock()
    let files = 0
    let bytes = 0
    // the owner's signed stats bound what its manifest may expand to; a record without them bounds it at nothing
    const bound = part.stats != null ? { files: part.stats.files, dirs: part.stats.dirs, symlinks: part.stats.symlinks, bytes: part.stats.bytes } : { files: 0, dirs: 0, symlinks: 0, bytes: 0 }
    const stats = await restore({ blocks: getter }, {
      root: part.root,
      target: req.target,
      include: req.include,
      resume: req.resume,
      snapshot: record.id,
      peerId: part.peerId,
      bound,
      boundName: part.stats != null ? `the stats of ${part.name} in snapshot ${record.id.slice(0, 8)} state` : `the result of ${part.name} in snapshot ${record.id.slice(0, 8)} states no stats, so the limit is`,
      keepSpecialBits: req.keepSpecialBits,
      noOwner: req.noOwner
    }, {
      signal: options.signal,
      onProgress: (ev: any) => {
        if (ev.type === 'restore:file') {
          files++
          bytes += Number(ev.detail?.bytes ?? 0)
          options.onProgress?.({ type: 'progress', phase: 'restore', files, bytes, totalBytes: part.stats?.bytes })
        }
      }
    })
    return {
      snapshot: record.id,
      peerId: part.peerId,
      name: part.name,
      target: req.target,
      files: stats.files,
      dirs: stats.dirs,
      symlinks: stats.symlinks,
      bytes: stats.bytes,
      blocksFetched: getter.blocksFetched,
      filesKept: stats.filesKept ?? 0,
      durationMs: this.clock() - started
    }
  }

  async forget (req: ForgetRequest, options: AbortOptionsLike = {}): Promise<ForgetResultView> {
    const outcome = await this.c.retention.forget({
      snapshots: req.snapshots,
      keep: req.keep != null ? policyOf(req.keep) : undefined,
      prune: req.prune,
      dryRun: req.dryRun
    }, options)
    const out: ForgetResultView = {
      dryRun: req.dryRun === true,
      forgotten: outcome.forgotten.map(brief),
      kept: outcome.kept.map(k => ({ ...brief(k.record), reasons: k.reasons }))
    }
    // PruneStats is the wire type's shape: it goes out as it is
    if (outcome.prune != null) out.prune = outcome.prune
    return out
  }

  async prune (req: PruneRequest, options: AbortOptionsLike = {}): Promise<PruneResultView> {
    return this.c.retention.prune({ dryRun: req.dryRun }, options)
  }
}
