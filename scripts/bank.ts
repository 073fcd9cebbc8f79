// An example distributed app on app channels: one bank account per host, moving money to the
// others at a high rate. Each account's state is its balance and the IDs of the transfers it sent
// and received. A consistent snapshot conserves money: the recorded balances plus the transfers
// recorded in flight add up to the total, and nothing is received that was not sent.
//
//   node dist/scripts/bank.js [--agents 5] [--seconds 20] [--snapshots 10]
//
// starts a local cluster, runs the banks, takes snapshots at random times from random agents,
// restores every account from every complete snapshot, checks it, prints a summary and stops.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { connectApp, type AppClient, type RestoredApp } from '../src/apps/client.js'
import { LocalCluster, waitFor, type LocalAgent } from './cluster.js'

export const BANK_APP = 'bank'

export interface BankState { balance: number, sent: string[], received: string[] }
interface Transfer { id: string, amount: number }

const decoder = new TextDecoder()
const encoder = new TextEncoder()

/** mulberry32, so a run can be repeated from its seed */
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

/** the app socket of an agent of a LocalCluster (the default: `<dataDir>/apps.sock`) */
export function appSocketOf (agent: LocalAgent): string {
  return path.join(agent.dir, 'data', 'apps.sock')
}

/** One account, an app of one agent. */
export class Bank {
  readonly label: string
  balance: number
  readonly sent = new Set<string>()
  readonly received = new Set<string>()
  app!: AppClient
  private next = 0
  private readonly socket: string

  constructor (init: { socket: string, label: string, balance: number }) {
    this.socket = init.socket
    this.label = init.label
    this.balance = init.balance
  }

  async start (): Promise<this> {
    this.app = await connectApp({ socket: this.socket, name: BANK_APP })
    // the state is taken synchronously: it holds exactly the transfers sent and received so far
    this.app.onState(() => encoder.encode(JSON.stringify(this.state())))
    this.app.onMessage((msg) => {
      const t = JSON.parse(decoder.decode(msg.payload)) as Transfer
      this.balance += t.amount
      this.received.add(t.id)
    })
    return this
  }

  state (): BankState {
    return { balance: this.balance, sent: [...this.sent], received: [...this.received] }
  }

  /** moves a random amount to `peer`; the debit and the send happen together */
  async transfer (peer: string, amount: number): Promise<boolean> {
    if (amount > this.balance) return false
    const t: Transfer = { id: `${this.label}-${this.next++}`, amount }
    this.balance -= t.amount
    this.sent.add(t.id)
    await this.app.send(peer, encoder.encode(JSON.stringify(t)))
    return true
  }

  async close (): Promise<void> {
    await this.app?.close()
  }
}

/** What is wrong with one snapshot's restored accounts, or nothing. */
export function checkSnapshot (parts: Array<{ label: string, restored: RestoredApp }>, total: number): string[] {
  const problems: string[] = []
  let sum = 0
  const sent = new Set<string>()
  const received = new Set<string>()
  const inFlight: string[] = []
  for (const { label, restored } of parts) {
    const s = JSON.parse(decoder.decode(restored.state)) as BankState
    sum += s.balance
    for (const id of s.sent) sent.add(id)
    for (const id of s.received) {
      if (received.has(id)) problems.push(`${id} received twice (again by ${label})`)
      received.add(id)
    }
    for (const m of restored.messages) {
      const t = JSON.parse(decoder.decode(m.payload)) as Transfer
      sum += t.amount
      inFlight.push(t.id)
    }
  }
  if (sum !== total) problems.push(`balances plus transfers in flight sum to ${sum}, not ${total}`)
  for (const id of received) if (!sent.has(id)) problems.push(`${id} recorded as received but not as sent`)
  for (const id of sent) if (!received.has(id) && !inFlight.includes(id)) problems.push(`${id} recorded as sent but neither received nor in flight`)
  for (const id of inFlight) {
    if (!sent.has(id)) problems.push(`${id} recorded in flight but not as sent`)
    if (received.has(id)) problems.push(`${id} recorded both in flight and as received`)
  }
  return problems
}

export interface BankRunInit {
  cluster: LocalCluster
  banks: Bank[]
  seconds: number
  snapshots: number
  seed: number
  /** transfer loops per bank */
  loops?: number
  /** keep transferring past `seconds` until this many transfers were made (at most 4 x `seconds` in all) */
  minTransfers?: number
  log?: (line: string) => void
}

export interface BankRunResult {
  transfers: number
  /** `covered`: every bank's agent was an expected participant and reported ok */
  snapshots: Array<{ id: string, by: string, status: string, reasons?: string[], covered?: boolean }>
}

/**
 * Runs transfers from every bank for `seconds`, and starts `snapshots` snapshots at random times
 * from random agents, two at once about one time in four. Resolves once every snapshot is finished.
 */
