// `npm run demo`: three agents on 127.0.0.1; a snapshot started by a peer that is not the
// bootstrap node; one node's data restored on another; then that node killed and wiped and its data
// restored from its peers' copies; the bytes compared; every agent stopped.
import { execFile } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { BIN, LocalCluster, waitFor } from './cluster.js'

const exec = promisify(execFile)

async function snapmesh (socket: string, ...args: string[]): Promise<string> {
  const { stdout } = await exec(process.execPath, [BIN, '--socket', socket, ...args], { timeout: 120_000 })
  return stdout
}

async function fill (dir: string, seed: string): Promise<void> {
  await fs.mkdir(path.join(dir, 'db'), { recursive: true })
  await fs.writeFile(path.join(dir, 'README'), `data of ${seed}\n`)
  for (let i = 0; i < 20; i++) {
    const size = 1000 + (i * 7919) % 200_000
    const out = Buffer.alloc(size)
    for (let off = 0, n = 0; off < size; n++) off += crypto.createHash('sha256').update(`${seed}:${i}:${n}`).digest().copy(out, off)
    await fs.writeFile(path.join(dir, 'db', `part-${i}.dat`), out)
  }
  await fs.symlink('db/part-0.dat', path.join(dir, 'current'))
}

async function digestTree (root: string): Promise<string> {
  const h = crypto.createHash('sha256')
  const walk = async (rel: string): Promise<void> => {
    const abs = path.join(root, rel)
    const st = await fs.lstat(abs)
    if (st.isSymbolicLink()) h.update(`L ${rel} ${await fs.readlink(abs)}\n`)
    else if (st.isDirectory()) {
      h.update(`D ${rel} ${st.mode & 0o7777}\n`)
      for (const name of (await fs.readdir(abs)).sort()) await walk(path.join(rel, name))
    } else h.update(`F ${rel} ${st.mode & 0o7777} `).update(await fs.readFile(abs)).update('\n')
  }
  await walk('.')
  return h.digest('hex')
}

async function main (): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-demo-'))
  const cluster = new LocalCluster({ dir, agents: ['node1', 'node2', 'node3'], logToFiles: true })
  let ok = false
  try {
    for (const n of ['node1', 'node2', 'node3']) await fill(path.join(dir, n, 'files'), n)
    console.log(`starting 3 agents in ${dir} (node1 is the bootstrap node)`)
    await cluster.start()
    for (const a of cluster.agents) {
      await waitFor(`${a.name} to connect to the others`, async () => (await a.client.peers()).filter(p => p.connected).length >= 2, 30_000)
    }
    const [node1, node2, node3] = cluster.agents
    console.log('node3 starts a snapshot...')
    const snap = JSON.parse(await snapmesh(node3.socket, 'snapshot', 'create', '--tag', 'demo', '--wait', '--json'))
    console.log(`snapshot ${String(snap.id).slice(0, 8)}: ${String(snap.status)}, ${String(snap.participants.length)} participants`)
    console.log(await snapmesh(node1.socket, 'snapshot', 'list'))
    const target = path.join(dir, 'restored-node1-on-node2')
    console.log(`node2 restores node1's data into ${target}...`)
    const result = JSON.parse(await snapmesh(node2.socket, 'restore', String(snap.id).slice(0, 8), '--node', 'node1', '--target', target, '--json'))
    const before = await digestTree(node1.sourcesDir)
    const after = await digestTree(path.join(target, 'files'))
    // disaster: node1 is killed and its disk wiped; node3 restores it from the copies its peers hold
    await waitFor('node1 to confirm two copies of its data', async () => {
      const own = (await node1.client.getSnapshot(String(snap.id))).participants.find(p => p.peerId === node1.peerId)
      return own?.copies === 2
    }, 60_000)
    console.log('node1 is killed (-9) and its data folder wiped; node3 restores it from the copies on its peers...')
    await node1.kill()
    await fs.rm(path.join(node1.dir, 'data'), { recursive: true, force: true })
    const target2 = path.join(dir, 'restored-node1-on-node3')
    const result2 = JSON.parse(await snapmesh(node3.socket, 'restore', String(snap.id).slice(0, 8), '--node', node1.peerId, '--target', target2, '--json'))
    const after2 = await digestTree(path.join(target2, 'files'))
    ok = snap.status === 'complete' && before === after && before === after2
    console.log('\nsummary')
    console.log(`  snapshot     ${String(snap.id)} (${String(snap.status)})`)
    console.log(`  participants ${snap.participants.map((p: any) => `${String(p.name)}:${String(p.status)}`).join(', ')}`)
    console.log(`  restored     ${String(result.files)} files, ${String(result.bytes)} bytes, ${String(result.blocksFetched)} blocks fetched from peers`)
    console.log(`  node1 tree   ${before}`)
    console.log(`  restored     ${after}`)
    console.log(`  after loss   ${after2} (${String(result2.blocksFetched)} blocks fetched from the copies on node2)`)
    console.log(`  result       ${ok ? 'identical' : 'DIFFERENT'}`)
  } finally {
    await cluster.stop()
    console.log('all agents stopped')
    if (ok) await fs.rm(dir, { recursive: true, force: true })
    else console.log(`logs kept in ${dir}`)
  }
  if (!ok) process.exitCode = 1
}

main().catch(err => {
  console.error(`demo failed: ${String(err.message)}`)
  process.exitCode = 1
})
