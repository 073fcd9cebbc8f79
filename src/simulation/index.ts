// A deterministic simulation of the snapshot protocol: real SnapshotProtocol state machines, a fake
// clock, a seeded random source and a simulated network that drops, delays, duplicates and
// reorders messages, and crashes and restarts nodes. Same seed, same run: a failing seed replays
// exactly. After the run it checks the protocol's invariants and reports every violation.
import { createHash } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RAW, cidForBytes } from '../store/index.js'
import {
  SnapshotProtocol, applyResult, computeStatus, decodeMessage, encodeMarker, mergeMarkers, resultPayload, scheduledSnapshotId, sortedResults,
  type Marker, type ResultBody, type SignedResult, type SnapshotState
} from '../snapshot/index.js'

export interface SimulationOptions {
  seed: number
  /** nodes in the cluster (2 to 16); default 3 to 7, drawn from the seed */
  nodes?: number
  /** snapshots started by random nodes at random times; default 1 to 4 */
  snapshots?: number
  /** share of barrier snapshots, 0 to 1; default 0.5 */
  barrierShare?: number
  /** chance a message to one node is lost; default 0 to 0.2 */
  drop?: number
  /** chance a message to one node is delivered twice; default 0 to 0.2 */
  duplicate?: number
  /** most a message is delayed, in ms (delays reorder messages); default 5 to 2000 */
  maxDelayMs?: number
  /** node crashes (each restarts after a while); default 0 to 2 */
  crashes?: number
  /** chance a pre hook fails; default 0 to 0.15 */
  hookFailure?: number
  deadlineMs?: number
  prepareTimeoutMs?: number
  /** schedule slots every node fires; default 0 to 2 */
  slots?: number
  /** most a node's clock is off, either way, in ms; default 0 to 3000 */
  maxSkewMs?: number
}

export interface SimulationReport {
  seed: number
  options: Required<SimulationOptions>
  /** final status of each snapshot on each node alive at the end */
  snapshots: Array<{ id: string, consistency: string, statuses: Record<string, string> }>
  /** messages delivered */
  delivered: number
  violations: string[]
}

/** a small, fast, seeded PRNG (mulberry32) */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** what the nodes' clocks read at the start of a run, give or take their skew */
const EPOCH = 1_800_000_000_000

interface Event { at: number, seq: number, run: () => void }

/** the simulated time line: events in (time, insertion) order */
class Scheduler {
  now = 0
  private seq = 0
  private readonly events: Event[] = []

  at (time: number, run: () => void): void {
    const e = { at: Math.max(time, this.now), seq: this.seq++, run }
    // binary insertion keeps the queue sorted by (at, seq)
    let lo = 0
    let hi = this.events.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const m = this.events[mid]
      if (m.at < e.at || (m.at === e.at && m.seq < e.seq)) lo = mid + 1
      else hi = mid
    }
    this.events.splice(lo, 0, e)
  }

  /** resolves after `ms` of simulated time, or rejects when `signal` aborts first */
  sleep (ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted === true) { reject(signal.reason); return }
      let done = false
      const onAbort = (): void => { if (!done) { done = true; reject(signal?.reason) } }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.at(this.now + ms, () => {
        if (done) return
        done = true
        signal?.removeEventListener('abort', onAbort)
        resolve()
      })
    })
  }

  /** runs events until none is left before `until`; settles promise chains between events */
  async run (until: number): Promise<void> {
    while (this.events.length > 0 && this.events[0].at <= until) {
      const e = this.events.shift() as Event
      this.now = e.at
      e.run()
      await settle()
    }
    this.now = Math.max(this.now, until)
  }
}

/** lets every pending promise chain run (they involve no real I/O in the simulation) */
async function settle (): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve()
  await new Promise<void>(resolve => { setImmediate(resolve) })
}

interface Interval { start: number, end?: number }

