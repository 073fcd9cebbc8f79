// `npm run bench [-- --size-mb 1024] [-- --keep]`: generates a seeded data set (thousands of small
// files, a few large ones, some duplicates), then measures in the same run
//   - snapmesh: first snapshot, no-change snapshot, restore (MB/s, the agent's peak RSS per step)
//   - baseline: `tar -cf - DIR | openssl dgst -sha256` over the same data
//   - restic (when installed): backup, no-change backup, restore of the same data
// and prints the ratios. Figures are wall-clock on this machine; rerun for variance.
import { execFile, spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { BIN, LocalCluster } from './cluster.js'

const execP = promisify(execFile)

function arg (name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : def
}

/** a seeded pseudo-random byte stream (sha256 in counter mode) */
class SeededStream {
  private counter = 0
  constructor (private readonly seed: string) {}
  bytes (n: number): Buffer {
    const out = Buffer.allocUnsafe(n)
    let off = 0
    while (off < n) off += crypto.createHash('sha256').update(`${this.seed}:${this.counter++}`).digest().copy(out, off)
    return out
  }

  int (lo: number, hi: number): number {
    return lo + this.bytes(4).readUInt32BE(0) % (hi - lo + 1)
  }
}

async function writeLarge (file: string, size: number, rnd: SeededStream): Promise<void> {
  const fh = await fs.open(file, 'w')
  try {
    for (let off = 0; off < size; off += 4 << 20) await fh.write(rnd.bytes(Math.min(4 << 20, size - off)))
  } finally { await fh.close() }
}

/** ~sizeMb MB: 2000 small files of 1–64 KiB, large files of 16–64 MiB, one 32 MiB file and 3 copies */
async function generate (dir: string, sizeMb: number): Promise<number> {
  const rnd = new SeededStream('snapmesh-bench-v1')
  let total = 0
  for (let i = 0; i < 2000; i++) {
    const d = path.join(dir, 'small', String(i % 40))
    await fs.mkdir(d, { recursive: true })
    const size = rnd.int(1024, 64 * 1024)
    await fs.writeFile(path.join(d, `f${i}.dat`), rnd.bytes(size))
    total += size
  }
  await fs.mkdir(path.join(dir, 'dup'), { recursive: true })
  const dupSize = Math.min(32 << 20, Math.floor(sizeMb * 1e6 / 32))
  await writeLarge(path.join(dir, 'dup', 'orig.bin'), dupSize, rnd)
  for (let c = 1; c <= 3; c++) await fs.copyFile(path.join(dir, 'dup', 'orig.bin'), path.join(dir, 'dup', `copy${c}.bin`))
  total += dupSize * 4
  await fs.mkdir(path.join(dir, 'large'), { recursive: true })
  for (let i = 0; total < sizeMb * 1e6; i++) {
    const size = Math.min(rnd.int(16 << 20, 64 << 20), Math.max(1 << 20, sizeMb * 1e6 - total))
    await writeLarge(path.join(dir, 'large', `l${i}.bin`), size, rnd)
    total += size
  }
  return total
}

async function peakRssMb (pid: number): Promise<number> {
  const s = await fs.readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024
}

async function resetPeak (pid: number): Promise<void> {
  await fs.writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => {})
}

