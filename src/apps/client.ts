// The app side of the app socket, exported as `snapmesh/app`:
//
//   const app = await connectApp({ socket: '/var/lib/snapmesh/apps.sock', name: 'bank' })
//   app.onState(() => encode(myState))                      // taken at each snapshot's cut
//   app.onMessage(async msg => { apply(msg.payload) })      // one at a time, in arrival order
//   await app.send(peerId, bytes)                           // to the app of the same name there
//   const { state, messages } = await app.restore(snapshotId)
//
// Events (messages and state requests) are handled one at a time in the order the agent wrote
// them: the next waits for the previous handler's promise. While a state provider runs, sends are
// held and go out after the state: they come after the cut.
import net from 'node:net'
import { AppAgentError, AppDisconnectedError, InvalidAppRequestError } from './errors.js'
import { LineSplitter, type AgentEvent } from './socket-messages.js'
import { readTokenFile } from './tokens.js'
import { APP_NAME } from './wire.js'
import type { AbortOptions } from '@libp2p/interface'

export { AppAgentError, AppDisconnectedError } from './errors.js'
export { AppTokenError } from './errors.js'

export interface ConnectAppInit {
  /** the agent's app socket (config `apps.socket`, default `<dataDir>/apps.sock`) */
  socket: string
  /** this app's name, unique among the apps of one agent; messages are addressed to it */
  name: string
  /** this app's token, when the agent has `apps.tokens` */
  token?: string
  /** or the file that holds it (its trailing newline is dropped) */
  tokenFile?: string
}

/** a message from an app on some agent (this one included) */
export interface AppMessageEvent {
  from: { peer: string, app: string }
  /** unique for its channel (sender agent and app, this app): the sender agent's epoch and a sequence number */
  id: string
  payload: Uint8Array
}

/** what `restore` hands back: the app's state at the cut and the messages that were in flight to it */
export interface RestoredApp {
  snapshot: string
  /** the peer ID of the agent whose part it is */
  node: string
  state: Uint8Array
  messages: AppMessageEvent[]
}

export type MessageHandler = (msg: AppMessageEvent) => void | Promise<void>
/** returns the app's state for snapshot `snapshot`: take it before the first await */
export type StateProvider = (snapshot: string) => Uint8Array | Promise<Uint8Array>

export interface AppClient {
  /** the agent's peer ID */
  readonly peerId: string
  /** the agent's host name */
  readonly host: string
  /** this app's name */
  readonly name: string
  /** sends a message to app `options.app` (default: this app's name) on agent `peer`; resolves to its ID once the agent took it */
  send: (peer: string, payload: Uint8Array | string, options?: { app?: string } & AbortOptions) => Promise<string>
  onMessage: (handler: MessageHandler) => void
  onState: (provider: StateProvider) => void
  /** this app's state and in-flight messages in a snapshot (by default this agent's part) */
  restore: (snapshot: string, options?: { node?: string } & AbortOptions) => Promise<RestoredApp>
  /** called with errors the agent reports about no request in particular */
  onError: (handler: (err: AppAgentError) => void) => void
  close: () => Promise<void>
}

type Queued = Extract<AgentEvent, { type: 'message' | 'state-request' }>

const fromB64 = (s: string): Uint8Array => {
  const b = Buffer.from(s, 'base64')
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}
const toB64 = (p: Uint8Array | string): string => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p.buffer, p.byteOffset, p.byteLength)).toString('base64')

class Client implements AppClient {
  peerId = ''
  host = ''
  readonly name: string
  private readonly socket: net.Socket
  private readonly pending = new Map<string, { resolve: (ev: AgentEvent) => void, reject: (err: Error) => void }>()
  private readonly events: Queued[] = []
  private messageHandler?: MessageHandler
  private stateProvider?: StateProvider
  private errorHandler?: (err: AppAgentError) => void
  private working = false
  private inState = false
  private held: string[] = []
  private nextId = 0
  private closed?: Error
  private welcome?: { resolve: () => void, reject: (err: Error) => void }

  constructor (socket: net.Socket, name: string) {
    this.socket = socket
    this.name = name
    const splitter = new LineSplitter(512 * 1024 * 1024, line => { this.onLine(line) }, bytes => {
      this.fail(new AppAgentError(`the agent sent a line of more than ${bytes} bytes`))
    })
    socket.on('data', (chunk: Buffer) => { splitter.push(chunk) })
    socket.on('error', (err) => { this.fail(new AppDisconnectedError(`app socket: ${err.message}`)) })
    socket.on('close', () => { this.fail(new AppDisconnectedError('the agent closed the app socket')) })
  }