interface SimNode {
  index: number
  id: string
  alive: boolean
  incarnation: number
  proto?: SnapshotProtocol
  /** what survives a crash: snapshots known (the catalog), Lamport clock, barriers frozen for */
  known: Set<string>
  lamport: number
  frozenFor: Set<string>
  /** per snapshot: freeze intervals, capture intervals */
  freezes: Map<string, Interval[]>
  captures: Map<string, Interval[]>
  /** AbortSignal of the current incarnation: a crash aborts what it was doing */
  life: AbortController
  crashedAt: number[]
  /** this node's clock minus the true time */
  skew: number
}

let keyCache: Array<{ id: string }> | undefined

async function nodeIds (n: number): Promise<string[]> {
  if (keyCache == null || keyCache.length < n) {
    keyCache = []
    for (let i = 0; i < 16; i++) {
      const seed = createHash('sha256').update(`snapmesh simulation node ${i}`).digest()
      keyCache.push({ id: peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', seed)).toString() })
    }
  }
  return keyCache.slice(0, n).map(k => k.id)
}

/** stands in for an Ed25519 signature: the simulation checks no signatures, only determinism matters */
function fakeSign (body: ResultBody): SignedResult {
  const sig = createHash('sha512').update(resultPayload(body)).digest()
  return { ...body, v: 1, type: 'result', signer: body.peerId, sig: new Uint8Array(sig) }
}

function pick<T> (rnd: () => number, items: T[]): T {
  return items[Math.floor(rnd() * items.length)]
}

/** Runs one seeded simulation and checks the invariants. */
export async function simulate (options: SimulationOptions): Promise<SimulationReport> {
  const rnd = prng(options.seed)
  const opts: Required<SimulationOptions> = {
    seed: options.seed,
    nodes: options.nodes ?? 3 + Math.floor(rnd() * 5),
    snapshots: options.snapshots ?? 1 + Math.floor(rnd() * 4),
    barrierShare: options.barrierShare ?? 0.5,
    drop: options.drop ?? rnd() * 0.2,
    duplicate: options.duplicate ?? rnd() * 0.2,
    maxDelayMs: options.maxDelayMs ?? 5 + Math.floor(rnd() * 1995),
    crashes: options.crashes ?? Math.floor(rnd() * 3),
    hookFailure: options.hookFailure ?? rnd() * 0.15,
    deadlineMs: options.deadlineMs ?? 20_000,
    prepareTimeoutMs: options.prepareTimeoutMs ?? 5_000,
    slots: options.slots ?? Math.floor(rnd() * 3),
    maxSkewMs: options.maxSkewMs ?? Math.floor(rnd() * 3000)
  }
  const sched = new Scheduler()
  const ids = await nodeIds(opts.nodes)
  const nodes: SimNode[] = ids.map((id, index) => ({
    index, id, alive: true, incarnation: 0, known: new Set(), lamport: 0, frozenFor: new Set(), freezes: new Map(), captures: new Map(), life: new AbortController(), crashedAt: [], skew: Math.round((rnd() * 2 - 1) * opts.maxSkewMs)
  }))
  const violations: string[] = []
  let delivered = 0
  const markers = new Map<string, Marker>()
  const hookMs = 300

  const interval = (map: Map<string, Interval[]>, id: string): Interval => {
    const list = map.get(id) ?? []
    const iv = { start: sched.now }
    list.push(iv)
    map.set(id, list)
    return iv
  }

  const send = (from: SimNode, bytes: Uint8Array): void => {
    for (const to of nodes) {
      if (to === from) continue
      let copies = rnd() < opts.drop ? 0 : 1
      if (rnd() < opts.duplicate) copies++
      for (let i = 0; i < copies; i++) {
        sched.at(sched.now + 1 + Math.floor(rnd() * opts.maxDelayMs), () => { deliver(to, bytes) })
      }
    }
  }

  const deliver = (node: SimNode, bytes: Uint8Array): void => {
    if (!node.alive || node.proto == null) return
    delivered++
    const msg = decodeMessage(bytes)
    const proto = node.proto
    if (msg.type === 'marker') {
      markers.set(msg.id, msg)
      // as the agent does: a snapshot already in the catalog is never captured again
      if (proto.seen(msg.id, 'marker') || node.known.has(msg.id)) return
      node.known.add(msg.id)
      void proto.handleMarker(msg)
    } else if (msg.type === 'prepared') {
      if (!proto.seen(msg.id, 'prepared', msg.peerId)) void proto.handlePrepared(msg)
    } else {
      void proto.handleResult(msg)
    }
  }

  const boot = (node: SimNode): void => {
    node.alive = true
    node.incarnation++
    node.life = new AbortController()
    const life = node.life.signal
    const proto: SnapshotProtocol = new SnapshotProtocol({
      peerId: node.id,
      clock: () => EPOCH + sched.now + node.skew,
      random: (n: number) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256); return b },
      publish: async (bytes: Uint8Array) => { if (!life.aborted) send(node, bytes) },
      capture: async (marker: Marker, o: { signal?: AbortSignal } = {}) => {
        const iv = interval(node.captures, marker.id)
        await sched.sleep(20 + Math.floor(rnd() * 1500), AbortSignal.any([life, ...(o.signal != null ? [o.signal] : [])]))
        iv.end = sched.now
        const root = cidForBytes(new TextEncoder().encode(`${node.id}/${marker.id}`), RAW)
        return { id: marker.id, peerId: node.id, name: `n${node.index}`, lamport: 0, time: 0, status: 'ok', root }
      },
      sign: async (body: ResultBody) => fakeSign(body),
      onChange: (state: SnapshotState) => { node.lamport = Math.max(node.lamport, proto.lamport); node.known.add(state.marker.id) },
      prepare: async (marker: Marker, o: { signal?: AbortSignal } = {}) => {
        node.frozenFor.add(marker.id)
        const iv = interval(node.freezes, marker.id)
        try {
          await sched.sleep(Math.floor(rnd() * hookMs), AbortSignal.any([life, ...(o.signal != null ? [o.signal] : [])]))
          if (rnd() < opts.hookFailure) throw new Error('pre hook exited with code 1')
        } catch (err) {
          if (!life.aborted) {
            // a failed pre hook undoes itself
            iv.end = sched.now
            node.frozenFor.delete(marker.id)
          }
          throw err
        }
      },
      release: async (marker: Marker) => {
        if (life.aborted) return
        for (const iv of node.freezes.get(marker.id) ?? []) if (iv.end == null) iv.end = sched.now
        node.frozenFor.delete(marker.id)
      }
    }, { deadlineMs: opts.deadlineMs, lamport: node.lamport, name: `n${node.index}` })
    node.proto = proto
    // an agent that stopped while frozen thaws at start
    for (const id of [...node.frozenFor]) {
      for (const iv of node.freezes.get(id) ?? []) if (iv.end == null) iv.end = sched.now
      node.frozenFor.delete(id)
    }
  }

  const crash = (node: SimNode): void => {
    if (!node.alive) return
    node.alive = false
    node.crashedAt.push(sched.now)
    node.life.abort(new Error('crashed'))
    node.proto = undefined
  }

  for (const n of nodes) boot(n)
  const tickAll = (): void => {
    for (const n of nodes) if (n.alive) n.proto?.tick()
  }
  const horizon = 10_000 + opts.snapshots * 5_000
  for (let t = 100; t < horizon + opts.deadlineMs * 2; t += 100) sched.at(t, tickAll)
  for (let i = 0; i < opts.snapshots; i++) {
    const when = Math.floor(rnd() * horizon)
    const barrier = rnd() < opts.barrierShare
    sched.at(when, () => {
      const alive = nodes.filter(n => n.alive)
      if (alive.length === 0) return
      const initiator = pick(rnd, alive)
      const expected = alive.map(n => n.id)
      void initiator.proto?.start(undefined, expected, { consistency: barrier ? 'barrier' : 'marker', prepareTimeoutMs: opts.prepareTimeoutMs })
        .then(s => { markers.set(s.marker.id, s.marker); initiator.known.add(s.marker.id) })
    })
  }
  const slots: number[] = []
  for (let i = 0; i < opts.slots; i++) {
    const slot = EPOCH + 1000 * Math.floor(rnd() * horizon / 1000)
    slots.push(slot)
    for (const n of nodes) {
      // each node fires when its own clock reads the slot
      sched.at(slot - EPOCH - n.skew, () => {
        if (!n.alive) return
        // as the agent does: a slot already in the catalog (taken before a restart) is not taken again
        const id = scheduledSnapshotId('sim', slot)
        if (n.known.has(id) && n.proto?.get(id) == null) return
        const expected = nodes.filter(x => x.alive).map(x => x.id)
        void n.proto?.startScheduled('sim', slot, expected).then(st => { n.known.add(st.marker.id) })
      })
    }
  }
  for (let i = 0; i < opts.crashes; i++) {
    const victim = pick(rnd, nodes)
    const when = Math.floor(rnd() * horizon)
    const down = 500 + Math.floor(rnd() * 8000)
    sched.at(when, () => { crash(victim) })
    sched.at(when + down, () => { if (!victim.alive) boot(victim) })
  }
  // late replays: a marker delivered again long after gossip forgot it
  sched.at(horizon + opts.deadlineMs, () => {
    for (const m of markers.values()) {
      for (const n of nodes) if (rnd() < 0.3) deliver(n, encodeMarker(m))
    }
  })
  const end = horizon + opts.deadlineMs * 2
  await sched.run(end)
  for (const n of nodes) if (!n.alive) boot(n)
  await sched.run(end + 1)

  // anti-entropy, as the DHT sync does: every node learns every result any node holds, and the
  // markers of a scheduled snapshot's firings merge
  const all = new Map<string, SignedResult[]>()
  for (const n of nodes) {
    for (const s of n.proto?.list() ?? []) {
      all.set(s.marker.id, [...(all.get(s.marker.id) ?? []), ...sortedResults(s)])
      const known = markers.get(s.marker.id)
      markers.set(s.marker.id, known?.schedule != null && s.marker.schedule != null ? mergeMarkers(known, s.marker) : known ?? s.marker)
    }
  }
  // exactly one snapshot per schedule slot, taken once by every node that was up around it
  for (const slot of slots) {
    const ids = new Set<string>()
    for (const n of nodes) for (const st of n.proto?.list() ?? []) if (st.marker.schedule === 'sim' && st.marker.slot === slot) ids.add(st.marker.id)
    for (const m of markers.values()) if (m.schedule === 'sim' && m.slot === slot) ids.add(m.id)
    if (ids.size !== 1) violations.push(`schedule slot ${slot}: ${ids.size} snapshots`)
    const id = [...ids][0]
    const trueSlot = slot - EPOCH
    for (const n of nodes) {
      if (n.crashedAt.some(t => t >= trueSlot - opts.maxSkewMs - 10_000 && t <= trueSlot + opts.maxSkewMs + opts.deadlineMs)) continue
      const caps = (n.captures.get(id) ?? []).filter(iv => iv.end != null).length
      if (caps !== 1) violations.push(`schedule slot ${slot}: n${n.index}, up all along, captured ${caps} times`)
    }
  }
  const report: SimulationReport = { seed: opts.seed, options: opts, snapshots: [], delivered, violations }
  for (const [id, marker] of markers) {
    const statuses: Record<string, string> = {}
    const results = all.get(id) ?? []
    let merged: SnapshotState = { marker, results: new Map() }
    if (marker.schedule != null && !nodes.every(n => n.proto?.get(id) == null || n.proto.get(id)?.marker.schedule != null)) violations.push(`snapshot ${id.slice(0, 8)}: scheduled on some nodes only`)
    for (const r of results) merged = applyResult(merged, r)
    const final = computeStatus(merged, EPOCH + sched.now)
    for (const n of nodes) {
      const local = n.proto?.get(id)
      if (local == null) continue
      let s: SnapshotState = { marker, results: local.results }
      for (const r of results) s = applyResult(s, r)
      statuses[`n${n.index}`] = computeStatus(s, EPOCH + sched.now).status
    }
    report.snapshots.push({ id, consistency: marker.consistency, statuses })
    const distinct = new Set(Object.values(statuses))
    if (distinct.size > 1) violations.push(`snapshot ${id.slice(0, 8)}: nodes with the same results disagree on its status: ${JSON.stringify(statuses)}`)
    if (final.status === 'running') violations.push(`snapshot ${id.slice(0, 8)}: still running long after its deadline`)
    // nothing shown as complete that was not captured by every participant
    if (final.status === 'complete') {
      for (const p of marker.expected) {
        const node = nodes.find(n => n.id === p) as SimNode
        if (!(node.captures.get(id) ?? []).some(iv => iv.end != null)) violations.push(`snapshot ${id.slice(0, 8)}: complete but n${node.index} never finished a capture`)
      }
    }
    for (const node of nodes) {
      const caps = (node.captures.get(id) ?? []).filter(iv => iv.end != null)
      if (caps.length > 1) violations.push(`snapshot ${id.slice(0, 8)}: n${node.index} captured ${caps.length} times`)
    }
    if (marker.consistency === 'barrier') {
      const parts = marker.expected.map(p => nodes.find(n => n.id === p) as SimNode)
      if (final.status === 'complete') {
        // a consistent cut: every participant was frozen before any capture began, and each
        // capture ended before its host thawed
        const lastFreeze = Math.max(...parts.map(n => Math.min(...(n.freezes.get(id) ?? []).map(iv => iv.start))))
        for (const n of parts) {
          const cap = (n.captures.get(id) ?? []).find(iv => iv.end != null)
          if (cap == null) continue
          if (cap.start < lastFreeze) violations.push(`barrier ${id.slice(0, 8)}: n${n.index} began capturing at ${cap.start} before every participant was frozen (${lastFreeze})`)
          const fr = (n.freezes.get(id) ?? []).find(iv => iv.start <= cap.start && (iv.end == null || iv.end >= (cap.end as number)))
          if (fr == null) violations.push(`barrier ${id.slice(0, 8)}: n${n.index} was not frozen for its whole capture`)
        }
      }
      if (final.status === 'partial') violations.push(`barrier ${id.slice(0, 8)}: status partial (all or nothing)`)
    }
  }
  // nothing frozen past its bound: the prepare timeout, then the capture's bound, plus the hooks
  for (const node of nodes) {
    for (const [id, list] of node.freezes) {
      const marker = markers.get(id)
      const bound = (marker?.prepareTimeoutMs ?? 0) + ((marker?.deadline ?? 0) - (marker?.startedAt ?? 0)) + hookMs + 200
      for (const iv of list) {
        if (iv.end == null) violations.push(`n${node.index} is still frozen for ${id.slice(0, 8)} at the end`)
        else if (iv.end - iv.start > bound && !wasDownDuring(node, iv)) violations.push(`n${node.index} stayed frozen for ${id.slice(0, 8)} ${iv.end - iv.start} ms, over ${bound} ms`)
      }
    }
  }
  return report
}

/** a node that crashed while frozen thaws when it starts again: its freeze spans the downtime */
function wasDownDuring (node: SimNode, iv: Interval): boolean {
  return node.crashedAt.some(t => t >= iv.start && t <= (iv.end ?? Infinity))
}

