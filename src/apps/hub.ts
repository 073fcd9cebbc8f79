// The app hub: the app socket (local apps), the app protocol (other agents) and the cut machine
// between them. Every input goes through the machine synchronously and its effects are carried
// out in order, so a state request written to an app always precedes a message the machine
// delivered after it.
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from 'it-length-prefixed-stream'
import { SocketPathTakenError } from '../util/errors.js'
import { listenPrivately } from '../util/listen.js'
import { peerIdProblem, type Marker } from '../wire/index.js'
import { CutMachine, type AppMessage, type CutRecord, type Effect, type Frame, type Verdict } from './cut.js'
import { AppRegistrationError, AppRestoreError, AppSendError, IncompleteCutError, InvalidAppRequestError, UnsafeAppStateError } from './errors.js'
import { LocalLink, PeerLink, type Link } from './peer-link.js'
import { readRestoredFile } from './restored.js'
import { LineSplitter, parseAppRequest, type AgentEvent, type AppRequest } from './socket-messages.js'
import { AppTokens } from './tokens.js'
import { APP_PROTOCOL, decodeFrame, encodeVerdict } from './wire.js'
import type { AbortOptions, Connection, Libp2p, Startable, Stream } from '@libp2p/interface'

const log = logger('snapmesh:apps')

/** the name of the extra capture source that holds the app part of a snapshot */
export const APPS_SOURCE = 'apps'
/** a socket's write buffer past which frames from peers wait before they are taken in */
const DRAIN_BYTES = 4 * 1024 * 1024

export interface AppHubComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  /** this agent's peer ID */
  peerId: string
  /** this host's name, told to apps */
  name: string
  /** a peer's frame started a snapshot here: the agent should take its part of it */
  onMarker: (marker: Marker) => void
  /**
   * restores the `apps/<app>` folder of one participant's part of a snapshot into `target` (a
   * folder that does not exist yet), through the agent's restore path
   */
  restore: (req: { snapshot: string, node?: string, app: string, target: string }, options?: AbortOptions) => Promise<{ snapshot: string, peerId: string }>
  /** ms since the epoch; default Date.now */
  clock?: () => number
}

export interface AppHubInit {
  /** the app socket's path (created with mode 0600) */
  socketPath: string
  /** folder that holds each snapshot's app part until it is captured, and app restores */
  workDir: string
  /** largest message payload */
  maxMessageBytes: number
  /** largest state an app may give */
  maxStateBytes: number
  /** messages waiting for one peer at most; past that, sends to it are refused */
  maxQueued?: number
  /** how long a snapshot is remembered after its deadline; default 10 min */
  retainMs?: number
  /**
   * app name -> token file: only these names may register, each with its token. Undefined: any
   * process that can open the socket registers any free name
   */
  tokens?: Record<string, string>
}

/** What the agent captures for a snapshot: the folder of the app part, if any app took part. */
export interface AppCutResult {
  /** absent when no app was connected at the cut */
  dir?: string
  apps: string[]
}

interface Deferred { promise: Promise<AppCutResult>, resolve: (r: AppCutResult) => void, reject: (e: Error) => void, settled: boolean }

/** The messages of a restore, as files store them and the socket carries them. */
export interface StoredMessage { from: { peer: string, app: string }, id: string, payload: string }

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
export const messageId = (m: Pick<AppMessage, 'epoch' | 'seq'>): string => `${m.epoch}:${m.seq}`

/** one app's connection */
class AppConnection {
  app?: string
  readonly socket: net.Socket
  constructor (socket: net.Socket) {
    this.socket = socket
  }

  write (ev: AgentEvent): void {
    if (!this.socket.writable) return
    this.socket.write(`${JSON.stringify(ev)}\n`)
  }
}

export class AppHub implements Startable {
  private readonly c: AppHubComponents
  private readonly init: Required<Omit<AppHubInit, 'tokens'>> & Pick<AppHubInit, 'tokens'>
  private tokens?: AppTokens
  private readonly clock: () => number
  private machine!: CutMachine
  private server?: net.Server
  private readonly conns = new Map<string, AppConnection>()
  private readonly sockets = new Set<net.Socket>()
  private readonly links = new Map<string, Link>()
  private readonly outcomes = new Map<string, Deferred>()
  private readonly streams = new Set<Stream>()
  private timer?: ReturnType<typeof setInterval>
  private started = false

