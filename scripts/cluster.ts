// Starts a local cluster of N agents on 127.0.0.1, each with its own data folder, config and admin
// socket. Used by `npm run demo`, the integration tests and by hand:
//
//   node dist/scripts/cluster.js --agents 3 [--dir /tmp/mesh] [--chain]
//
// prints each agent's name, peer ID and socket, and stops every agent on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { AdminClient } from '../src/admin/client.js'
import { loadOrCreateIdentity } from '../src/node/identity.js'
import type { StatusView } from '../src/admin/api.js'

const here = path.dirname(fileURLToPath(import.meta.url))
/** dist/src/cli/bin.js, next to this compiled script's folder */
export const BIN = path.resolve(here, '../src/cli/bin.js')

export interface AgentSpec {
  name: string
  /** sources for this agent; default: one source "files" at <dir>/<name>/files */
  /** as in the config file: folder sources (`path`) or command sources (`command`), with hooks */
  sources?: Array<{ name: string } & Record<string, unknown>>
  /** extra config keys merged over the generated config */
  extra?: Record<string, unknown>
  /** Node.js options put before the agent's script (e.g. `--import` of a test preload module) */
  execArgv?: string[]
  /** environment variables added to the agent's environment */
  env?: Record<string, string>
}

export interface ClusterInit {
  /** folder that holds every agent's data, config and sources */
  dir: string
  agents: Array<string | AgentSpec>
  /** 'star': every agent knows the first; 'chain': each knows only the previous one */
  topology?: 'star' | 'chain'
  /** path of a swarm.key shared by every agent */
  psk?: string
  deadlineSeconds?: number
  /** let the agents log to these files instead of discarding their output */
  logToFiles?: boolean
}

export class LocalAgent {
  readonly name: string
  readonly dir: string
  readonly configFile: string
  readonly socket: string
  readonly peerId: string
  readonly client: AdminClient
  sourcesDir: string
  proc?: ChildProcess
  addresses: string[] = []
  /** Node.js options and extra environment used at each start; may be changed between starts */
  execArgv: string[] = []
  env: Record<string, string> = {}
  private exited?: Promise<void>

  constructor (init: { name: string, dir: string, peerId: string }) {
    this.name = init.name
    this.dir = init.dir
    this.configFile = path.join(init.dir, 'config.json')
    this.socket = path.join(init.dir, 'admin.sock')
    this.sourcesDir = path.join(init.dir, 'files')
    this.peerId = init.peerId
    this.client = new AdminClient({ socketPath: this.socket })
  }

  get running (): boolean {
    return this.proc != null && this.proc.exitCode == null && this.proc.signalCode == null
  }

