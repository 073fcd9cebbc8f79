// The composition root: builds every component from the config, starts them in order, stops them
// in reverse. Data flows one way: config -> node -> capture / metadata -> snapshot protocol ->
// block exchange / restore -> admin socket.
import './polyfill.js'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import { Cron } from 'croner'
import { TopicValidatorResult } from '@libp2p/interface'
import { LevelDatastore } from 'datastore-level'
import { CID } from 'multiformats/cid'
import { AdminServer } from './admin/server.js'
import { APPS_SOURCE, createAppHub, type AppHub } from './apps/index.js'
import { capture } from './capture/index.js'
import { loadConfig, type Config } from './config/index.js'
import { BlockExchange, RemoteBlockGetter } from './exchange/index.js'
import { COPIES_TOPIC, FORGET_TOPIC, ForgottenSnapshotError, decodeForgetNotice, encodeForgetNotice, signForgetNotice, type ForgetNotice, Catalog, Republisher, selectors, validators, headKey, recordKey, encodeRecord, decodeRecord, decodeHead, signHead, markerOf, recordFromState, decodeCopyReport, encodeCopyReport, signCopyReport, type CopyReport, type SnapshotRecord } from './metadata/index.js'
import { BLOCKS_PROTOCOL, PeerKeeper, createNode, loadOrCreateIdentity, readPsk, type SnapmeshNode } from './node/index.js'
import { Replicator, verifyCopies } from './replication/index.js'
import { BlockHealer } from './replication/heal.js'
import { weight } from './replication/placement.js'
import { placementFor, takeOver, takerFor } from './replication/takeover.js'
import { restore } from './restore/index.js'
import { applyPolicy, policyProblem, prune, type KeptRoot, type PruneStats, type RetentionPolicy } from './retention/index.js'
import { SNAPSHOT_TOPIC, SnapshotProtocol, computeStatus, decodeMessage, scheduledSnapshotId, validateGossip, signResult, type Marker, type ResultBody, type SeenKind, type SnapshotState } from './snapshot/index.js'
import { runPostHooks, runPreHooks } from './hooks/index.js'
import { FsBlockStore } from './store/index.js'
import { AgentError, NotFoundError, InvalidRequestError } from './errors.js'
import { toSnapshotView } from './views.js'
import type { AdminBackend, CreateSnapshotRequest, ForgetRequest, ForgetResultView, PeerView, PruneRequest, PruneResultView, ProgressView, RestoreRequest, RestoreResultView, SnapshotView, StatusView, VerifyRequest, VerifyResultView } from './admin/api.js'
import type { AbortOptions, PeerId, PrivateKey } from '@libp2p/interface'

const log = logger('snapmesh:agent')
export const VERSION = '0.1.0'
const LAST_ROOT = 'last-root'

export class Agent implements AdminBackend {
  readonly config: Config
  private readonly shutdown = new AbortController()
  private readonly timers: Array<ReturnType<typeof setInterval>> = []
  private readonly startedAt = Date.now()
  /** when each member was last seen connected, for the repair grace period */
  private readonly lastSeen = new Map<string, number>()
  private privateKey!: PrivateKey
  private peerId!: PeerId
  private node!: SnapmeshNode
  private datastore!: LevelDatastore
  private blocks!: FsBlockStore
  private catalog!: Catalog
  private exchange!: BlockExchange
  private protocol!: SnapshotProtocol
  private admin!: AdminServer
  private keeper!: PeerKeeper
  private republisher!: Republisher
  private replicator!: Replicator
  private healer?: BlockHealer
  private apps!: AppHub
  /** serialises captures: one snapshot's local part at a time */
  private captureChain: Promise<unknown> = Promise.resolve()
  private readonly published = new Map<string, string>()
  private syncing = false

  constructor (config: Config) {
    this.config = config
  }

  get id (): string {
    return this.peerId.toString()
  }

