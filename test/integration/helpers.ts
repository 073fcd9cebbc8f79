import { execFile } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { BIN } from '../../scripts/cluster.js'

const exec = promisify(execFile)

export async function tempDir (prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `snapmesh-${prefix}-`))
}

/** runs the snapmesh CLI; resolves with exit code, stdout and stderr (never rejects on exit code) */
export async function cli (args: string[], options: { timeoutMs?: number } = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { timeout: options.timeoutMs ?? 60_000 })
    return { code: 0, stdout, stderr }
  } catch (err: any) {
    if (typeof err.code !== 'number') throw err
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' }
  }
}

/** fills a folder with a small tree: files of several sizes, nested dirs, a symlink, an empty file and dir */
export async function makeTree (dir: string, seed: string): Promise<void> {
  const rnd = (n: number, s: string): Buffer => {
    const out = Buffer.alloc(n)
    let off = 0
    let i = 0
    while (off < n) {
      const h = crypto.createHash('sha256').update(`${seed}/${s}/${i++}`).digest()
      off += h.copy(out, off)
    }
    return out
  }
  await fs.mkdir(path.join(dir, 'docs', 'deep', 'er'), { recursive: true })
  await fs.mkdir(path.join(dir, 'empty'), { recursive: true })
  await fs.writeFile(path.join(dir, 'hello.txt'), `hello from ${seed}\n`)
  await fs.writeFile(path.join(dir, 'docs', 'a.bin'), rnd(300_000, 'a'))
  await fs.writeFile(path.join(dir, 'docs', 'deep', 'b.bin'), rnd(3_000_000, 'b'))
  await fs.writeFile(path.join(dir, 'docs', 'deep', 'er', 'c.txt'), 'c'.repeat(1000))
  await fs.writeFile(path.join(dir, 'docs', 'empty.txt'), '')
  await fs.chmod(path.join(dir, 'docs', 'a.bin'), 0o640)
  await fs.writeFile(path.join(dir, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 })
  await fs.symlink('docs/deep/b.bin', path.join(dir, 'link-to-b'))
  const t = new Date('2024-02-03T04:05:06.789Z')
  await fs.utimes(path.join(dir, 'hello.txt'), t, t)
  await fs.utimes(path.join(dir, 'docs', 'deep'), t, t)
}

export interface TreeEntry { path: string, kind: string, mode: number, mtimeMs?: number, size?: number, sha256?: string, target?: string }

/** a listing of a tree that two equal trees share exactly: kind, mode, mtime, content hash, link target */
export async function describeTree (root: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = []
  const walk = async (rel: string): Promise<void> => {
    const abs = path.join(root, rel)
    const st = await fs.lstat(abs)
    if (st.isSymbolicLink()) {
      out.push({ path: rel, kind: 'symlink', mode: 0, target: await fs.readlink(abs) })
    } else if (st.isDirectory()) {
      out.push({ path: rel, kind: 'dir', mode: st.mode & 0o7777, mtimeMs: Math.floor(st.mtimeMs) })
      for (const name of (await fs.readdir(abs)).sort()) await walk(path.join(rel, name))
    } else {
      const sha256 = crypto.createHash('sha256').update(await fs.readFile(abs)).digest('hex')
      out.push({ path: rel, kind: 'file', mode: st.mode & 0o7777, mtimeMs: Math.floor(st.mtimeMs), size: st.size, sha256 })
    }
  }
  await walk('.')
  return out
}
