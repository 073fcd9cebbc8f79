import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { AuditLog, GENESIS, fileName, hashLine, parseLine, sealEntry, verifyLog, type AuditProblemKind, type HeldHead } from '../../src/audit/index.js'
import { peers, type Peer } from '../snapshot/fixtures.js'

async function tempDir (): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-audit-'))
}

/** a log of `n` entries in files of at most `maxFileBytes` */
async function writeLog (dir: string, host: Peer, n: number, maxFileBytes = 1500): Promise<AuditLog> {
  let t = Date.parse('2026-12-04T00:00:00Z')
  const log = new AuditLog(host.key, { dir, maxFileBytes, clock: () => (t += 1000) })
  await log.start()
  for (let i = 1; i <= n; i++) await log.append(i % 3 === 0 ? 'restore' : 'admin', { route: 'POST /v1/restore', params: { snapshot: `s${i}`, target: '/tmp/x' }, outcome: 'ok' })
  return log
}

/** every line of the log, as [file, lines] in file order */
async function readAll (dir: string): Promise<Array<[string, string[]]>> {
  const names = (await fs.readdir(dir)).filter(n => n.endsWith('.jsonl')).sort()
  return Promise.all(names.map(async n => [n, (await fs.readFile(path.join(dir, n), 'utf8')).split('\n').slice(0, -1)] as [string, string[]]))
}

async function writeAll (dir: string, files: Array<[string, string[]]>): Promise<void> {
  for (const [n, lines] of files) await fs.writeFile(path.join(dir, n), lines.map(l => l + '\n').join(''))
}

/** copies the clean log to a new folder and returns it */
async function copy (from: string): Promise<string> {
  const to = await tempDir()
  await fs.cp(from, to, { recursive: true })
  return to
}

