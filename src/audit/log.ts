// The audit log on disk: JSON lines in numbered files under <dataDir>/audit/ (audit-000001.jsonl,
// audit-000002.jsonl, ...). Appends are serialised, each one written and fsynced before the next;
// a file that would grow past maxFileBytes is closed and the next one started, and the chain goes on
// across files (the first entry of a file names the hash of the last line of the one before).
import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import { GENESIS, hashLine, normaliseData, parseLine, sealEntry, type AuditAction, type AuditEntry, type JsonValue } from './entry.js'
import { AuditLogError } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

const log = logger('snapmesh:audit')

const FILE = /^audit-(\d{6})\.jsonl$/
export const DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024

export function fileName (n: number): string {
  return `audit-${String(n).padStart(6, '0')}.jsonl`
}

/** the numbers of the log files in `dir`, ascending */
export async function logFiles (dir: string): Promise<number[]> {
  let names: string[]
  try {
    names = await fs.readdir(dir)
  } catch (err: any) {
    if (err.code === 'ENOENT') return []
    throw err
  }
  return names.map(n => FILE.exec(n)).filter((m): m is RegExpExecArray => m != null).map(m => Number(m[1])).sort((a, b) => a - b)
}

/** One line of a log file, where it lies. */
export interface LocatedLine {
  file: string
  /** 1-based line number in its file */
  line: number
  text: string
}

/** Every line of every log file, in order; a last line without its newline is returned too, flagged. */
export async function readLines (dir: string): Promise<{ lines: LocatedLine[], files: string[], partial?: LocatedLine, gaps: number[] }> {
  const numbers = await logFiles(dir)
  const lines: LocatedLine[] = []
  const gaps: number[] = []
  let partial: LocatedLine | undefined
  numbers.forEach((n, i) => { if (i > 0 && n !== numbers[i - 1] + 1) for (let g = numbers[i - 1] + 1; g < n; g++) gaps.push(g) })
  if (numbers.length > 0 && numbers[0] !== 1) for (let g = 1; g < numbers[0]; g++) gaps.push(g)
  for (const n of numbers) {
    const file = fileName(n)
    const text = await fs.readFile(path.join(dir, file), 'utf8')
    const parts = text.split('\n')
    const last = parts.pop() ?? ''
    parts.forEach((t, i) => lines.push({ file, line: i + 1, text: t }))
    if (last !== '') partial = { file, line: parts.length + 1, text: last }
  }
  return { lines, files: numbers.map(fileName), partial, gaps }
}

