// Checking a log: every line must parse, carry the next sequence number, name the hash of the line
// before it, be signed by this host's key, and have a signature that verifies. That catches an
// entry modified, deleted, inserted, reordered or re-signed with another key. A tail cut off leaves
// a chain that is whole, only shorter: that shows only against a head another member holds, which
// is compared with the entry at its sequence number.
import { GENESIS, hashLine, parseLine, verifyEntry, type AuditEntry } from './entry.js'
import { readLines, type LocatedLine } from './log.js'

export type AuditProblemKind = 'malformed' | 'sequence' | 'chain' | 'signer' | 'signature' | 'truncated' | 'head-mismatch' | 'missing-file' | 'partial-line'

export interface AuditProblem {
  kind: AuditProblemKind
  /** the file and 1-based line of the entry at fault (for a truncated log: its last entry) */
  file?: string
  line?: number
  /** the entry's sequence number, when it could be read */
  seq?: number
  message: string
}

/** A head of this log held elsewhere: what the holder saw last. */
export interface HeldHead {
  holder: string
  seq: number
  hash: string
}

export interface HeadCheck extends HeldHead {
  status: 'match' | 'ahead' | 'differs'
}

export interface LogVerifyReport {
  ok: boolean
  peerId: string
  files: string[]
  entries: number
  lastSeq: number
  lastHash: string
  /** the first problem, in log order */
  problem?: AuditProblem
  /** every problem found (at most 100), in log order */
  problems: AuditProblem[]
  heads: HeadCheck[]
}

const MAX_PROBLEMS = 100

/**
 * Verifies the log in `dir` as the log of `peerId`, against the heads other members hold for it.
 * Reads the files as they are; the caller keeps appends out meanwhile.
 */
export async function verifyLog (dir: string, peerId: string, heads: HeldHead[] = []): Promise<LogVerifyReport> {
  const { lines, files, partial, gaps } = await readLines(dir)
  /** problems with their position in the log, to put them in order */
  const found: Array<{ at: number, p: AuditProblem }> = []
  const add = (at: number, p: AuditProblem): void => { found.push({ at, p }) }
  for (const g of gaps) add(-1, { kind: 'missing-file', message: `log file ${String(g).padStart(6, '0')} is missing: the files must be numbered from 1 without a gap` })

  let prevHash = GENESIS
  let expected = 1
  /** seq -> where it lies and the hash of its line, for the head comparison */
  const bySeq = new Map<number, { l: LocatedLine, hash: string, at: number }>()
  for (const [at, l] of lines.entries()) {
    const hash = hashLine(l.text)
    const where = { file: l.file, line: l.line }
    let e: AuditEntry
    try {
      e = parseLine(l.text)
    } catch (err: any) {
      add(at, { kind: 'malformed', ...where, message: `${l.file} line ${l.line} is not an audit entry: ${String(err.message)}` })
      prevHash = hash
      expected++
      continue
    }
    const name = `${l.file} line ${l.line} (seq ${e.seq})`
    if (!bySeq.has(e.seq)) bySeq.set(e.seq, { l, hash, at })
    if (e.seq !== expected) {
      const why = e.seq > expected
        ? `seq ${e.seq} where ${expected} was expected: ${e.seq - expected === 1 ? `the entry with seq ${expected} is` : `entries ${expected} to ${e.seq - 1} are`} missing`
        : `seq ${e.seq} where ${expected} was expected: an entry inserted, repeated or moved`
      add(at, { kind: 'sequence', ...where, seq: e.seq, message: `${name}: ${why}` })
    } else if (e.prev !== prevHash) {
      add(at, { kind: 'chain', ...where, seq: e.seq, message: `${name}: names ${e.prev.slice(0, 12)}… as the hash of the entry before it, which hashes to ${prevHash.slice(0, 12)}…: the entry before it was changed, or this one moved` })
    } else if (e.signer !== peerId) {
      add(at, { kind: 'signer', ...where, seq: e.seq, message: `${name}: signed by ${e.signer}, not by this host's key ${peerId}` })
    } else {
      try {
        await verifyEntry(e)
      } catch (err: any) {
        add(at, { kind: 'signature', ...where, seq: e.seq, message: `${name}: the signature does not verify: the entry was changed after it was signed (${String(err.message)})` })
      }
    }
    prevHash = hash
    expected = e.seq + 1
  }
  if (partial != null) add(lines.length, { kind: 'partial-line', file: partial.file, line: partial.line, message: `${partial.file} line ${partial.line} is not terminated: a partial entry of ${Buffer.byteLength(partial.text)} bytes` })

  const last = lines[lines.length - 1]
  const lastSeq = expected - 1
  const checks: HeadCheck[] = []
  for (const h of heads) {
    const mine = bySeq.get(h.seq)
    if (h.seq > lastSeq) {
      checks.push({ ...h, status: 'ahead' })
      const end = last != null ? `${last.file} line ${last.line} (seq ${lastSeq})` : 'the log is empty'
      add(lines.length, {
        kind: 'truncated',
        ...(last != null ? { file: last.file, line: last.line, seq: lastSeq } : {}),
        message: `the log ends at ${end} but ${h.holder} holds a head of it at seq ${h.seq}: entries after seq ${lastSeq} were removed`
      })
    } else if (mine == null || mine.hash !== h.hash) {
      checks.push({ ...h, status: 'differs' })
      const where = mine != null ? { file: mine.l.file, line: mine.l.line } : {}
      add(mine?.at ?? lines.length, { kind: 'head-mismatch', ...where, seq: h.seq, message: `${mine != null ? `${mine.l.file} line ${mine.l.line} (seq ${h.seq})` : `seq ${h.seq}`} is not the entry ${h.holder} holds a head for (hash ${h.hash.slice(0, 12)}…): the log was rewritten from there on` })
    } else {
      checks.push({ ...h, status: 'match' })
    }
  }
  found.sort((a, b) => a.at - b.at)
  const problems = found.slice(0, MAX_PROBLEMS).map(f => f.p)
  return {
    ok: problems.length === 0,
    peerId,
    files,
    entries: lines.length,
    lastSeq,
    lastHash: last != null ? hashLine(last.text) : GENESIS,
    ...(problems.length > 0 ? { problem: problems[0] } : {}),
    problems,
    heads: checks
  }
}