  constructor (components: AppHubComponents, init: AppHubInit) {
    this.c = components
    this.init = { maxQueued: 10_000, retainMs: 600_000, ...init }
    this.clock = components.clock ?? Date.now
  }

  get socketPath (): string {
    return this.init.socketPath
  }

  async start (): Promise<void> {
    if (this.started) return
    if (this.init.tokens != null) this.tokens = await AppTokens.load(this.init.tokens)
    this.machine = new CutMachine({ self: this.c.peerId, epoch: randomBytes(8).toString('hex'), retainMs: this.init.retainMs })
    await fs.mkdir(this.init.workDir, { recursive: true, mode: 0o700 })
    await this.c.libp2p.handle(APP_PROTOCOL, ({ stream, connection }) => {
      this.serve(stream, connection).catch(err => {
        log.error('app frames from %s: %s', connection.remotePeer, err.message)
        stream.abort(err)
      })
    }, { maxInboundStreams: 8, maxOutboundStreams: 8 })
    await this.listen()
    this.timer = setInterval(() => { this.apply(this.machine.tick(this.clock())) }, 500)
    this.timer.unref()
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    clearInterval(this.timer)
    for (const link of this.links.values()) link.stop()
    this.links.clear()
    for (const s of this.streams) s.abort(new Error('the app hub stopped'))
    await this.c.libp2p.unhandle(APP_PROTOCOL).catch(() => {})
    for (const s of this.sockets) s.destroy()
    await new Promise<void>(resolve => { this.server?.close(() => { resolve() }) ?? resolve() })
    await fs.rm(this.init.socketPath, { force: true })
    for (const [id, d] of this.outcomes) if (!d.settled) this.settle(id, new Error('the agent stopped'))
  }

  private async listen (): Promise<void> {
    const p = this.init.socketPath
    // a socket file left by an agent that is gone; a live one answers and is kept
    const live = await new Promise<boolean>(resolve => {
      const probe = net.connect(p)
      probe.once('connect', () => { probe.destroy(); resolve(true) })
      probe.once('error', () => { resolve(false) })
    })
    if (live) throw new AppRegistrationError(`another process is listening on the app socket ${p}`)
    await fs.rm(p, { force: true })
    const server = net.createServer(socket => { this.accept(socket) })
    // bound where only this user can reach it, and linked into place with mode 0600 already set
    try {
      await listenPrivately(server, p, { mode: 0o600 })
    } catch (err: any) {
      throw err instanceof SocketPathTakenError ? new AppRegistrationError(`another process is listening on the app socket ${p}`) : err
    }
    this.server = server
  }

  /** connected apps and snapshots in progress, for status lines */
  status (): { socket: string, apps: string[], snapshots: Array<{ id: string, done: string, pending: string[] }> } {
    return { socket: this.init.socketPath, apps: [...this.conns.keys()].sort(), snapshots: this.machine?.snapshots() ?? [] }
  }

  // ---- the cut, for the agent ----------------------------------------------------------------

  /**
   * Cuts a snapshot now, synchronously: every connected app is asked for its state before any
   * message is delivered after this call. Idempotent.
   */
  cut (marker: Marker): void {
    this.deferred(marker.id)
    this.apply(this.machine.cut(marker, this.clock(), 'local'))
  }

  /**
   * Resolves once the app part of a snapshot is complete and written (every app's state and the
   * messages in flight into it); rejects with IncompleteCutError when it cannot be completed by
   * the snapshot's deadline or an app gave no state.
   */
  async wait (id: string, options: AbortOptions = {}): Promise<AppCutResult> {
    const d = this.deferred(id)
    if (options.signal == null) return d.promise
    const signal = options.signal
    signal.throwIfAborted()
    return Promise.race([d.promise, new Promise<never>((_resolve, reject) => {
      signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
    })])
  }

  /** Removes the written app part of a snapshot (once it is captured). */
  async release (id: string): Promise<void> {
    this.outcomes.delete(id)
    await fs.rm(path.join(this.init.workDir, 'cuts', id), { recursive: true, force: true })
  }

  private deferred (id: string): Deferred {
    let d = this.outcomes.get(id)
    if (d == null) {
      let resolve!: (r: AppCutResult) => void
      let reject!: (e: Error) => void
      const promise = new Promise<AppCutResult>((res, rej) => { resolve = res; reject = rej })
      promise.catch(() => {})
      d = { promise, resolve, reject, settled: false }
      this.outcomes.set(id, d)
    }
    return d
  }

