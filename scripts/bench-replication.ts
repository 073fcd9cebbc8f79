// `node dist/scripts/bench-replication.js [--size-mb 256]`: replication throughput between two
// agents' stacks on loopback (real libp2p nodes: TCP, noise, yamux) against a raw TCP copy of the
// same bytes in the same run, and restore from a remote holder against restore from local disk.
// CPU seconds count every thread of this process, both ends included.
import '../src/polyfill.js'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { capture } from '../src/capture/index.js'
import { BlockExchange, RemoteBlockGetter } from '../src/exchange/index.js'
import { createNode, type SnapmeshNode } from '../src/node/index.js'
import { Replicator } from '../src/replication/index.js'
import { restore } from '../src/restore/index.js'
import { FsBlockStore } from '../src/store/index.js'

// Each agent has a thread pool of its own (libuv's default: 4 threads) for file work, fsyncs
// included. Two agents in one process share one pool, and the owner's block reads would queue
// behind the holder's fsyncs; give this process two agents' worth of threads (set before anything
// uses the pool; an explicit UV_THREADPOOL_SIZE wins).
process.env.UV_THREADPOOL_SIZE ??= '8'

function arg (name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : def
}

interface Peer { node: SnapmeshNode, blocks: FsBlockStore, exchange: BlockExchange, replicator: Replicator }

async function peer (dir: string): Promise<Peer> {
  const node = await createNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], validators: {}, selectors: {}, maxMessageBytes: 1 << 20, agentVersion: 'snapmesh/bench' })
  const blocks = new FsBlockStore({ path: dir })
  await blocks.start()
  const exchange = new BlockExchange({ libp2p: node, blocks })
  await exchange.start()
  const replicator = new Replicator({ libp2p: node, blocks, exchange }, { copies: 2 })
  await replicator.start()
  return { node, blocks, exchange, replicator }
}

/** sends `files` over one loopback TCP connection into one file on the other side, fsynced */
async function rawCopy (files: string[], out: string): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  const received = new Promise<void>((resolve, reject) => {
    server.once('connection', (sock) => {
      void fs.open(out, 'w').then(async fh => {
        for await (const chunk of sock) await fh.write(chunk as Buffer)
        await fh.sync()
        await fh.close()
        resolve()
      }, reject)
    })
  })
  const t0 = performance.now()
  const sock = net.connect(port, '127.0.0.1')
  for (const f of files) {
    for await (const chunk of (await fs.open(f)).createReadStream({ highWaterMark: 1 << 20 })) {
      if (!sock.write(chunk as Buffer)) await new Promise(resolve => sock.once('drain', resolve))
    }
  }
  sock.end()
  await received
  server.close()
  return (performance.now() - t0) / 1000
}

/** wall seconds and this process's CPU seconds (all threads) spent in `fn` */
async function timed (fn: () => Promise<unknown>): Promise<{ wall: number, cpu: number }> {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await fn()
  const cpu = process.cpuUsage(cpu0)
  return { wall: (performance.now() - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6 }
}

async function main (): Promise<void> {
  const sizeMb = Number(arg('size-mb', '256'))
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-bench-repl-'))
  const peers: Peer[] = []
  try {
    const data = path.join(root, 'data')
    await fs.mkdir(data)
    const files: string[] = []
    for (let i = 0; i * 32 < sizeMb; i++) {
      const f = path.join(data, `f${i}.bin`)
      const fh = await fs.open(f, 'w')
      for (let j = 0; j < 32; j++) await fh.write(crypto.randomBytes(1 << 20))
      await fh.close()
      files.push(f)
    }
    const mb = files.length * 32 * 1.048576
    const [a, b, c] = [await peer(path.join(root, 'a')), await peer(path.join(root, 'b')), await peer(path.join(root, 'c'))]
    peers.push(a, b, c)
    await b.node.dial(a.node.getMultiaddrs()[0])
    await c.node.dial(a.node.getMultiaddrs()[0])
    const { root: cid } = await capture({ blocks: a.blocks }, { peerId: a.node.peerId.toString(), name: 'a', sources: [{ name: 'data', path: data }] })

    const raw = await timed(async () => rawCopy(files, path.join(root, 'raw.out')))
    let report: { copies: number } = { copies: 0 }
    const repl = await timed(async () => {
      report = await a.replicator.replicate(a.node.peerId.toString(), cid, [a.node.peerId.toString(), b.node.peerId.toString()])
    })
    if (report.copies !== 2) throw new Error(`replication confirmed ${report.copies} copies`)

    const local = await timed(async () => restore({ blocks: a.blocks }, { root: cid, target: path.join(root, 'restore-local') }))
    const getter = new RemoteBlockGetter({ blocks: c.blocks, exchange: c.exchange }, { holders: [a.node.peerId.toString()] })
    const remote = await timed(async () => restore({ blocks: getter }, { root: cid, target: path.join(root, 'restore-remote') }))

    // both ends run in this process, so the CPU figures count the sender's and the receiver's work
    const line = (label: string, t: { wall: number, cpu: number }, extra = ''): string =>
      `${label.padEnd(35)}${t.wall.toFixed(2)} s  ${(mb / t.wall).toFixed(0).padStart(3)} MB/s  cpu ${t.cpu.toFixed(2)} s${extra}`
    console.log(`data: ${mb.toFixed(0)} MB in ${files.length} files`)
    console.log(line('raw TCP copy (loopback, fsync)', raw))
    console.log(line('replication to one holder', repl, `  (${(repl.wall / raw.wall).toFixed(2)}x the raw copy's time)`))
    console.log(line('restore from local disk', local))
    console.log(line('restore from a remote holder', remote, `  (${(remote.wall / local.wall).toFixed(2)}x local)`))
  } finally {
    for (const p of peers) {
      await p.replicator.stop()
      await p.exchange.stop()
      await p.node.stop()
    }
    await fs.rm(root, { recursive: true, force: true })
  }
}

main().catch(err => {
  console.error(`bench failed: ${String(err.message)}`)
  process.exitCode = 1
})