async function fsyncDir (dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

export interface AuditLogInit {
  /** the log's folder, <dataDir>/audit */
  dir: string
  /** a file is not let grow past this many bytes; default 4 MiB */
  maxFileBytes?: number
  clock?: () => number
}

/** The log head: where the log ends. */
export interface LogHead {
  seq: number
  /** hash of the last line (GENESIS while empty) */
  hash: string
}

/** An entry as appended or shown, with where it lies. */
export interface LocatedEntry extends AuditEntry {
  file: string
  line: number
}

export class AuditLog {
  private readonly dir: string
  private readonly maxFileBytes: number
  private readonly clock: () => number
  private readonly privateKey: PrivateKey
  private fh?: fs.FileHandle
  private fileNo = 1
  private fileBytes = 0
  private fileLines = 0
  private seq = 0
  private hash = GENESIS
  /** the queue every append and exclusive read waits its turn in */
  private tail: Promise<unknown> = Promise.resolve()
  private listeners: Array<(head: LogHead) => void> = []

  constructor (privateKey: PrivateKey, init: AuditLogInit) {
    this.privateKey = privateKey
    this.dir = init.dir
    this.maxFileBytes = init.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES
    this.clock = init.clock ?? Date.now
  }

  get folder (): string {
    return this.dir
  }

  head (): LogHead {
    return { seq: this.seq, hash: this.hash }
  }

  /** called after every append with the new head */
  onAppend (fn: (head: LogHead) => void): void {
    this.listeners.push(fn)
  }

  /**
   * Opens the log where it ends: the last line of the last file gives the sequence number and the
   * hash the next entry chains to. A partial last line (a crash during a write) is cut off and the
   * cut is itself logged.
   */
  async start (): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 })
    const numbers = await logFiles(this.dir)
    this.fileNo = numbers.length > 0 ? numbers[numbers.length - 1] : 1
    let recovered: { file: string, bytes: number } | undefined
    for (let i = numbers.length - 1; i >= 0; i--) {
      const file = path.join(this.dir, fileName(numbers[i]))
      const text = await fs.readFile(file, 'utf8')
      const end = text.lastIndexOf('\n') + 1
      if (end < text.length && i === numbers.length - 1) {
        recovered = { file: fileName(numbers[i]), bytes: Buffer.byteLength(text.slice(end)) }
        await fs.truncate(file, Buffer.byteLength(text.slice(0, end)))
      }
      const lines = text.slice(0, end).split('\n').slice(0, -1)
      if (i === numbers.length - 1) {
        this.fileBytes = Buffer.byteLength(text.slice(0, end))
        this.fileLines = lines.length
      }
      if (lines.length === 0) continue
      const last = lines[lines.length - 1]
      this.hash = hashLine(last)
      this.seq = lastSeq(lines)
      break
    }
    this.fh = await fs.open(path.join(this.dir, fileName(this.fileNo)), 'a', 0o600)
    if (numbers.length === 0) await fsyncDir(this.dir)
    if (recovered != null) {
      log.error('audit log %s ended in a partial line of %d bytes: cut off', recovered.file, recovered.bytes)
      await this.append('log-recovered', recovered)
    }
  }

  async stop (): Promise<void> {
    await this.exclusive(async () => {
      await this.fh?.close()
      this.fh = undefined
    })
  }

  /** Runs `fn` when no append is under way, and holds appends back until it is done. */
  async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn)
    this.tail = run.catch(() => {})
    return run
  }

  /** Appends one entry, durably (written and fsynced) before the promise resolves. */
  async append (action: AuditAction, data: object): Promise<LocatedEntry> {
    return this.exclusive(async () => {
      if (this.fh == null) throw new AuditLogError('the audit log is not open')
      const body = { seq: this.seq + 1, time: new Date(this.clock()).toISOString(), prev: this.hash, action, data: normaliseData(data) as { [key: string]: JsonValue } }
      const { entry, line } = await sealEntry(this.privateKey, body)
      const bytes = Buffer.from(line + '\n')
      if (this.fileBytes > 0 && this.fileBytes + bytes.length > this.maxFileBytes) await this.rotate()
      await this.fh.write(bytes)
      await this.fh.sync()
      this.fileBytes += bytes.length
      this.fileLines++
      this.seq = body.seq
      this.hash = hashLine(line)
      const head = this.head()
      for (const fn of this.listeners) {
        try { fn(head) } catch {}
      }
      return { ...entry, file: fileName(this.fileNo), line: this.fileLines }
    })
  }

  private async rotate (): Promise<void> {
    await this.fh?.close()
    this.fileNo++
    this.fh = await fs.open(path.join(this.dir, fileName(this.fileNo)), 'a', 0o600)
    await fsyncDir(this.dir)
    this.fileBytes = 0
    this.fileLines = 0
    log('audit log continues in %s', fileName(this.fileNo))
  }

  /** Entries from `since` (ms) on, oldest first, at most `limit` (the newest kept); lines that do not parse are skipped. */
  async entries (options: { since?: number, limit?: number } = {}): Promise<LocatedEntry[]> {
    const { lines } = await this.exclusive(async () => readLines(this.dir))
    const out: LocatedEntry[] = []
    for (const l of lines) {
      let e: AuditEntry
      try { e = parseLine(l.text) } catch { continue }
      if (options.since != null && Date.parse(e.time) < options.since) continue
      out.push({ ...e, file: l.file, line: l.line })
    }
    return options.limit != null && out.length > options.limit ? out.slice(out.length - options.limit) : out
  }
}

/** the sequence number of the last line, from the last one that parses and the lines after it */
function lastSeq (lines: string[]): number {
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return parseLine(lines[i]).seq + (lines.length - 1 - i)
    } catch {}
  }
  return lines.length
}