export async function runBank (init: BankRunInit): Promise<BankRunResult> {
  const rnd = prng(init.seed)
  const { banks, cluster } = init
  const peers = cluster.agents.map(a => a.peerId)
  const until = Date.now() + init.seconds * 1000
  const hardUntil = Date.now() + init.seconds * 4000
  let transfers = 0
  const more = (): boolean => Date.now() < until || (transfers < (init.minTransfers ?? 0) && Date.now() < hardUntil)
  const loops = banks.flatMap((bank, i) => Array.from({ length: init.loops ?? 2 }, async () => {
    while (more()) {
      const others = peers.filter((_, j) => j !== i)
      if (await bank.transfer(others[Math.floor(rnd() * others.length)], 1 + Math.floor(rnd() * 50))) transfers++
      // short of money: wait for some to come in
      else await new Promise(resolve => setTimeout(resolve, 5))
    }
  }))
  const times: number[] = []
  while (times.length < init.snapshots) {
    const at = Math.floor(rnd() * init.seconds * 800)
    times.push(at)
    // sometimes a second one at the same moment, from another agent
    if (rnd() < 0.25 && times.length < init.snapshots) times.push(at)
  }
  const started: BankRunResult['snapshots'] = []
  const snaps = times.map(async at => {
    await new Promise(resolve => setTimeout(resolve, at))
    const agent = cluster.agents[Math.floor(rnd() * cluster.agents.length)]
    const view = await agent.client.createSnapshot({ tag: 'bank' })
    init.log?.(`snapshot ${view.id.slice(0, 8)} started by ${agent.name} at ${at} ms`)
    const entry = { id: view.id, by: agent.name, status: 'running' }
    started.push(entry)
    return entry
  })
  await Promise.all(loops)
  const entries = await Promise.all(snaps)
  for (const entry of entries) {
    const agent = cluster.get(entry.by)
    const done = await agent.client.getSnapshot(entry.id, { wait: true, timeoutSeconds: 120 })
    const covered = cluster.agents.every(a => done.participants.some(p => p.peerId === a.peerId && p.status === 'ok' && p.extra !== true))
    Object.assign(entry, { status: done.status, reasons: done.reasons, covered })
  }
  return { transfers, snapshots: entries }
}

/** waits until every agent is connected to every other one */
export async function meshed (cluster: LocalCluster, timeoutMs = 60_000): Promise<void> {
  for (const agent of cluster.agents) {
    await waitFor(`${agent.name} to be connected to every other agent`, async () => (await agent.client.peers()).filter(p => p.connected).length >= cluster.agents.length - 1, timeoutMs)
  }
}

/** restores every account from a snapshot through its own agent */
export async function restoreAll (banks: Bank[], id: string): Promise<Array<{ label: string, restored: RestoredApp }>> {
  return Promise.all(banks.map(async b => ({ label: b.label, restored: await b.app.restore(id) })))
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const opt = (name: string, def: number): number => {
    const i = args.indexOf(`--${name}`)
    return i >= 0 ? Number(args[i + 1]) : def
  }
  const n = opt('agents', 5)
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-bank-'))
  const cluster = new LocalCluster({ dir, agents: Array.from({ length: n }, (_, i) => ({ name: `bank${i + 1}`, extra: { replication: { copies: 1 } } })), deadlineSeconds: 60 })
  const banks: Bank[] = []
  try {
    await cluster.start()
    await meshed(cluster)
    for (const a of cluster.agents) banks.push(await new Bank({ socket: appSocketOf(a), label: a.name, balance: 10_000 }).start())
    const total = banks.length * 10_000
    const result = await runBank({ cluster, banks, seconds: opt('seconds', 20), snapshots: opt('snapshots', 10), seed: opt('seed', Date.now() % 1e9), log: console.log })
    console.log(`${result.transfers} transfers`)
    let bad = 0
    for (const s of result.snapshots) {
      if (s.status !== 'complete') {
        console.log(`snapshot ${s.id.slice(0, 8)} ${s.status}: ${(s.reasons ?? []).join('; ')}`)
        continue
      }
      const parts = await restoreAll(banks, s.id)
      const problems = checkSnapshot(parts, total)
      const inFlight = parts.reduce((k, p) => k + p.restored.messages.length, 0)
      console.log(`snapshot ${s.id.slice(0, 8)} complete, ${inFlight} transfers in flight: ${problems.length === 0 ? 'consistent' : problems.slice(0, 5).join('; ')}`)
      if (problems.length > 0) bad++
    }
    process.exitCode = bad > 0 ? 1 : 0
  } finally {
    for (const b of banks) await b.close().catch(() => {})
    await cluster.stop()
    await fs.rm(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] != null && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch(err => {
    console.error(`bank: ${String(err.message)}`)
    process.exit(1)
  })
}
