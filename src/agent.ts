// The composition root: builds every component from the config, starts them in order, stops them
// in reverse. Data flows one way: config -> node -> capture / metadata -> snapshot protocol ->
// replication -> admin socket. The logic lives in the folders; this file only wires them.
import './polyfill.js'
import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import { LevelDatastore } from 'datastore-level'
import PQueue from 'p-queue'
import { AuditedBackend } from './admin/audited.js'
import { AdminServer } from './admin/server.js'
import { AdminService } from './admin/service.js'
import { APPS_SOURCE, createAppHub, type AppHub } from './apps/index.js'
import { AuditService, auditDir } from './audit/index.js'
import { loadConfig, resolveGroup, type Config } from './config/index.js'
import { BlockExchange } from './exchange/index.js'
import { Membership } from './membership/index.js'
import { COPIES_TOPIC, FORGET_TOPIC, Catalog, markerOf, selectors, validators, type CopyReport, type ForgetNotice } from './metadata/index.js'
import { copyReportTopic, forgetTopic } from './metadata/gossip.js'
import { MetadataSync } from './metadata/sync.js'
import { BLOCKS_PROTOCOL, Libp2pMesh, PeerBans, PeerKeeper, createNode, loadOrCreateIdentity, readPsk, type SnapmeshNode } from './node/index.js'
import { Replicator } from './replication/index.js'
import { CopyChecker } from './replication/check.js'
import { BlockHealer } from './replication/heal.js'
import { HolderFinder } from './replication/holders.js'
import { Repairer } from './replication/repair.js'
import { CopyReporter } from './replication/reports.js'
import { RetentionService } from './retention/service.js'
import { Freezer } from './snapshot/freeze.js'
import { LocalCapture } from './snapshot/local.js'
import { Scheduler } from './snapshot/schedules.js'
import { SnapshotService } from './snapshot/service.js'
import { SNAPSHOT_TOPIC } from './snapshot/messages.js'
import { AgentState } from './state/index.js'
import { FsBlockStore } from './store/index.js'
import type { Startable } from '@libp2p/interface'

const log = logger('snapmesh:agent')
export const VERSION = '0.1.0'

/** something built that needs stopping: a Startable, or a plain `stop` */
type Stoppable = Pick<Startable, 'stop'>

export class Agent {
  readonly config: Config
  /** what was started, in order; stopped in reverse */
  private readonly started: Stoppable[] = []
  private admin?: AdminService
  private peerId = ''

  constructor (config: Config) {
    this.config = config
  }

  get id (): string {
    return this.peerId
  }

  private async run<T extends Stoppable & { start: () => Promise<void> | void }> (component: T): Promise<T> {
    await component.start()
    this.started.push(component)
    return component
  }

