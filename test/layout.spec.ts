// The house rules of src/, checked on the sources: folders import one way (no cycles, and the
// order README's Layout table gives), the composition root stays small, no file grows past 600 lines.
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const src = path.join(root, 'src')

/** README's Layout order: a folder may import only from folders before it */
const ORDER = ['util', 'config', 'envelope', 'node', 'membership', 'state', 'store', 'hooks', 'capture', 'wire', 'metadata', 'exchange', 'snapshot', 'apps', 'simulation', 'replication', 'restore', 'retention', 'audit', 'admin', 'cli']

async function sources (): Promise<Array<{ file: string, text: string }>> {
  const out: Array<{ file: string, text: string }> = []
  for (const e of await fs.readdir(src, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts')) continue
    const file = path.join(e.parentPath ?? (e as any).path, e.name)
    out.push({ file: path.relative(src, file), text: await fs.readFile(file, 'utf8') })
  }
  return out
}

/** folder -> folders it imports from */
function imports (files: Array<{ file: string, text: string }>): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>()
  for (const { file, text } of files) {
    const from = file.split(path.sep)[0]
    if (!file.includes(path.sep)) continue
    for (const m of text.matchAll(/from '\.\.\/([a-z]+)\/[^']*'/g)) {
      const to = m[1]
      if (to === from) continue
      const edges = graph.get(from) ?? new Map<string, string>()
      if (!edges.has(to)) edges.set(to, file)
      graph.set(from, edges)
    }
  }
  return graph
}

describe('layout of src/', () => {
  it('every folder imports only from folders upstream of it, so there is no cycle', async () => {
    const files = await sources()
    const graph = imports(files)
    assert.ok(graph.size > 10, 'the import graph was read')
    const folders = new Set(files.filter(f => f.file.includes(path.sep)).map(f => f.file.split(path.sep)[0]))
    assert.deepEqual([...folders].filter(f => !ORDER.includes(f)), [], 'a folder missing from the layout order (add it to README and here)')
    const wrong: string[] = []
    for (const [from, edges] of graph) {
      for (const [to, file] of edges) {
        if (ORDER.indexOf(to) >= ORDER.indexOf(from)) wrong.push(`${file} imports from ${to}/, which is downstream of ${from}/`)
      }
    }
    assert.deepEqual(wrong, [])
  })

  it('the check is live: an import against the order is caught', () => {
    const graph = imports([{ file: path.join('metadata', 'x.ts'), text: "import { a } from '../snapshot/index.js'" }])
    assert.equal(graph.get('metadata')?.get('snapshot'), path.join('metadata', 'x.ts'))
    assert.ok(ORDER.indexOf('snapshot') > ORDER.indexOf('metadata'))
  })

  it('the agent only composes (under 300 lines) and no source file is over 600 lines', async () => {
    const files = await sources()
    const agent = files.find(f => f.file === 'agent.ts')
    assert.ok(agent != null)
    assert.ok(agent.text.split('\n').length < 300, `src/agent.ts has ${agent.text.split('\n').length} lines`)
    const long = files.filter(f => f.text.split('\n').length > 600).map(f => `${f.file}: ${f.text.split('\n').length} lines`)
    assert.deepEqual(long, [])
  })
})