  async hello (token: string | undefined, options: AbortOptions): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.welcome = { resolve, reject }
      options.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true })
      this.socket.write(`${JSON.stringify({ type: 'hello', v: 1, app: this.name, ...(token != null ? { token } : {}) })}\n`)
    })
  }

  private fail (err: Error): void {
    if (this.closed != null) return
    this.closed = err
    this.welcome?.reject(err)
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
    this.socket.destroy()
  }

  private onLine (line: string): void {
    let ev: AgentEvent
    try {
      ev = JSON.parse(line)
    } catch {
      this.fail(new AppAgentError(`the agent sent a line that is not JSON: ${line.slice(0, 80)}`))
      return
    }
    switch (ev.type) {
      case 'welcome':
        this.peerId = ev.peerId
        this.host = ev.name
        this.welcome?.resolve()
        this.welcome = undefined
        return
      case 'message':
      case 'state-request':
        this.events.push(ev)
        this.work()
        return
      case 'error': {
        const err = new AppAgentError(ev.error, ev.code)
        if (this.welcome != null) {
          this.welcome.reject(err)
          this.welcome = undefined
          this.socket.destroy()
          return
        }
        const p = ev.id != null ? this.pending.get(ev.id) : undefined
        if (p != null) {
          this.pending.delete(ev.id as string)
          p.reject(err)
        } else {
          this.errorHandler?.(err)
        }
        return
      }
      default: {
        const id = (ev as { id?: string }).id
        const p = id != null ? this.pending.get(id) : undefined
        if (p != null) {
          this.pending.delete(id as string)
          p.resolve(ev)
        }
      }
    }
  }

  /** handles queued events one at a time, in order */
  private work (): void {
    if (this.working) return
    this.working = true
    void (async () => {
      try {
        while (this.events.length > 0 && this.closed == null) {
          const ev = this.events[0]
          if (ev.type === 'message') {
            if (this.messageHandler == null) return // waits for onMessage
            this.events.shift()
            try {
              await this.messageHandler({ from: ev.from, id: ev.id, payload: fromB64(ev.payload) })
            } catch (err: any) {
              this.errorHandler?.(new AppAgentError(`message handler failed on ${ev.id}: ${String(err.message)}`, 'ERR_APP_HANDLER'))
            }
          } else {
            this.events.shift()
            await this.giveState(ev.snapshot)
          }
        }
      } finally {
        this.working = false
      }
    })()
  }

  private async giveState (snapshot: string): Promise<void> {
    this.inState = true
    let reply: Record<string, unknown>
    try {
      const state = this.stateProvider != null ? await this.stateProvider(snapshot) : new Uint8Array()
      reply = { type: 'state', snapshot, state: toB64(state) }
    } catch (err: any) {
      reply = { type: 'state', snapshot, error: String(err.message ?? err) }
    }
    this.inState = false
    this.socket.write(`${JSON.stringify(reply)}\n`)
    const held = this.held
    this.held = []
    for (const line of held) this.socket.write(line)
  }

  private async request<T extends AgentEvent> (body: Record<string, unknown>, options: AbortOptions = {}): Promise<T> {
    if (this.closed != null) throw this.closed
    const id = `r${this.nextId++}`
    const line = `${JSON.stringify({ ...body, id })}\n`
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: ev => { resolve(ev as T) }, reject })
      options.signal?.addEventListener('abort', () => { this.pending.delete(id); reject(options.signal?.reason) }, { once: true })
      // a send made while the state is being taken comes after the cut
      if (this.inState) this.held.push(line)
      else this.socket.write(line)
    })
  }

  async send (peer: string, payload: Uint8Array | string, options: { app?: string } & AbortOptions = {}): Promise<string> {
    const app = options.app ?? this.name
    if (!APP_NAME.test(app)) throw new InvalidAppRequestError(`not an app name: ${JSON.stringify(app)}`, 'app')
    const ev = await this.request<Extract<AgentEvent, { type: 'sent' }>>({ type: 'send', to: peer, app, payload: toB64(payload) }, options)
    return ev.message
  }

  onMessage (handler: MessageHandler): void {
    this.messageHandler = handler
    this.work()
  }

  onState (provider: StateProvider): void {
    this.stateProvider = provider
  }

  onError (handler: (err: AppAgentError) => void): void {
    this.errorHandler = handler
  }

  async restore (snapshot: string, options: { node?: string } & AbortOptions = {}): Promise<RestoredApp> {
    const body: Record<string, unknown> = { type: 'restore', snapshot }
    if (options.node != null) body.node = options.node
    const ev = await this.request<Extract<AgentEvent, { type: 'restored' }>>(body, options)
    return {
      snapshot: ev.snapshot,
      node: ev.node,
      state: fromB64(ev.state),
      messages: ev.messages.map(m => ({ from: m.from, id: m.id, payload: fromB64(m.payload) }))
    }
  }

  async close (): Promise<void> {
    if (this.closed != null) return
    await new Promise<void>(resolve => {
      this.socket.once('close', () => { resolve() })
      this.socket.end()
    })
  }
}

/** Connects an app to its agent and registers it under `name`. */
export async function connectApp (init: ConnectAppInit, options: AbortOptions = {}): Promise<AppClient> {
  if (!APP_NAME.test(init.name)) throw new InvalidAppRequestError(`not an app name: ${JSON.stringify(init.name)} (letters, digits, ".", "_", "-"; at most 64)`, 'name')
  if (init.token != null && init.tokenFile != null) throw new InvalidAppRequestError('give either token or tokenFile, not both', 'token')
  const token = init.tokenFile != null ? await readTokenFile(init.tokenFile) : init.token
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(init.socket)
    s.once('connect', () => { s.off('error', reject); resolve(s) })
    s.once('error', (err) => { reject(new AppDisconnectedError(`cannot connect to the app socket ${init.socket}: ${err.message}`)) })
    options.signal?.addEventListener('abort', () => { s.destroy(); reject(options.signal?.reason) }, { once: true })
  })
  const client = new Client(socket, init.name)
  await client.hello(token, options)
  return client
}