  async start (): Promise<void> {
    const c = this.config
    await fs.mkdir(c.dataDir, { recursive: true, mode: 0o700 })
    // a folder that existed already keeps its mode through mkdir: nobody else may read the blocks
    await fs.chmod(c.dataDir, 0o700)
    const adminGid = await resolveGroup(c.file, 'adminSocketGroup', c.adminSocketGroup)
    const readGid = await resolveGroup(c.file, 'readSocketGroup', c.readSocketGroup)
    const { privateKey, peerId } = await loadOrCreateIdentity(c.dataDir)
    const self = this.peerId = peerId.toString()
    const psk = c.psk != null ? await readPsk(c.psk) : undefined
    const maxSkewMs = c.network.maxClockSkewSeconds * 1000

    let healer: BlockHealer | undefined
    const blocks = await this.run(new FsBlockStore({ path: path.join(c.dataDir, 'store'), onCorrupt: (cid) => { healer?.corrupt(cid) } }))
    const catalog = await this.run(new Catalog({ path: path.join(c.dataDir, 'catalog') }))
    const state = await this.run(new AgentState({ path: path.join(c.dataDir, 'state') }))
    await state.adoptLegacy(catalog)
    const datastore = new LevelDatastore(path.join(c.dataDir, 'libp2p'))
    await datastore.open()
    this.started.push({ stop: async () => { await datastore.close() } })

    const bans = new PeerBans()
    const node: SnapmeshNode = await createNode({
      privateKey,
      listen: c.listen,
      announce: c.announce,
      bootstrap: c.bootstrap,
      psk,
      datastore,
      validators,
      selectors,
      maxMessageBytes: c.network.maxMessageBytes,
      agentVersion: `snapmesh/${VERSION} (${c.name})`,
      scoredTopics: [SNAPSHOT_TOPIC, COPIES_TOPIC, FORGET_TOPIC],
      bans
    })
    this.started.push({ stop: async () => { await node.stop() } })
    const mesh = await this.run(new Libp2pMesh(node, { bans, banMs: c.network.banSeconds * 1000 }))
    const audit = await this.run(new AuditService({ privateKey, mesh, libp2p: node }, {
      dir: auditDir(c.dataDir),
      headMs: c.audit.headSeconds * 1000,
      windowMs: c.audit.rejectWindowSeconds * 1000,
      maxFileBytes: c.audit.maxFileBytes
    }))
    mesh.onReject = (ev) => { audit.rejected(ev) }
    const membership = await this.run(new Membership({ mesh }))

    const exchange = await this.run(new BlockExchange({ libp2p: node, blocks }, {
      concurrency: c.network.fetchConcurrency,
      timeoutMs: c.network.fetchTimeoutSeconds * 1000
    }))
    const replicator = await this.run(new Replicator({ libp2p: node, blocks, exchange }, {
      copies: c.replication.copies,
      concurrency: c.replication.concurrency,
      bytesPerSecond: c.replication.bandwidthMBps * 1e6
    }))
    const holders = new HolderFinder({ blocks, exchange, members: async () => membership.current() }, { self, copies: c.replication.copies })
    healer = await this.run(new BlockHealer({ blocks, fetch: async (cid, options) => holders.fetchAnywhere(cid, options) }))

    // captures and prunes run one at a time, in order
    const serial = new PQueue({ concurrency: 1 })
    this.started.push({ stop: async () => { await serial.onIdle() } })
    let snapshots: SnapshotService | undefined
    let retention: RetentionService | undefined
    // notices of other members applied here are audited; this agent's own are its admin request's
    const applyForget = async (notice: ForgetNotice, via: string): Promise<void> => {
      if (await retention?.applyForget(notice) === true && notice.by !== self) await audit.record('forget', { id: notice.id, by: notice.by, via, prune: notice.prune })
    }
    const sync = new MetadataSync({
      privateKey,
      mesh,
      catalog,
      state,
      members: async () => membership.connected(),
      onRecord: (merged) => { snapshots?.protocol.adopt(markerOf(merged), merged.results) },
      onForget: async (notice) => { await applyForget(notice, 'head') }
    }, { syncMs: c.network.syncSeconds * 1000, republishMs: c.network.republishHours * 3600 * 1000, maxSkewMs })
    const mergeReport = async (report: CopyReport): Promise<void> => {
      const merged = await catalog.addCopyReport(report)
      if (merged != null && merged.status !== 'running') await sync.publishRecord(merged)
    }
    const reporter = new CopyReporter({ privateKey, mesh, merge: mergeReport }, { wanted: c.replication.copies })
    const repairer = new Repairer({ membership, records: async () => catalog.list(), state, replicator, blocks, holders, reporter }, {
      copies: c.replication.copies,
      concurrency: c.replication.concurrency,
      graceMs: c.replication.graceSeconds * 1000,
      checkMs: c.replication.checkSeconds * 1000
    })

    const apps: AppHub = createAppHub({
      libp2p: node,
      peerId: self,
      name: c.name,
      onMarker: (marker) => { snapshots?.handleAppMarker(marker).catch(err => { log.error('snapshot %s started by an app message: %s', marker.id.slice(0, 8), err.message) }) },
      restore: async (req, options) => audit.recorded('restore', { via: 'app', app: req.app, snapshot: req.snapshot, node: req.node }, async () => {
        const r = await this.backend.restore({ snapshot: req.snapshot, node: req.node, target: req.target, include: [`${APPS_SOURCE}/${req.app}`], noOwner: true }, options)
        return { snapshot: r.snapshot, peerId: r.peerId }
      })
    }, {
      socketPath: c.apps.socket,
      workDir: path.join(c.dataDir, 'apps'),
      maxMessageBytes: c.apps.maxMessageBytes,
      maxStateBytes: c.apps.maxStateBytes,
      tokens: c.apps.tokens
    })
    const local = new LocalCapture({
      blocks,
      state,
      apps,
      serial,
      lamport: () => snapshots?.protocol.lamport ?? 0,
      onCaptured: (id, root) => { void repairer.replicateOwn(id, root) }
    }, { peerId: self, name: c.name, sources: c.sources, appsSource: APPS_SOURCE })
    this.started.push({ stop: async () => { local.stop() } })
    snapshots = await this.run(new SnapshotService({
      privateKey,
      mesh,
      catalog,
      state,
      capture: async (marker, options) => local.capture(marker, options),
      freezer: new Freezer({ state }, { sources: c.sources }),
      expected: async () => membership.current(),
      onFinal: (record) => {
        void audit.recordSnapshot(record)
        sync.publishRecord(record).catch(err => { log('publishing %s failed: %s', record.id.slice(0, 8), err.message) })
      }
    }, {
      name: c.name,
      deadlineMs: c.snapshot.deadlineSeconds * 1000,
      prepareTimeoutMs: c.snapshot.prepareTimeoutSeconds * 1000,
      consistency: c.snapshot.consistency,
      maxMessageBytes: c.network.maxMessageBytes,
      maxPrepareTimeoutMs: c.snapshot.maxPrepareTimeoutSeconds * 1000,
      maxFreezeMs: c.snapshot.maxFreezeSeconds * 1000,
      maxSkewMs
    }))
    const live = snapshots
    retention = await this.run(new RetentionService({
      privateKey,
      mesh,
      catalog,
      state,
      blocks,
      isRunning: (id) => live.isRunning(id),
      published: sync,
      getterFor: async (owner) => (await holders.forOwner(owner)).getter,
      serial
    }, { pruneGraceMs: c.retention.pruneGraceSeconds * 1000, sweepMs: c.retention.sweepHours * 3600 * 1000 }))
    mesh.subscribe(copyReportTopic(mergeReport, { now: Date.now, maxSkewMs }))
    mesh.subscribe(forgetTopic(async (notice) => { await applyForget(notice, 'gossip') }, { now: Date.now, maxSkewMs }))

    await this.run(new PeerKeeper({ libp2p: node }, { bootstrap: c.bootstrap, intervalMs: c.network.reconnectSeconds * 1000, memberProtocol: BLOCKS_PROTOCOL }))
    await this.run(apps)
    this.admin = new AdminService({
      mesh,
      membership,
      catalog,
      snapshots: { create: async (req) => live.create(req), frozen: () => live.protocol.frozen() },
      retention,
      checker: new CopyChecker({ blocks, exchange, holders, replicator }, { self }),
      holders,
      apps: () => apps.status(),
      quarantine: () => healer?.stats() ?? { quarantined: 0, replaced: 0, failed: 0, pending: 0 }
    }, { name: c.name, version: VERSION, dataDir: c.dataDir, copiesWanted: c.replication.copies })
    const audited = new AuditedBackend(this.admin, audit)
    await this.run(new AdminServer({ backend: audited }, { socketPath: c.adminSocket, mode: c.adminSocketMode, gid: adminGid }))
    if (c.readSocket != null) {
      await this.run(new AdminServer({ backend: audited }, { socketPath: c.readSocket, kind: 'read', mode: c.readSocketMode, gid: readGid }))
    }

    await this.run(new Scheduler({
      protocol: live.protocol,
      history: {
        forgotten: async (id) => await catalog.forgotten(id) != null,
        record: async (id) => {
          const r = await catalog.get(id).catch(() => undefined)
          return r != null ? { marker: markerOf(r), results: r.results } : undefined
        }
      },
      expected: async () => membership.current()
    }, { schedules: c.schedules, lateMs: c.snapshot.deadlineSeconds * 1000 }))
    await this.run(sync)
    await this.run(repairer)
    log('agent %s (%s) started', c.name, self)
  }