  private settle (id: string, outcome: AppCutResult | Error): void {
    const d = this.deferred(id)
    if (d.settled) return
    d.settled = true
    if (outcome instanceof Error) d.reject(outcome)
    else d.resolve(outcome)
    // an outcome nobody asked for is dropped with its snapshot
    setTimeout(() => { if (this.outcomes.get(id) === d) void this.release(id) }, this.init.retainMs).unref()
  }

  // ---- effects -------------------------------------------------------------------------------

  private apply (effects: Effect[]): void {
    for (const e of effects) {
      switch (e.type) {
        case 'request-state':
          this.conns.get(e.app)?.write({ type: 'state-request', snapshot: e.snapshot })
          break
        case 'deliver':
          this.conns.get(e.app)?.write({ type: 'message', from: e.message.from, id: messageId(e.message), payload: b64(e.message.payload) })
          break
        case 'transmit':
          this.link(e.peer).enqueue(e.frame)
          break
        case 'started':
          this.deferred(e.marker.id)
          try {
            this.c.onMarker(e.marker)
          } catch (err: any) {
            log.error('starting snapshot %s: %s', e.marker.id.slice(0, 8), err.message)
          }
          break
        case 'complete':
          this.deferred(e.snapshot)
          this.write(e.record).then(r => { this.settle(e.snapshot, r) }, (err: Error) => { this.settle(e.snapshot, err) })
          break
        case 'incomplete':
          this.settle(e.snapshot, new IncompleteCutError(e.reason))
          break
      }
    }
  }

  /** writes a complete cut as files: `<app>/state`, `<app>/in-flight.json`, and `cut.json` */
  private async write (record: CutRecord): Promise<AppCutResult> {
    const failed = record.apps.filter(a => a.state == null)
    if (failed.length > 0) {
      throw new IncompleteCutError(`app part of snapshot ${record.marker.id.slice(0, 8)} has no state of ${failed.map(a => `${a.app} (${a.error ?? 'no state'})`).join(', ')}`)
    }
    if (record.apps.length === 0) return { apps: [] }
    const dir = path.join(this.init.workDir, 'cuts', record.marker.id)
    await fs.rm(dir, { recursive: true, force: true })
    for (const part of record.apps) {
      const appDir = path.join(dir, part.app)
      await fs.mkdir(appDir, { recursive: true, mode: 0o700 })
      await fs.writeFile(path.join(appDir, 'state'), part.state as Uint8Array, { mode: 0o600 })
      const inFlight: StoredMessage[] = part.inFlight.map(m => ({ from: m.from, id: messageId(m), payload: b64(m.payload) }))
      await fs.writeFile(path.join(appDir, 'in-flight.json'), `${JSON.stringify(inFlight, null, 1)}\n`, { mode: 0o600 })
    }
    const summary = {
      snapshot: record.marker.id,
      peerId: this.c.peerId,
      epoch: this.machine.epoch,
      apps: record.apps.map(a => ({ app: a.app, stateBytes: a.state?.length ?? 0, inFlight: a.inFlight.length })),
      announced: record.announced
    }
    await fs.writeFile(path.join(dir, 'cut.json'), `${JSON.stringify(summary, null, 1)}\n`, { mode: 0o600 })
    return { dir, apps: record.apps.map(a => a.app) }
  }

  private link (peer: string): Link {
    let link = this.links.get(peer)
    if (link == null) {
      if (peer === this.c.peerId) {
        link = new LocalLink(frame => this.receive(peer, frame))
      } else {
        const id = peerIdFromString(peer)
        link = new PeerLink({ dial: async (options) => this.c.libp2p.dialProtocol(id, APP_PROTOCOL, options) }, {
          peer,
          maxDataLength: 64 * 1024,
          onRefused: (frame, error) => { this.refused(peer, frame, error) }
        })
      }
      this.links.set(peer, link)
    }
    return link
  }

  /** a frame a peer refused for good: the sending app hears of it */
  private refused (peer: string, frame: Frame, error: string): void {
    if (frame.type !== 'msg') return
    this.conns.get(frame.message.from.app)?.write({ type: 'error', id: messageId(frame.message), error: `${peer} refused message ${messageId(frame.message)}: ${error}`, code: 'ERR_APP_SEND' })
  }