  /** starts the agent process and waits until its admin socket answers */
  async start (options: { logFile?: string, timeoutMs?: number } = {}): Promise<StatusView> {
    const out = options.logFile != null ? await fs.open(options.logFile, 'a') : undefined
    const proc = spawn(process.execPath, [...this.execArgv, BIN, 'agent', '--config', this.configFile], {
      stdio: ['ignore', out?.fd ?? 'ignore', out?.fd ?? 'pipe'],
      env: { ...process.env, DEBUG: process.env.SNAPMESH_AGENT_DEBUG ?? '', ...this.env }
    })
    await out?.close()
    let stderr = ''
    proc.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
    this.proc = proc
    this.exited = new Promise(resolve => proc.once('exit', () => { resolve() }))
    const deadline = Date.now() + (options.timeoutMs ?? 30_000)
    while (true) {
      if (!this.running) throw new Error(`agent ${this.name} exited during start (code ${String(proc.exitCode)}): ${stderr.trim()}`)
      try {
        const status = await this.client.status()
        this.addresses = status.addresses
        return status
      } catch {
        if (Date.now() > deadline) throw new Error(`agent ${this.name} did not answer on ${this.socket} within the start timeout`)
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
  }

  /** SIGTERM, then SIGKILL if the agent has not stopped after `graceMs` */
  async stop (graceMs = 10_000): Promise<void> {
    if (!this.running) return
    this.proc?.kill('SIGTERM')
    const timer = setTimeout(() => this.proc?.kill('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(timer)
  }

  /** kill -9 */
  async kill (): Promise<void> {
    if (!this.running) return
    this.proc?.kill('SIGKILL')
    await this.exited
  }

  /** a multiaddr other agents can dial, with /p2p/ */
  dialAddress (): string {
    const tcp = this.addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/'))
    if (tcp == null) throw new Error(`agent ${this.name} has no loopback address`)
    return tcp.includes('/p2p/') ? tcp : `${tcp}/p2p/${this.peerId}`
  }
}

export class LocalCluster {
  readonly agents: LocalAgent[] = []
  private readonly init: ClusterInit

  constructor (init: ClusterInit) {
    this.init = init
  }

  /** writes configs, creates identities and sources folders, starts every agent in order */
  async start (): Promise<this> {
    for (const a of this.init.agents) {
      await this.add(typeof a === 'string' ? { name: a } : a, { start: true })
    }
    return this
  }

  /** prepares (and by default starts) one more agent that bootstraps from the existing ones */
  async add (spec: AgentSpec, options: { start?: boolean } = {}): Promise<LocalAgent> {
    const dir = path.join(this.init.dir, spec.name)
    await fs.mkdir(path.join(dir, 'files'), { recursive: true })
    const { peerId } = await loadOrCreateIdentity(path.join(dir, 'data'))
    const agent = new LocalAgent({ name: spec.name, dir, peerId: peerId.toString() })
    agent.execArgv = [...spec.execArgv ?? []]
    agent.env = { ...spec.env }
    const prev = this.agents.filter(a => a.running)
    const bootstrap = prev.length === 0
      ? []
      : this.init.topology === 'chain' ? [prev[prev.length - 1].dialAddress()] : [prev[0].dialAddress()]
    const config = {
      name: spec.name,
      dataDir: './data',
      adminSocket: './admin.sock',
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap,
      psk: this.init.psk ?? null,
      sources: spec.sources ?? [{ name: 'files', path: './files' }],
      snapshot: { deadlineSeconds: this.init.deadlineSeconds ?? 30 },
      network: { reconnectSeconds: 1, syncSeconds: 2 },
      ...spec.extra
    }
    await fs.writeFile(agent.configFile, JSON.stringify(config, null, 2))
    this.agents.push(agent)
    if (options.start !== false) {
      await agent.start({ logFile: this.init.logToFiles === true ? path.join(dir, 'agent.log') : undefined })
    }
    return agent
  }

  get (name: string): LocalAgent {
    const a = this.agents.find(a => a.name === name)
    if (a == null) throw new Error(`no agent named ${name}`)
    return a
  }

  async stop (): Promise<void> {
    await Promise.all(this.agents.map(async a => { await a.stop() }))
  }
}

/** polls `check` until it returns a truthy value or the time runs out */
export async function waitFor<T> (what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      const v = await check()
      if (v != null && v !== false) return v
    } catch (err) {
      lastError = err
    }
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
  throw new Error(`timed out waiting for ${what}${lastError != null ? ` (last error: ${String((lastError as Error).message)})` : ''}`)
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`)
    return i >= 0 ? args[i + 1] : undefined
  }
  const n = Number(opt('agents') ?? 3)
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new Error('--agents takes a whole number from 1 to 50')
  const dir = opt('dir') ?? await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-cluster-'))
  const cluster = new LocalCluster({
    dir,
    agents: Array.from({ length: n }, (_, i) => `node${i + 1}`),
    topology: args.includes('--chain') ? 'chain' : 'star',
    logToFiles: true
  })
  const stop = (): void => {
    console.log('\nstopping agents...')
    cluster.stop().then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  await cluster.start()
  console.log(`cluster of ${n} in ${dir}`)
  for (const a of cluster.agents) {
    console.log(`  ${a.name}  ${a.peerId}  socket ${a.socket}  files ${a.sourcesDir}`)
  }
  console.log(`\ntry: node ${path.relative(process.cwd(), BIN)} --socket ${cluster.agents[0].socket} snapshot create --wait`)
  console.log('Ctrl-C stops every agent.')
}

if (process.argv[1] != null && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch(err => {
    console.error(`cluster: ${String(err.message)}`)
    process.exit(1)
  })
}