  /** the admin backend: what the admin socket's routes call */
  get backend (): AdminService {
    if (this.admin == null) throw new Error('the agent is not started')
    return this.admin
  }

  async stop (): Promise<void> {
    for (const component of this.started.splice(0).reverse()) {
      await Promise.resolve(component.stop()).catch((err: Error) => { log.error('stopping failed: %s', err.message) })
    }
  }
}

/** Runs an agent until SIGINT or SIGTERM. */
export async function runAgent (configPath: string): Promise<void> {
  const config = await loadConfig(configPath)
  const agent = new Agent(config)
  try {
    await agent.start()
  } catch (err) {
    await agent.stop()
    throw err
  }
  const status = await agent.backend.status()
  process.stdout.write(`snapmesh agent ${status.name} ${status.peerId}\n`)
  for (const a of status.addresses) process.stdout.write(`  listening on ${a}\n`)
  process.stdout.write(`  admin socket ${config.adminSocket}\n`)
  if (config.readSocket != null) process.stdout.write(`  read-only admin socket ${config.readSocket}\n`)
  await new Promise<void>(resolve => {
    process.once('SIGINT', () => { resolve() })
    process.once('SIGTERM', () => { resolve() })
  })
  process.stdout.write('stopping\n')
  await agent.stop()
}