/** runs a command, returning wall seconds and the peak RSS seen while it ran */
async function timed (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, shell = false): Promise<{ seconds: number, rssMb: number, stdout: string }> {
  const t0 = performance.now()
  const child = spawn(cmd, args, { env, shell, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', d => { stdout += String(d) })
  child.stderr.on('data', d => { stderr += String(d) })
  let rss = 0
  const poll = setInterval(() => { if (child.pid != null) peakRssMb(child.pid).then(v => { rss = Math.max(rss, v) }, () => {}) }, 50)
  const code: number = await new Promise(resolve => child.on('close', c => { resolve(c ?? 1) }))
  clearInterval(poll)
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${code}): ${stderr.trim()}`)
  return { seconds: (performance.now() - t0) / 1000, rssMb: rss, stdout }
}

async function hasCommand (name: string): Promise<boolean> {
  try { await execP('sh', ['-c', `command -v ${name}`]); return true } catch { return false }
}

interface Row { tool: string, step: string, seconds: number, mbps?: number, rssMb?: number }

async function main (): Promise<void> {
  const sizeMb = Number(arg('size-mb', '1024'))
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-bench-'))
  const data = path.join(root, 'data')
  const rows: Row[] = []
  const cluster = new LocalCluster({ dir: root, agents: [], deadlineSeconds: 3600 })
  try {
    console.log(`generating ~${sizeMb} MB in ${data} ...`)
    const total = await generate(data, sizeMb)
    const mb = total / 1e6
    console.log(`data set: ${mb.toFixed(0)} MB`)

    const tar = await timed('sh', ['-c', `tar -cf - -C '${data}' . | openssl dgst -sha256`])
    rows.push({ tool: 'tar | sha256', step: 'read + hash', seconds: tar.seconds, mbps: mb / tar.seconds })

    const agent = await cluster.add({ name: 'bench', sources: [{ name: 'data', path: data }] })
    const pid = agent.proc?.pid as number
    const snap = async (step: string): Promise<void> => {
      await resetPeak(pid)
      const t0 = performance.now()
      const { stdout } = await execP(process.execPath, [BIN, '--socket', agent.socket, 'snapshot', 'create', '--wait', '--timeout', '3600', '--json'], { maxBuffer: 64 << 20 })
      const seconds = (performance.now() - t0) / 1000
      const view = JSON.parse(stdout)
      if (view.status !== 'complete') throw new Error(`snapshot ended ${String(view.status)}`)
      rows.push({ tool: 'snapmesh', step, seconds, mbps: mb / seconds, rssMb: await peakRssMb(pid) })
    }
    await snap('first snapshot')
    await snap('no-change snapshot')
    await resetPeak(pid)
    const target = path.join(root, 'restore-snapmesh')
    const list = JSON.parse((await execP(process.execPath, [BIN, '--socket', agent.socket, 'snapshot', 'list', '--json'])).stdout)
    const t0 = performance.now()
    await execP(process.execPath, [BIN, '--socket', agent.socket, 'restore', list[0].id, '--target', target, '--json'], { maxBuffer: 64 << 20 })
    const rs = (performance.now() - t0) / 1000
    rows.push({ tool: 'snapmesh', step: 'restore', seconds: rs, mbps: mb / rs, rssMb: await peakRssMb(pid) })
    await fs.rm(target, { recursive: true, force: true })
    await agent.stop()

    if (await hasCommand('restic')) {
      const env = { ...process.env, RESTIC_REPOSITORY: path.join(root, 'restic'), RESTIC_PASSWORD: 'bench' }
      await timed('restic', ['init', '-q'], env)
      const b1 = await timed('restic', ['backup', '-q', data], env)
      rows.push({ tool: 'restic', step: 'first backup', seconds: b1.seconds, mbps: mb / b1.seconds, rssMb: b1.rssMb })
      const b2 = await timed('restic', ['backup', '-q', data], env)
      rows.push({ tool: 'restic', step: 'no-change backup', seconds: b2.seconds, mbps: mb / b2.seconds, rssMb: b2.rssMb })
      const r = await timed('restic', ['restore', 'latest', '-q', '--target', path.join(root, 'restore-restic')], env)
      rows.push({ tool: 'restic', step: 'restore', seconds: r.seconds, mbps: mb / r.seconds, rssMb: r.rssMb })
    } else {
      console.log('restic is not installed (Debian package `restic`): its rows are left out')
    }
  } finally {
    await cluster.stop()
    if (!process.argv.includes('--keep')) await fs.rm(root, { recursive: true, force: true })
  }

  console.log('\n' + ['tool', 'step', 'seconds', 'MB/s', 'peak RSS MiB'].map((h, i) => h.padEnd(i < 2 ? 20 : 14)).join(''))
  for (const r of rows) {
    console.log([r.tool.padEnd(20), r.step.padEnd(20), r.seconds.toFixed(2).padEnd(14), (r.mbps?.toFixed(0) ?? '').padEnd(14), r.rssMb?.toFixed(0) ?? ''].join(''))
  }
  const get = (tool: string, step: string): Row | undefined => rows.find(r => r.tool === tool && r.step === step)
  const tarRow = get('tar | sha256', 'read + hash')
  console.log('\nratios (time of snapmesh / time of the other; below 1 means snapmesh is faster)')
  for (const [mine, other] of [['first snapshot', 'first backup'], ['no-change snapshot', 'no-change backup'], ['restore', 'restore']]) {
    const a = get('snapmesh', mine)
    const b = get('restic', other)
    if (a != null && b != null) console.log(`  ${mine.padEnd(20)} vs restic ${other.padEnd(18)} ${(a.seconds / b.seconds).toFixed(2)}`)
  }
  const first = get('snapmesh', 'first snapshot')
  if (first != null && tarRow != null) console.log(`  ${'first snapshot'.padEnd(20)} vs tar | sha256${''.padEnd(12)} ${(first.seconds / tarRow.seconds).toFixed(2)}`)
}

main().catch(err => {
  console.error(`bench failed: ${String(err.message)}`)
  process.exitCode = 1
})