describe('audit / the log', () => {
  let host: Peer
  let other: Peer
  let clean: string
  let log: AuditLog

  before(async () => {
    [host, other] = await peers(2)
    clean = await tempDir()
    log = await writeLog(clean, host, 12)
    await log.stop()
  })

  after(async () => {
    await fs.rm(clean, { recursive: true, force: true })
  })

  it('appends chained, signed entries and rotates by size into numbered files, the chain unbroken across them', async () => {
    const files = await readAll(clean)
    assert.ok(files.length >= 3, `rotated into ${files.length} files`)
    assert.deepEqual(files.map(f => f[0]), files.map((_, i) => fileName(i + 1)))
    let prev = GENESIS
    let seq = 0
    for (const [name, lines] of files) {
      const bytes = (await fs.stat(path.join(clean, name))).size
      assert.ok(bytes <= 1500 || lines.length === 1, `${name} is ${bytes} bytes`)
      for (const l of lines) {
        const e = parseLine(l)
        assert.equal(e.seq, ++seq)
        assert.equal(e.prev, prev)
        assert.equal(e.signer, host.id)
        prev = hashLine(l)
      }
    }
    assert.equal(seq, 12)
  })

  it('an untouched log verifies', async () => {
    const r = await verifyLog(clean, host.id)
    assert.equal(r.ok, true, JSON.stringify(r.problem))
    assert.equal(r.entries, 12)
    assert.equal(r.lastSeq, 12)
    assert.deepEqual(r.problems, [])
  })

  it('reopened, the log continues the chain where it ended (and still verifies)', async () => {
    const dir = await copy(clean)
    const again = new AuditLog(host.key, { dir, maxFileBytes: 1500 })
    await again.start()
    assert.equal(again.head().seq, 12)
    const e = await again.append('prune', { outcome: 'ok' })
    assert.equal(e.seq, 13)
    await again.stop()
    assert.equal((await verifyLog(dir, host.id)).ok, true)
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('appends at once are serialised: every sequence number once, in order', async () => {
    const dir = await tempDir()
    const l = new AuditLog(host.key, { dir, maxFileBytes: 4000 })
    await l.start()
    const all = await Promise.all(Array.from({ length: 20 }, async (_, i) => l.append('admin', { i })))
    assert.deepEqual(all.map(e => e.seq).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1))
    await l.stop()
    assert.equal((await verifyLog(dir, host.id)).ok, true)
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('a partial last line (a crash during a write) is cut off at start, and the cut is logged', async () => {
    const dir = await copy(clean)
    const files = await readAll(dir)
    const [last] = files[files.length - 1]
    await fs.appendFile(path.join(dir, last), '{"seq":13,"ti')
    const before = await verifyLog(dir, host.id)
    assert.equal(before.problem?.kind, 'partial-line')
    const again = new AuditLog(host.key, { dir, maxFileBytes: 1500 })
    await again.start()
    await again.stop()
    const r = await verifyLog(dir, host.id)
    assert.equal(r.ok, true, JSON.stringify(r.problem))
    const entries = (await readAll(dir)).flatMap(f => f[1]).map(parseLine)
    assert.equal(entries[entries.length - 1].action, 'log-recovered')
    await fs.rm(dir, { recursive: true, force: true })
  })

  describe('tampering is caught, naming the first bad entry', () => {
    /** tampers with a copy of the clean log, verifies the copy and the clean log in the same run */
    async function tampered (change: (files: Array<[string, string[]]>) => Promise<void> | void, heads: HeldHead[] = []): Promise<Awaited<ReturnType<typeof verifyLog>>> {
      const dir = await copy(clean)
      const files = await readAll(dir)
      await change(files)
      // files are rewritten as changed (a file emptied stays, empty)
      await writeAll(dir, files)
      const r = await verifyLog(dir, host.id, heads)
      const control = await verifyLog(clean, host.id, heads.filter(h => h.seq <= 12))
      assert.equal(control.ok, true, `the clean log still verifies: ${JSON.stringify(control.problem)}`)
      await fs.rm(dir, { recursive: true, force: true })
      return r
    }
    /** file and line of the entry with `seq` in the clean log */
    async function at (seq: number): Promise<{ file: string, line: number, text: string }> {
      for (const [file, lines] of await readAll(clean)) {
        const i = lines.findIndex(l => parseLine(l).seq === seq)
        if (i >= 0) return { file, line: i + 1, text: lines[i] }
      }
      throw new Error(`no entry ${seq}`)
    }
    function where (files: Array<[string, string[]]>, file: string): string[] {
      const f = files.find(x => x[0] === file)
      assert.ok(f != null)
      return f[1]
    }
    function expect (r: Awaited<ReturnType<typeof verifyLog>>, kind: AuditProblemKind, place: { file: string, line: number }, seq: number | undefined, message: RegExp): void {
      assert.equal(r.ok, false)
      assert.equal(r.problem?.kind, kind, JSON.stringify(r.problem))
      assert.equal(r.problem?.file, place.file)
      assert.equal(r.problem?.line, place.line)
      assert.equal(r.problem?.seq, seq)
      assert.match(r.problem?.message ?? '', message)
    }

    it('an entry modified', async () => {
      const p = await at(5)
      const r = await tampered(files => {
        const lines = where(files, p.file)
        lines[p.line - 1] = lines[p.line - 1].replace('"outcome":"ok"', '"outcome":"ERR_DENIED"')
      })
      expect(r, 'signature', p, 5, /seq 5\).*signature does not verify/)
    })

    it('an entry deleted', async () => {
      const p = await at(6)
      const next = await at(7)
      const r = await tampered(files => {
        where(files, p.file).splice(p.line - 1, 1)
      })
      // the entry after the gap is at the deleted one's place when both were in one file
      const place = next.file === p.file ? p : next
      expect(r, 'sequence', place, 7, /seq 7 where 6 was expected: the entry with seq 6 is missing/)
    })

    it('an entry inserted (a forged one, chained and numbered right, but not signed by this host)', async () => {
      const p = await at(4)
      const r = await tampered(async files => {
        const lines = where(files, p.file)
        const forged = await sealEntry(other.key, { seq: 5, time: new Date().toISOString(), prev: hashLine(p.text), action: 'admin', data: { route: 'GET /v1/status', outcome: 'ok' } })
        lines.splice(p.line, 0, forged.line)
      })
      expect(r, 'signer', { file: p.file, line: p.line + 1 }, 5, new RegExp(`signed by ${other.id}, not by this host's key`))
    })

    it('entries reordered', async () => {
      const a = await at(8)
      const b = await at(9)
      assert.equal(a.file, b.file, 'the two entries share a file')
      const r = await tampered(files => {
        const lines = where(files, a.file);
        [lines[a.line - 1], lines[b.line - 1]] = [lines[b.line - 1], lines[a.line - 1]]
      })
      expect(r, 'sequence', a, 9, /seq 9 where 8 was expected/)
    })

    it('an entry re-signed with another key', async () => {
      const p = await at(3)
      const r = await tampered(async files => {
        const e = parseLine(p.text)
        const resigned = await sealEntry(other.key, { seq: e.seq, time: e.time, prev: e.prev, action: e.action, data: { ...e.data, outcome: 'ERR_DENIED' } })
        where(files, p.file)[p.line - 1] = resigned.line
      })
      expect(r, 'signer', p, 3, /signed by .* not by this host's key/)
    })

    it('an entry re-signed with another key and relabelled as this host\'s', async () => {
      const p = await at(3)
      const r = await tampered(async files => {
        const e = parseLine(p.text)
        const resigned = JSON.parse((await sealEntry(other.key, { seq: e.seq, time: e.time, prev: e.prev, action: e.action, data: e.data })).line)
        where(files, p.file)[p.line - 1] = JSON.stringify({ ...resigned, signer: host.id })
      })
      expect(r, 'signature', p, 3, /signature does not verify/)
    })

    it('the tail cut off: whole, only shorter, so it verifies alone, and fails against a head held elsewhere', async () => {
      const p = await at(10)
      const cut = (files: Array<[string, string[]]>): void => {
        for (const f of files) f[1] = f[1].filter(l => parseLine(l).seq <= 10)
      }
      const alone = await tampered(cut)
      assert.equal(alone.ok, true, 'a shorter chain is a valid chain')
      assert.equal(alone.lastSeq, 10)
      const held: HeldHead = { holder: other.id, seq: 12, hash: hashLine((await at(12)).text) }
      const r = await tampered(cut, [held])
      expect(r, 'truncated', p, 10, new RegExp(`ends at ${p.file} line ${p.line} \\(seq 10\\) but ${other.id} holds a head of it at seq 12`))
      assert.deepEqual(r.heads.map(h => h.status), ['ahead'])
      // and a head the log still reaches matches
      const matching = await verifyLog(clean, host.id, [held])
      assert.deepEqual(matching.heads.map(h => h.status), ['match'])
    })

    it('a log rewritten from some entry on (by the host\'s own key) differs from the head held for it', async () => {
      const p = await at(11)
      const held: HeldHead = { holder: other.id, seq: 11, hash: hashLine(p.text) }
      const r = await tampered(async files => {
        const e = parseLine(p.text)
        const rewritten = await sealEntry(host.key, { ...e, data: { ...e.data, outcome: 'ERR_DENIED' } })
        where(files, p.file)[p.line - 1] = rewritten.line
        // the entry after it is re-chained and re-signed too, so the chain itself is whole
        const n = await at(12)
        const e12 = parseLine(n.text)
        where(files, n.file)[n.line - 1] = (await sealEntry(host.key, { ...e12, prev: hashLine(rewritten.line) })).line
      }, [held])
      expect(r, 'head-mismatch', p, 11, /is not the entry .* holds a head for/)
    })

    it('a whole file deleted', async () => {
      const dir = await copy(clean)
      await fs.rm(path.join(dir, fileName(2)))
      const r = await verifyLog(dir, host.id)
      assert.equal(r.ok, false)
      assert.equal(r.problem?.kind, 'missing-file')
      assert.match(r.problems[1]?.message ?? '', /where \d+ was expected/)
      await fs.rm(dir, { recursive: true, force: true })
    })
  })
})