  private receive (fromPeer: string, frame: Frame): Verdict {
    const { verdict, effects } = this.machine.receive(fromPeer, frame, this.clock())
    this.apply(effects)
    return verdict
  }

  // ---- the app protocol ----------------------------------------------------------------------

  /** frames from one peer, each answered in turn */
  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString()
    this.streams.add(stream)
    try {
      const lp = lpStream(stream, { maxDataLength: this.init.maxMessageBytes + 1024 * 1024 })
      while (true) {
        let bytes
        try {
          bytes = await lp.read()
        } catch (err: any) {
          if (err.name === 'UnexpectedEOFError') break
          throw err
        }
        let k: number
        let verdict: Verdict
        try {
          const decoded = decodeFrame(bytes.subarray(), from, this.c.peerId, this.init.maxMessageBytes)
          k = decoded.k
          verdict = this.receive(from, decoded.frame)
          if (decoded.frame.type === 'msg') await this.drained(decoded.frame.message.to.app)
        } catch (err: any) {
          if (typeof err.k !== 'number') throw err
          log.error('bad app frame from %s: %s', from, err.message)
          k = err.k
          verdict = { ok: false, retry: false, error: String(err.message) }
        }
        await lp.write(encodeVerdict(k, verdict))
      }
      await stream.close()
    } finally {
      this.streams.delete(stream)
    }
  }

  /** waits while an app's socket holds too much unread */
  private async drained (app: string): Promise<void> {
    const socket = this.conns.get(app)?.socket
    if (socket == null || socket.writableLength < DRAIN_BYTES) return
    await new Promise<void>(resolve => {
      const done = (): void => { socket.off('drain', done); socket.off('close', done); resolve() }
      socket.once('drain', done)
      socket.once('close', done)
    })
  }

  // ---- the app socket ------------------------------------------------------------------------

  private accept (socket: net.Socket): void {
    const conn = new AppConnection(socket)
    this.sockets.add(socket)
    const maxLine = Math.ceil(Math.max(this.init.maxStateBytes, this.init.maxMessageBytes) * 4 / 3) + 4096
    const splitter = new LineSplitter(maxLine, line => { this.onLine(conn, line) }, bytes => {
      conn.write({ type: 'error', error: `line of more than ${bytes} bytes is over the limit of ${maxLine}; skipped`, code: 'ERR_INVALID_APP_REQUEST' })
    })
    socket.on('data', (chunk: Buffer) => { splitter.push(chunk) })
    socket.on('error', (err) => { log('app socket: %s', err.message) })
    socket.on('close', () => {
      this.sockets.delete(socket)
      if (conn.app != null && this.conns.get(conn.app) === conn) {
        this.conns.delete(conn.app)
        if (this.started) this.apply(this.machine.unregister(conn.app))
        log('app %s disconnected', conn.app)
      }
    })
  }

  private onLine (conn: AppConnection, line: string): void {
    let req: AppRequest | undefined
    try {
      req = parseAppRequest(line)
      this.handle(conn, req)
    } catch (err: any) {
      // the request's id, when the line has one, so the app knows which request failed
      let id = req != null && 'id' in req ? req.id : undefined
      if (req == null) {
        try {
          const o = JSON.parse(line)
          if (typeof o?.id === 'string' && o.id.length <= 128) id = o.id
        } catch {}
      }
      const ev: AgentEvent = { type: 'error', error: String(err.message), code: String(err.code ?? 'ERR_APP') }
      if (id != null) ev.id = id
      if (err.field != null) ev.field = err.field
      conn.write(ev)
    }
  }

  private handle (conn: AppConnection, req: AppRequest): void {
    if (req.type === 'hello') {
      if (conn.app != null) throw new AppRegistrationError(`this connection is already app ${JSON.stringify(conn.app)}`)
      // before the name is looked at: nothing about other apps shows to a process without a token
      this.tokens?.check(req.app, req.token)
      if (this.conns.has(req.app)) throw new AppRegistrationError(`an app named ${JSON.stringify(req.app)} is already connected to this agent`)
      this.machine.register(req.app, this.clock())
      conn.app = req.app
      this.conns.set(req.app, conn)
      conn.write({ type: 'welcome', v: 1, app: req.app, peerId: this.c.peerId, name: this.c.name })
      log('app %s connected', req.app)
      return
    }
    const app = conn.app
    if (app == null) throw new AppRegistrationError(`say hello first: {"type":"hello","v":1,"app":"<name>"} (got a ${req.type} request)`)
    if (req.type === 'send') {
      const problem = req.to === this.c.peerId ? undefined : peerIdProblem(req.to)
      if (problem != null) throw new InvalidAppRequestError(`send request: field "to" ${problem}`, 'to')
      const payload = Buffer.from(req.payload, 'base64')
      if (payload.length > this.init.maxMessageBytes) throw new AppSendError(`payload of ${payload.length} bytes is over apps.maxMessageBytes (${this.init.maxMessageBytes})`)
      const link = this.link(req.to)
      if (link.size >= this.init.maxQueued) throw new AppSendError(`${link.size} messages to ${req.to} are waiting already (it is unreachable or slow); not sent`)
      const { message, effects } = this.machine.send(app, { peer: req.to, app: req.app ?? app }, payload, this.clock())
      conn.write({ type: 'sent', id: req.id, message: messageId(message) })
      this.apply(effects)
      return
    }
    if (req.type === 'state') {
      const outstanding = this.machine.snapshots().some(s => s.id === req.snapshot && s.pending.includes(app))
      if (!outstanding) throw new InvalidAppRequestError(`state reply: no state of ${JSON.stringify(app)} is awaited for snapshot ${req.snapshot.slice(0, 8)}`, 'snapshot')
      if (req.state != null && req.error != null) throw new InvalidAppRequestError('state reply: give either "state" or "error", not both', 'error')
      if (req.state == null && req.error == null) throw new InvalidAppRequestError('state reply: field "state" is required (or "error")', 'state')
      if (req.error != null) {
        this.apply(this.machine.stateReply(app, req.snapshot, { error: `app ${app}: ${req.error}` }))
        return
      }
      const state = Buffer.from(req.state as string, 'base64')
      if (state.length > this.init.maxStateBytes) {
        this.apply(this.machine.stateReply(app, req.snapshot, { error: `app ${app} gave a state of ${state.length} bytes, over apps.maxStateBytes (${this.init.maxStateBytes})` }))
        throw new InvalidAppRequestError(`state reply: field "state" is ${state.length} bytes, over apps.maxStateBytes (${this.init.maxStateBytes})`, 'state')
      }
      this.apply(this.machine.stateReply(app, req.snapshot, { state: new Uint8Array(state.buffer, state.byteOffset, state.byteLength) }))
      return
    }
    // restore: answered when done, other lines go on meanwhile
    const id = req.id
    this.restoreFor(app, req).then(ev => { conn.write(ev) }, (err: any) => {
      conn.write({ type: 'error', id, error: String(err.message), code: String(err.code ?? 'ERR_APP_RESTORE') })
    })
  }

  private async restoreFor (app: string, req: Extract<AppRequest, { type: 'restore' }>): Promise<AgentEvent> {
    const tmp = await fs.mkdtemp(path.join(this.init.workDir, 'restore-'))
    try {
      const target = path.join(tmp, 'r')
      let got: { snapshot: string, peerId: string }
      try {
        got = await this.c.restore({ snapshot: req.snapshot, node: req.node, app, target })
      } catch (err: any) {
        throw new AppRestoreError(`restoring app ${app} from snapshot ${req.snapshot}: ${String(err.message)}`)
      }
      let state: Buffer
      let messages: StoredMessage[]
      try {
        // the manifest is the part's owner's: nothing in it is followed if it is a symlink
        state = await readRestoredFile(target, [APPS_SOURCE, app, 'state'])
        messages = JSON.parse((await readRestoredFile(target, [APPS_SOURCE, app, 'in-flight.json'])).toString('utf8'))
      } catch (err: any) {
        if (err instanceof UnsafeAppStateError) throw err
        if (err.code === 'ENOENT') throw new AppRestoreError(`snapshot ${got.snapshot.slice(0, 8)} holds no state of app ${JSON.stringify(app)} for ${got.peerId}`)
        throw new AppRestoreError(`reading the restored state of app ${app}: ${String(err.message)}`)
      }
      return { type: 'restored', id: req.id, snapshot: got.snapshot, node: got.peerId, state: state.toString('base64'), messages }
    } finally {
      await fs.rm(tmp, { recursive: true, force: true })
    }
  }
}