  async start (): Promise<void> {
    const c = this.config
    await fs.mkdir(c.dataDir, { recursive: true, mode: 0o700 })
    const identity = await loadOrCreateIdentity(c.dataDir)
    this.privateKey = identity.privateKey
    this.peerId = identity.peerId
    const psk = c.psk != null ? await readPsk(c.psk) : undefined

    this.blocks = new FsBlockStore({ path: path.join(c.dataDir, 'store'), onCorrupt: (cid) => { this.healer?.corrupt(cid) } })
    await this.blocks.start()
    this.catalog = new Catalog({ path: path.join(c.dataDir, 'catalog') })
    await this.catalog.start()
    this.datastore = new LevelDatastore(path.join(c.dataDir, 'libp2p'))
    await this.datastore.open()

    this.node = await createNode({
      privateKey: this.privateKey,
      listen: c.listen,
      announce: c.announce,
      bootstrap: c.bootstrap,
      psk,
      datastore: this.datastore,
      validators,
      selectors,
      maxMessageBytes: c.network.maxMessageBytes,
      agentVersion: `snapmesh/${VERSION} (${c.name})`
    })

    this.exchange = new BlockExchange({ libp2p: this.node, blocks: this.blocks }, {
      concurrency: c.network.fetchConcurrency,
      timeoutMs: c.network.fetchTimeoutSeconds * 1000
    })
    await this.exchange.start()
    this.replicator = new Replicator({ libp2p: this.node, blocks: this.blocks, exchange: this.exchange }, {
      copies: c.replication.copies,
      concurrency: c.replication.concurrency,
      bytesPerSecond: c.replication.bandwidthMBps * 1e6
    })
    await this.replicator.start()
    // a block any read found corrupt is quarantined by the store and fetched again from a member
    // that holds an intact copy: the members of highest placement weight for it first
    this.healer = new BlockHealer({
      blocks: this.blocks,
      fetch: async (cid, options) => {
        const members = await this.memberPeers()
        const ranked = members.map(p => ({ p, w: weight(cid, p) })).sort((a, b) => a.w === b.w ? 0 : a.w > b.w ? -1 : 1).map(x => x.p)
        return new RemoteBlockGetter({ blocks: this.blocks, exchange: this.exchange }, { holders: ranked }).get(cid, options)
      }
    })
    await this.healer.start()

    const lamport = Number(await this.catalog.getMeta('lamport') ?? 0)
    this.protocol = new SnapshotProtocol({
      peerId: this.id,
      clock: () => Date.now(),
      random: (n: number) => crypto.randomBytes(n),
      publish: async (bytes: Uint8Array) => { await this.publish(bytes) },
      capture: async (marker: Marker, options?: AbortOptions) => this.captureLocal(marker, options),
      sign: async (body: ResultBody) => signResult(this.privateKey, body),
      onChange: (state: SnapshotState) => { this.onSnapshotChange(state) },
      prepare: async (marker: Marker, options?: AbortOptions) => { await this.freeze(marker, options) },
      release: async (marker: Marker) => { await this.thaw(marker.id) }
    }, { deadlineMs: c.snapshot.deadlineSeconds * 1000, lamport, name: c.name })
    await this.thawLeftovers()

    const pubsub = this.node.services.pubsub
    pubsub.topicValidators.set(SNAPSHOT_TOPIC, async (propagationSource, msg) => {
      // `propagationSource` is whoever relayed the message; its author is `msg.from`, whose
      // signature gossipsub (StrictSign) has already checked
      if (msg.type !== 'signed') return TopicValidatorResult.Reject
      const from = msg.from
      const verdict = await validateGossip({ from: from.toString(), data: msg.data }, {
        seen: (id: string, kind: SeenKind, peerId?: string) => this.protocol.seen(id, kind, peerId),
        now: Date.now(),
        maxBytes: c.network.maxMessageBytes
      })
      if (verdict.action === 'accept') return TopicValidatorResult.Accept
      log('gossip message from %s via %s: %s (%s)', from, propagationSource, verdict.action, verdict.error?.message)
      return verdict.action === 'reject' ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    })
    pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic !== SNAPSHOT_TOPIC || evt.detail.type !== 'signed') return
      this.onGossip(evt.detail.data).catch(err => { log.error('handling gossip failed: %s', err.message) })
    })
    pubsub.subscribe(SNAPSHOT_TOPIC)
    pubsub.topicValidators.set(COPIES_TOPIC, async (propagationSource, msg) => {
      if (msg.type !== 'signed') return TopicValidatorResult.Reject
      try {
        const report = await decodeCopyReport(msg.data)
        if (report.reporter !== msg.from.toString()) throw new Error(`copy report names reporter ${report.reporter} but was sent by ${msg.from.toString()}`)
        return TopicValidatorResult.Accept
      } catch (err: any) {
        log('copy report from %s via %s rejected: %s', msg.from, propagationSource, err.message)
        return TopicValidatorResult.Reject
      }
    })
    pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic !== COPIES_TOPIC || evt.detail.type !== 'signed') return
      decodeCopyReport(evt.detail.data).then(async report => { await this.onCopyReport(report) })
        .catch(err => { log.error('handling a copy report failed: %s', err.message) })
    })
    pubsub.subscribe(COPIES_TOPIC)
    pubsub.topicValidators.set(FORGET_TOPIC, async (propagationSource, msg) => {
      if (msg.type !== 'signed') return TopicValidatorResult.Reject
      try {
        const notice = await decodeForgetNotice(msg.data)
        if (notice.by !== msg.from.toString()) throw new Error(`forget notice names ${notice.by} but was sent by ${msg.from.toString()}`)
        return TopicValidatorResult.Accept
      } catch (err: any) {
        log('forget notice from %s via %s rejected: %s', msg.from, propagationSource, err.message)
        return TopicValidatorResult.Reject
      }
    })
    pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic !== FORGET_TOPIC || evt.detail.type !== 'signed') return
      decodeForgetNotice(evt.detail.data).then(async notice => { await this.applyForget(notice) })
        .catch(err => { log.error('handling a forget notice failed: %s', err.message) })
    })
    pubsub.subscribe(FORGET_TOPIC)

    this.keeper = new PeerKeeper({ libp2p: this.node }, {
      bootstrap: c.bootstrap,
      intervalMs: c.network.reconnectSeconds * 1000,
      memberProtocol: BLOCKS_PROTOCOL
    })
    await this.keeper.start()

    this.apps = createAppHub({
      libp2p: this.node,
      peerId: this.id,
      name: c.name,
      onMarker: (marker: Marker) => { this.onAppMarker(marker).catch(err => { log.error('snapshot %s started by an app message: %s', marker.id.slice(0, 8), err.message) }) },
      restore: async (req, options) => {
        const r = await this.restore({ snapshot: req.snapshot, node: req.node, target: req.target, include: [`${APPS_SOURCE}/${req.app}`] }, options)
        return { snapshot: r.snapshot, peerId: r.peerId }
      }
    }, {
      socketPath: c.apps.socket,
      workDir: path.join(c.dataDir, 'apps'),
      maxMessageBytes: c.apps.maxMessageBytes,
      maxStateBytes: c.apps.maxStateBytes
    })
    await this.apps.start()

    this.admin = new AdminServer({ backend: this }, { socketPath: c.adminSocket })
    await this.admin.start()

    this.every(500, () => { this.protocol.tick(Date.now()) })
    this.startSchedules()
    this.every(c.network.syncSeconds * 1000, async () => { await this.sync() })
    if (c.replication.copies > 1) this.every(c.replication.checkSeconds * 1000, async () => { await this.repair() })
    this.republisher = new Republisher({ put: async (key, value, options) => { await this.dhtPut(key, value, AbortSignal.any([this.shutdown.signal, ...(options?.signal != null ? [options.signal] : [])])) } }, {
      intervalMs: c.network.republishHours * 3600 * 1000
    })
    await this.republisher.start()
    setTimeout(() => { void this.publishAll() }, 2000).unref()
    setTimeout(() => { void this.sync() }, 1000).unref()
    log('agent %s (%s) started', c.name, this.id)
  }

  async stop (): Promise<void> {
    this.shutdown.abort()
    for (const t of this.timers) clearInterval(t)
    clearTimeout(this.pruneTimer)
    await this.admin?.stop().catch(() => {})
    await this.apps?.stop().catch(() => {})
    await this.captureChain.catch(() => {})
    await this.republisher?.stop().catch(() => {})
    await this.keeper?.stop().catch(() => {})
    await this.healer?.stop().catch(() => {})
    await this.replicator?.stop().catch(() => {})
    await this.exchange?.stop().catch(() => {})
    await Promise.resolve(this.node?.stop()).catch(() => {})
    await this.datastore?.close().catch(() => {})
    await this.catalog?.stop().catch(() => {})
    await this.blocks?.stop().catch(() => {})
  }

  private every (ms: number, fn: () => unknown): void {
    let running = false
    const t = setInterval(() => {
      if (running || this.shutdown.signal.aborted) return
      running = true
      Promise.resolve().then(fn).catch(err => { log.error('periodic task failed: %s', err.message) }).finally(() => { running = false })
    }, ms)
    t.unref()
    this.timers.push(t)
  }

  // ---- membership ---------------------------------------------------------------------------

  /** connected peers that speak our block protocol: the members this agent knows right now */
  private async memberPeers (): Promise<string[]> {
    const out = new Set<string>()
    for (const conn of this.node.getConnections()) {
      const id = conn.remotePeer
      try {
        const peer = await this.node.peerStore.get(id)
        if (peer.protocols.includes(BLOCKS_PROTOCOL)) out.add(id.toString())
      } catch {}
    }
    return [...out].sort()
  }

  private async peerName (id: PeerId): Promise<string | undefined> {
    try {
      const peer = await this.node.peerStore.get(id)
      const agent = peer.metadata.get('AgentVersion')
      if (agent == null) return undefined
      const m = /^snapmesh\/[^ ]+ \((.+)\)$/.exec(new TextDecoder().decode(agent))
      return m?.[1]
    } catch {
      return undefined
    }
  }

  // ---- snapshots ----------------------------------------------------------------------------

  private async publish (bytes: Uint8Array): Promise<void> {
    // a receiver drops its stream from a sender whose message is over its limit: never send one
    if (bytes.length > this.config.network.maxMessageBytes) {
      throw new AgentError(`snapshot message of ${bytes.length} bytes exceeds network.maxMessageBytes (${this.config.network.maxMessageBytes})`)
    }
    await this.node.services.pubsub.publish(SNAPSHOT_TOPIC, bytes)
  }

  /** a message that passed the topic validator (decoded, sender and signature checked) */
  private async onGossip (data: Uint8Array): Promise<void> {
    const msg = decodeMessage(data)
    if (msg.type === 'marker') {
      if (msg.schedule != null) {
        // another agent's firing of a schedule slot: merged into the snapshot while it is live
        if (this.protocol.seen(msg.id, 'marker', msg.initiator)) return
        if (this.protocol.get(msg.id) == null && await this.known(msg.id)) return
      } else if (this.protocol.seen(msg.id, 'marker') || await this.known(msg.id)) {
        return
      }
      await this.protocol.handleMarker(msg)
    } else if (msg.type === 'prepared') {
      await this.protocol.handlePrepared(msg)
    } else {
      await this.protocol.handleResult(msg)
    }
  }

  /** the catalog has the snapshot's record, or the notice it was forgotten by: its marker is not captured again */
  private async known (id: string): Promise<boolean> {
    if ((await this.catalog.get(id).catch(() => undefined)) != null) return true
    return (await this.catalog.forgotten(id).catch(() => undefined)) != null
  }

  /** a peer's app message carried a snapshot this agent had not seen: take part as on its marker */
  private async onAppMarker (marker: Marker): Promise<void> {
    if (this.protocol.seen(marker.id, 'marker') || await this.known(marker.id)) return
    await this.protocol.handleMarker(marker)
  }

  private async captureLocal (marker: Marker, options: AbortOptions = {}): Promise<ResultBody> {
    // the apps' cut is taken now, before this capture waits for the ones ahead of it; its part
    // (app states, messages in flight) is captured as one more source once its channels are complete
    this.apps.cut(marker)
    const appsPart = this.apps.wait(marker.id, { signal: AbortSignal.any([this.shutdown.signal, ...(options.signal != null ? [options.signal] : [])]) })
    // not in the chain: a snapshot whose channels are still completing holds no other capture back
    await appsPart.catch(() => {})
    const run = async (): Promise<ResultBody> => {
      const started = Date.now()
      try {
        const prev = await this.catalog.getMeta(LAST_ROOT)
        const apps = await appsPart
        const result = await capture({ blocks: this.blocks }, {
          peerId: this.id,
          name: this.config.name,
          sources: apps.dir != null ? [...this.config.sources, { name: APPS_SOURCE, path: apps.dir, fresh: true }] : this.config.sources,
          // barrier mode ran the pre hooks before voting and runs the post hooks after the capture
          skipHooks: marker.consistency === 'barrier',
          previous: prev != null ? CID.parse(prev) : undefined
        }, { signal: AbortSignal.any([this.shutdown.signal, ...(options.signal != null ? [options.signal] : [])]) })
        await this.catalog.setMeta(LAST_ROOT, result.root.toString())
        void this.replicateOwn(marker.id, result.root)
        return { id: marker.id, peerId: this.id, name: this.config.name, lamport: this.protocol.lamport, time: Date.now(), status: 'ok', root: result.root, stats: result.stats, problems: result.problems }
      } catch (err: any) {
        log.error('capture for %s failed after %d ms: %s', marker.id, Date.now() - started, err.message)
        return { id: marker.id, peerId: this.id, name: this.config.name, lamport: this.protocol.lamport, time: Date.now(), status: 'error', error: String(err.message) }
      } finally {
        await this.apps.release(marker.id).catch(() => {})
      }
    }
    const p = this.captureChain.then(run, run)
    this.captureChain = p
    return p
  }

  // ---- schedules -------------------------------------------------------------------------------

  /**
   * Every agent fires each schedule at the same slots (cron, UTC, on its own clock). A slot's
   * snapshot ID is derived from the schedule's name and the slot, so the markers of all agents
   * that fire merge into one snapshot per slot. Slots missed while the agent was down are not
   * fired afterwards.
   */
  private startSchedules (): void {
    const entries = this.config.schedules.map(s => {
      const cron = new Cron(s.cron, { paused: true, timezone: 'Etc/UTC' })
      return { spec: s, cron, next: cron.nextRun(new Date())?.getTime() }
    })
    if (entries.length === 0) return
    this.every(200, async () => {
      const now = Date.now()
      for (const e of entries) {
        if (e.next == null || now < e.next) continue
        const slot = e.next
        e.next = e.cron.nextRun(new Date(Math.max(now, slot)))?.getTime()
        // a slot long past (the machine slept) is skipped, not fired late
        if (now - slot > this.config.snapshot.deadlineSeconds * 1000) continue
        await this.fireSlot(e.spec.name, slot, e.spec.tag)
      }
    })
  }

  private async fireSlot (schedule: string, slot: number, tag?: string): Promise<void> {
    try {
      // a slot this agent already took part in before a restart (another agent's firing may have
      // come first, on a clock ahead of this one): known from the catalog, never captured again
      const id = scheduledSnapshotId(schedule, slot)
      if (await this.catalog.forgotten(id) != null) return
      const known = this.protocol.get(id) == null ? await this.catalog.get(id).catch(() => undefined) : undefined
      if (known != null) this.protocol.adopt(markerOf(known), known.results)
      const expected = [this.id, ...await this.memberPeers()]
      const state = await this.protocol.startScheduled(schedule, slot, expected, { tag, signal: this.shutdown.signal })
      log('schedule %s fired for slot %s: snapshot %s', schedule, new Date(slot).toISOString(), state.marker.id.slice(0, 8))
    } catch (err: any) {
      log.error('schedule %s slot %s failed to fire: %s', schedule, new Date(slot).toISOString(), err.message)
    }
  }

  // ---- barrier mode: freeze and thaw ------------------------------------------------------------

  /**
   * Runs the pre hooks for a barrier snapshot. The snapshot is written down as frozen first, so an
   * agent that crashes while frozen thaws at its next start.
   */
  private async freeze (marker: Marker, options: AbortOptions = {}): Promise<void> {
    await this.setFrozen(marker.id, true)
    try {
      await runPreHooks(this.config.sources, options)
    } catch (err) {
      await this.setFrozen(marker.id, false)
      throw err
    }
  }

  private async thaw (id: string): Promise<void> {
    const failures = await runPostHooks(this.config.sources)
    for (const f of failures) log.error('post hook after snapshot %s failed: %s', id.slice(0, 8), f.message)
    await this.setFrozen(id, false)
  }

  private async setFrozen (id: string, frozen: boolean): Promise<void> {
    const ids = new Set<string>(JSON.parse(await this.catalog.getMeta('frozen') ?? '[]'))
    if (frozen) ids.add(id)
    else ids.delete(id)
    await this.catalog.setMeta('frozen', JSON.stringify([...ids]))
  }

  /** post hooks for barrier snapshots this agent was frozen for when it last stopped (crash) */
  private async thawLeftovers (): Promise<void> {
    const ids: string[] = JSON.parse(await this.catalog.getMeta('frozen') ?? '[]')
    if (ids.length === 0) return
    log('thawing after a stop while frozen for %s', ids.map(i => i.slice(0, 8)).join(', '))
    await this.thaw(ids[0])
    await this.catalog.setMeta('frozen', '[]')
  }

  /** pushes this host's part of a snapshot to its holders, then reports the copies it counted */
  private async replicateOwn (id: string, root: CID): Promise<void> {
    if (this.config.replication.copies <= 1) return
    try {
      const members = [this.id, ...await this.memberPeers()]
      const report = await this.replicator.replicate(this.id, root, members, { signal: this.shutdown.signal })
      await this.catalog.setMeta(`replicated/${id}`, JSON.stringify({ root: root.toString(), members }))
      if (report.failures.length > 0) log('replication of %s incomplete: %s', id.slice(0, 8), report.failures.join('; '))
      await this.reportCopies(id, this.id, root, report)
    } catch (err: any) {
      log.error('replication of %s failed: %s', id.slice(0, 8), err.message)
    }
  }

  /** signs a copy report, merges it into the record here and sends it to every agent */
  private async reportCopies (id: string, owner: string, root: CID, counted: { blocks: number, copies: number, holders: string[] }): Promise<void> {
    const report = await signCopyReport(this.privateKey, {
      id,
      owner,
      root,
      reporter: this.id,
      time: Date.now(),
      blocks: counted.blocks,
      copies: counted.copies,
      wanted: this.config.replication.copies,
      holders: counted.holders
    })
    await this.onCopyReport(report)
    try {
      await this.node.services.pubsub.publish(COPIES_TOPIC, encodeCopyReport(report))
    } catch (err: any) {
      // no subscribed peer: the record in the DHT carries the report to them later
      log('copy report for %s not sent: %s', id.slice(0, 8), err.message)
    }
  }

  /** a copy report (signature checked) from this agent or another one */
  private async onCopyReport (report: CopyReport): Promise<void> {
    const merged = await this.catalog.addCopyReport(report)
    if (merged != null && merged.status !== 'running') await this.publishRecord(merged)
  }

  /**
   * Keeps every part of the recent snapshots at its wanted copies. A member that has not been
   * connected for longer than the grace period is presumed gone. Each owner pushes again those of
   * its own parts whose members changed (one gone, or one joined), so every block is at the
   * holders placement gives over the members there are now; the part of
   * a gone owner is taken over by one live member (takerFor), which gathers the part from whoever
   * holds it and pushes it to the holders placement gives without the owner.
   */
  private async repair (): Promise<void> {
    const now = Date.now()
    const live = new Set(await this.memberPeers())
    for (const p of live) this.lastSeen.set(p, now)
    const graceMs = this.config.replication.graceSeconds * 1000
    const gone = (peer: string): boolean => peer !== this.id && !live.has(peer) && now - (this.lastSeen.get(peer) ?? this.startedAt) > graceMs
    const members = [this.id, ...live].sort()
    for (const record of (await this.catalog.list()).slice(0, 50)) {
      if (this.shutdown.signal.aborted) return
      for (const part of record.results) {
        if (part.status !== 'ok' || part.root == null) continue
        if (part.peerId === this.id) {
          const meta = await this.catalog.getMeta(`replicated/${record.id}`)
          if (meta == null) continue
          const { members: before } = JSON.parse(meta) as { members: string[] }
          // a member gone, or one that joined since: placement moved some copies
          const joined = [...live].filter(p => !before.includes(p))
          if (!before.some(gone) && joined.length === 0) continue
          log('re-replicating %s: %s presumed gone, %s joined', record.id.slice(0, 8), before.filter(gone).join(', ') || 'none', joined.join(', ') || 'none')
          await this.replicateOwn(record.id, part.root)
        } else if (gone(part.peerId) && takerFor(part.root, members) === this.id) {
          const key = `taken-over/${record.id}/${part.peerId}`
          if (await this.catalog.getMeta(key) === JSON.stringify(members)) continue
          log('taking over the part of %s in %s', part.name, record.id.slice(0, 8))
          try {
            const { getter } = await this.getterFor(part.peerId)
            const counted = await takeOver({
              blocks: this.blocks,
              getter,
              offer: async (holder, cids, options) => this.replicator.offer(holder, cids, options)
            }, {
              root: part.root,
              self: this.id,
              placement: placementFor(part.peerId, members, this.config.replication.copies),
              concurrency: this.config.replication.concurrency
            }, { signal: this.shutdown.signal })
            await this.reportCopies(record.id, part.peerId, part.root, counted)
            if (counted.failures.length === 0 && counted.copies >= this.config.replication.copies) await this.catalog.setMeta(key, JSON.stringify(members))
          } catch (err: any) {
            log.error('taking over the part of %s in %s failed: %s', part.name, record.id.slice(0, 8), err.message)
          }
        }
      }
    }
  }

  private async view (record: SnapshotRecord): Promise<SnapshotView> {
    return toSnapshotView(record, { copiesWanted: this.config.replication.copies })
  }

  private onSnapshotChange (state: SnapshotState): void {
    const record = recordFromState(state, Date.now())
    void this.catalog.setMeta('lamport', String(this.protocol.lamport)).catch(() => {})
    this.catalog.put(record).then(async (merged: SnapshotRecord) => {
      if (merged.status !== 'running') await this.publishRecord(merged)
    }).catch((err: Error) => {
      if (err instanceof ForgottenSnapshotError) log('snapshot %s changed after it was forgotten: not stored', state.marker.id.slice(0, 8))
      else log.error('storing snapshot %s failed: %s', state.marker.id, err.message)
    })
  }

  /** stores a final record in the DHT under its CID and updates this agent's head */
  private async publishRecord (record: SnapshotRecord): Promise<void> {
    const { cid, bytes } = await encodeRecord(record)
    const before = this.published.get(record.id)
    if (before === cid.toString()) return
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(30_000)])
    // the republisher puts it now and again before the DHT's 48 h expiry; a superseded version of
    // the same snapshot is no longer republished
    if (before != null) this.republisher.forget(recordKey(CID.parse(before)))
    this.published.set(record.id, cid.toString())
    await this.republisher.publish(recordKey(cid), bytes, { signal })
    await this.publishHead(signal)
  }

  private async publishHead (signal: AbortSignal): Promise<void> {
    const list = await this.catalog.list()
    const snapshots = []
    for (const rec of list.slice(0, 1000)) {
      if (rec.status === 'running') continue
      snapshots.push({ id: rec.id, cid: (await encodeRecord(rec)).cid })
    }
    const seq = Number(await this.catalog.getMeta('head-seq') ?? 0) + 1
    await this.catalog.setMeta('head-seq', String(seq))
    const forgotten = await this.catalog.listForgotten()
    const head = await signHead(this.privateKey, { peerId: this.id, seq, snapshots, forgotten })
    await this.republisher.publish(headKey(this.id), head, { signal })
  }

  private async dhtPut (key: Uint8Array, value: Uint8Array, signal: AbortSignal): Promise<void> {
    for await (const ev of this.node.services.dht.put(key, value, { signal })) {
      if (ev.name === 'QUERY_ERROR') log('dht put: %s', ev.error.message)
    }
  }

  private async dhtGet (key: Uint8Array, signal: AbortSignal): Promise<Uint8Array | undefined> {
    try {
      for await (const ev of this.node.services.dht.get(key, { signal })) {
        if (ev.name === 'VALUE') return ev.value
      }
    } catch (err: any) {
      log('dht get failed: %s', err.message)
    }
    return undefined
  }

  /**
   * Pulls the heads of every member from the DHT and fetches the records this agent lacks or
   * holds in an older form: how an agent that joined late, or missed gossip, catches up.
   */
  private async sync (): Promise<void> {
    if (this.syncing || this.shutdown.signal.aborted) return
    this.syncing = true
    try {
      const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(20_000)])
      const wanted = new Map<string, CID>()
      for (const peer of await this.memberPeers()) {
        const bytes = await this.dhtGet(headKey(peer), signal)
        if (bytes == null) continue
        let head
        try {
          head = await decodeHead(bytes)
        } catch (err: any) {
          log('bad head from %s: %s', peer, err.message)
          continue
        }
        for (const notice of head.forgotten) {
          if (await this.catalog.forgotten(notice.id) == null) await this.applyForget(notice)
        }
        for (const s of head.snapshots) {
          if (await this.catalog.forgotten(s.id) != null) continue
          const have = await this.catalog.get(s.id).catch(() => undefined)
          if (have != null && have.status !== 'running' && (await encodeRecord(have)).cid.equals(s.cid)) continue
          wanted.set(s.cid.toString(), s.cid)
        }
      }
      for (const cid of wanted.values()) {
        const bytes = await this.dhtGet(recordKey(cid), signal)
        if (bytes == null) continue
        try {
          const record = await decodeRecord(bytes)
          const merged = await this.catalog.put(record)
          this.protocol.adopt(markerOf(merged), merged.results)
          if (merged.status !== 'running') await this.publishRecord(merged).catch(() => {})
        } catch (err: any) {
          if (!(err instanceof ForgottenSnapshotError)) log('record %s rejected: %s', cid, err.message)
        }
      }
    } finally {
      this.syncing = false
    }
  }

  /** at start: every final record this agent knows goes (back) into the DHT and under republishing */
  private async publishAll (): Promise<void> {
    for (const rec of await this.catalog.list()) {
      if (rec.status !== 'running') await this.publishRecord(rec).catch(err => { log('publishing %s failed: %s', rec.id, err.message) })
    }
  }

  // ---- retention: forget and prune -------------------------------------------------------------

  /**
   * Applies a forget notice (its signature checked): the record goes, the notice stays in its
   * place, the record is no longer republished, and the head lists the notice so that agents that
   * missed the gossip learn it. With `prune`, this agent's store is pruned soon after.
   */
  private async applyForget (notice: ForgetNotice): Promise<boolean> {
    const live = this.protocol.get(notice.id)
    if (live != null && computeStatus(live, Date.now()).status === 'running') {
      log('forget notice for %s ignored: the snapshot is still running here', notice.id.slice(0, 8))
      return false
    }
    const { record, first } = await this.catalog.forget(notice)
    if (!first) return false
    log('snapshot %s forgotten by %s', notice.id.slice(0, 8), notice.by)
    const published = this.published.get(notice.id)
    if (published != null) this.republisher.forget(recordKey(CID.parse(published)))
    this.published.delete(notice.id)
    if (record != null) await this.publishHead(AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(30_000)])).catch(() => {})
    if (notice.prune) this.schedulePrune()
    return true
  }

  private pruneTimer?: ReturnType<typeof setTimeout>

  /** one prune shortly after a burst of forget notices that ask for it */
  private schedulePrune (): void {
    if (this.pruneTimer != null || this.shutdown.signal.aborted) return
    this.pruneTimer = setTimeout(() => {
      this.pruneTimer = undefined
      this.prune({}, {}).catch(err => { log.error('prune after forget failed: %s', err.message) })
    }, 2000)
    this.pruneTimer.unref()
  }

  async forget (req: ForgetRequest, options: { signal?: AbortSignal } = {}): Promise<ForgetResultView> {
    const ids = req.snapshots ?? []
    if (ids.length > 0 && req.keep != null) throw new InvalidRequestError('give snapshot IDs or keep rules, not both')
    if (ids.length === 0 && req.keep == null) throw new InvalidRequestError('nothing to forget: give snapshot IDs or at least one keep rule (--keep-last, --keep-daily, ...)')
    const brief = (r: SnapshotRecord): ForgetResultView['forgotten'][number] => ({ id: r.id, ...(r.tag != null ? { tag: r.tag } : {}), startedAt: new Date(r.startedAt).toISOString(), status: r.status })
    const doomed: SnapshotRecord[] = []
    const kept: ForgetResultView['kept'] = []
    if (req.keep != null) {
      const k = req.keep
      const policy: RetentionPolicy = {
        ...(k.last != null ? { last: k.last } : {}),
        ...(k.hourly != null ? { hourly: k.hourly } : {}),
        ...(k.daily != null ? { daily: k.daily } : {}),
        ...(k.weekly != null ? { weekly: k.weekly } : {}),
        ...(k.monthly != null ? { monthly: k.monthly } : {}),
        ...(k.yearly != null ? { yearly: k.yearly } : {}),
        ...(k.withinSeconds != null ? { within: k.withinSeconds * 1000 } : {}),
        ...(k.tags != null ? { tags: k.tags } : {})
      }
      const problem = policyProblem(policy)
      if (problem != null) throw new InvalidRequestError(problem)
      const all = await this.catalog.list(options)
      const finished = all.filter(r => r.status !== 'running')
      let decisions
      try {
        decisions = applyPolicy(finished.map(r => ({ id: r.id, startedAt: r.startedAt, ...(r.tag != null ? { tag: r.tag } : {}) })), policy)
      } catch (err: any) {
        throw new InvalidRequestError(String(err.message))
      }
      const byId = new Map(finished.map(r => [r.id, r]))
      for (const r of all.filter(r => r.status === 'running')) kept.push({ ...brief(r), reasons: ['running'] })
      for (const d of decisions) {
        const r = byId.get(d.id)
        if (r == null) continue
        if (d.keep) kept.push({ ...brief(r), reasons: d.reasons })
        else doomed.push(r)
      }
    } else {
      for (const id of ids) {
        const r = await this.catalog.resolve(id, options)
        if (r.status === 'running') throw new InvalidRequestError(`snapshot ${r.id.slice(0, 8)} is still running: it can be forgotten once it has ended`)
        if (!doomed.some(d => d.id === r.id)) doomed.push(r)
      }
    }
    const out: ForgetResultView = { dryRun: req.dryRun === true, forgotten: doomed.map(brief), kept }
    if (req.dryRun === true) {
      if (req.prune === true) out.prune = await this.prune({ dryRun: true, without: new Set(doomed.map(d => d.id)) }, options)
      return out
    }
    for (const r of doomed) {
      options.signal?.throwIfAborted()
      const notice = await signForgetNotice(this.privateKey, { id: r.id, by: this.id, time: Date.now(), prune: req.prune === true })
      await this.applyForget(notice)
      try {
        await this.node.services.pubsub.publish(FORGET_TOPIC, encodeForgetNotice(notice))
      } catch (err: any) {
        // no subscribed peer right now: the notice reaches the others through this agent's head
        log('forget notice for %s not sent: %s', r.id.slice(0, 8), err.message)
      }
    }
    if (req.prune === true) {
      clearTimeout(this.pruneTimer)
      this.pruneTimer = undefined
      out.prune = await this.prune({}, options)
    }
    return out
  }

  /**
   * Deletes the blocks that no snapshot this agent knows needs (every participant's part, since
   * this agent may hold copies of any of them) and that its next capture does not build on. Runs
   * between captures, never during one.
   */
  async prune (req: PruneRequest & { without?: Set<string> }, options: { signal?: AbortSignal } = {}): Promise<PruneResultView> {
    const run = async (): Promise<PruneStats> => {
      const roots: KeptRoot[] = []
      for (const r of await this.catalog.list(options)) {
        if (req.without?.has(r.id) === true) continue
        for (const part of r.results) {
          if (part.status === 'ok' && part.root != null) roots.push({ snapshot: r.id, owner: part.peerId, root: part.root })
        }
      }
      const base = await this.catalog.getMeta(LAST_ROOT)
      if (base != null) roots.push({ owner: this.id, root: CID.parse(base) })
      return prune({
        blocks: this.blocks,
        getterFor: async (owner) => (await this.getterFor(owner)).getter
      }, {
        roots,
        graceMs: this.config.retention.pruneGraceSeconds * 1000,
        now: Date.now(),
        dryRun: req.dryRun === true
      }, { signal: AbortSignal.any([this.shutdown.signal, ...(options.signal != null ? [options.signal] : [])]) })
    }
    const p = this.captureChain.then(run, run)
    this.captureChain = p.catch(() => {})
    // PruneStats is the wire type's shape: the result goes out as it is
    return p
  }

  // ---- AdminBackend -------------------------------------------------------------------------

  async status (): Promise<StatusView> {
    const known = (await this.node.peerStore.all()).filter(p => !p.id.equals(this.peerId) && p.protocols.includes(BLOCKS_PROTOCOL))
    return {
      peerId: this.id,
      name: this.config.name,
      version: VERSION,
      addresses: this.node.getMultiaddrs().map(a => a.toString()),
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      peers: { known: known.length, connected: (await this.memberPeers()).length },
      snapshots: (await this.catalog.list()).length,
      dataDir: this.config.dataDir,
      apps: (() => {
        const a = this.apps.status()
        return { socket: a.socket, connected: a.apps, pendingCuts: a.snapshots.filter(x => x.pending.length > 0).map(x => ({ id: x.id, pending: x.pending })) }
      })(),
      frozenFor: this.protocol.frozen(),
      quarantine: this.healer?.stats() ?? { quarantined: 0, replaced: 0, failed: 0, pending: 0 }
    }
  }

  async peers (): Promise<PeerView[]> {
    const out: PeerView[] = []
    for (const peer of await this.node.peerStore.all()) {
      if (peer.id.equals(this.peerId) || !peer.protocols.includes(BLOCKS_PROTOCOL)) continue
      out.push({
        peerId: peer.id.toString(),
        name: await this.peerName(peer.id),
        addresses: peer.addresses.map(a => a.multiaddr.toString()),
        connected: this.node.getConnections(peer.id).length > 0
      })
    }
    return out.sort((a, b) => (a.name ?? a.peerId).localeCompare(b.name ?? b.peerId))
  }

  async createSnapshot (req: CreateSnapshotRequest): Promise<SnapshotView> {
    const expected = [this.id, ...await this.memberPeers()]
    const consistency = req.consistency ?? this.config.snapshot.consistency
    const prepareTimeoutMs = Math.round((req.prepareTimeoutSeconds ?? this.config.snapshot.prepareTimeoutSeconds) * 1000)
    if (consistency === 'barrier' && prepareTimeoutMs >= this.config.snapshot.deadlineSeconds * 1000) {
      throw new InvalidRequestError(`the prepare timeout (${prepareTimeoutMs / 1000} s) must be shorter than the snapshot deadline (${this.config.snapshot.deadlineSeconds} s)`)
    }
    const state = await this.protocol.start(req.tag, expected, { consistency, prepareTimeoutMs })
    // listed from the moment the call returns
    return this.view(await this.catalog.put(recordFromState(state, Date.now())))
  }

  async listSnapshots (): Promise<SnapshotView[]> {
    return Promise.all((await this.catalog.list()).map(async r => this.view(r)))
  }

  async getSnapshot (id: string): Promise<SnapshotView> {
    return this.view(await this.catalog.resolve(id))
  }

  /** one participant of a snapshot, by peer ID or host name */
  private participant (record: SnapshotRecord, node: string): SnapshotRecord['results'][number] {
    const matches = record.results.filter(r => r.peerId === node || r.name === node)
    if (matches.length === 0) {
      const known = record.results.map(r => `${r.name} (${r.peerId})`).join(', ')
      throw new NotFoundError(`snapshot ${record.id.slice(0, 8)} has no participant ${JSON.stringify(node)}; participants: ${known || 'none'}`)
    }
    if (matches.length > 1) throw new InvalidRequestError(`more than one participant is named ${JSON.stringify(node)}: use its peer ID`)
    return matches[0]
  }

  /** a getter for one owner's blocks: the owner first, then the holders placement gives, then every member */
  private async getterFor (owner: string): Promise<{ getter: RemoteBlockGetter, members: string[] }> {
    const members = [this.id, ...await this.memberPeers()]
    const placement = placementFor(owner, members, this.config.replication.copies)
    const getter = new RemoteBlockGetter({ blocks: this.blocks, exchange: this.exchange }, {
      holders: (cid) => [...new Set([owner, ...placement(cid), ...members])].filter(p => p !== this.id)
    })
    return { getter, members }
  }

  async verify (req: VerifyRequest, options: { signal?: AbortSignal } = {}): Promise<VerifyResultView> {
    const record = await this.catalog.resolve(req.snapshot)
    const parts = (req.node != null ? [this.participant(record, req.node)] : record.results).filter(r => r.status === 'ok' && r.root != null)
    const out: VerifyResultView = { snapshot: record.id, ok: true, participants: [] }
    for (const part of parts) {
      const { getter, members } = await this.getterFor(part.peerId)
      const report = await verifyCopies({ blocks: this.blocks, exchange: this.exchange, getter }, {
        root: part.root as CID,
        self: this.id,
        readData: req.readData,
        holdersFor: placementFor(part.peerId, members, this.config.replication.copies)
      }, options)
      const problems: VerifyResultView['participants'][number]['problems'] = report.problems.map(p => ({ ...p }))
      if (req.repair === true) {
        for (const p of problems) {
          if (p.state === 'unreachable') continue
          p.repaired = await this.repairCopy(getter, p.holder, CID.parse(p.cid), options)
        }
      }
      if (problems.some(p => p.repaired !== true)) out.ok = false
      out.participants.push({ peerId: part.peerId, name: part.name, blocks: report.blocks, copies: report.copies, problems })
    }
    return out
  }

  /** re-makes one copy at `holder` from a good copy found through `getter` (verified) */
  private async repairCopy (getter: RemoteBlockGetter, holder: string, cid: CID, options: { signal?: AbortSignal }): Promise<boolean> {
    try {
      const bytes = await getter.get(cid, options)
      await this.blocks.put(cid, bytes, options)
      if (holder === this.id) return true
      const confirmed = await this.replicator.offer(holder, [cid], options)
      return confirmed.some(c => c.equals(cid))
    } catch (err: any) {
      log.error('repairing %s at %s failed: %s', cid, holder, err.message)
      return false
    }
  }

  async restore (req: RestoreRequest, options: { signal?: AbortSignal, onProgress?: (ev: ProgressView) => void } = {}): Promise<RestoreResultView> {
    if (!path.isAbsolute(req.target)) throw new InvalidRequestError(`target must be an absolute path, got ${JSON.stringify(req.target)}`)
    const record = await this.catalog.resolve(req.snapshot)
    const part = this.participant(record, req.node ?? this.id)
    if (part.status !== 'ok' || part.root == null) throw new AgentError(`participant ${part.name} has no data in snapshot ${record.id.slice(0, 8)}: ${part.error ?? 'its part failed'}`)
    const { getter } = await this.getterFor(part.peerId)
    const started = Date.now()
    let files = 0
    let bytes = 0
    const stats = await restore({ blocks: getter }, { root: part.root, target: req.target, include: req.include, resume: req.resume }, {
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
      durationMs: Date.now() - started
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
  const status = await agent.status()
  process.stdout.write(`snapmesh agent ${status.name} ${status.peerId}\n`)
  for (const a of status.addresses) process.stdout.write(`  listening on ${a}\n`)
  process.stdout.write(`  admin socket ${config.adminSocket}\n`)
  await new Promise<void>(resolve => {
    process.once('SIGINT', () => { resolve() })
    process.once('SIGTERM', () => { resolve() })
  })
  process.stdout.write('stopping\n')
  await agent.stop()
}
