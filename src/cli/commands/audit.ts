import { Command, InvalidArgumentError } from 'commander'
import { EXIT_INCOMPLETE, client, print, printJson, type GlobalOptions } from '../context.js'
import { parseSpan } from './forget.js'
import type { AuditEntryView, AuditHeadView, AuditVerifyView } from '../../admin/api.js'

/** an ISO time, or a span back from now (`90m`, `2d`) */
export function parseSince (v: string, now = Date.now()): string {
  if (/^(\d+[smhdwy])+$/.test(v)) return new Date(now - parseSpan(v) * 1000).toISOString()
  const t = Date.parse(v)
  if (Number.isNaN(t)) throw new InvalidArgumentError('must be an ISO time (2026-12-04T03:00:00Z) or a span back from now (90m, 2d)')
  return new Date(t).toISOString()
}

function positive (v: string): number {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of 1 or more')
  return n
}

/** what an entry did, in a few words */
function summary (e: AuditEntryView): string {
  const d = e.data
  if (typeof d.route === 'string') {
    const params = d.params != null ? ` ${JSON.stringify(d.params)}` : ''
    return `${d.route}${params} -> ${String(d.outcome)}`
  }
  return JSON.stringify(d)
}

export function describeEntries (entries: AuditEntryView[]): string {
  if (entries.length === 0) return 'no audit entries'
  return entries.map(e => `${String(e.seq).padStart(6)}  ${e.time}  ${e.action.padEnd(15)}  ${summary(e)}`).join('\n')
}

export function describeAuditVerify (r: AuditVerifyView): string {
  const lines: string[] = []
  const held = r.heads.length === 0
    ? 'no member holds a head of it (a cut-off tail cannot be seen)'
    : `${r.heads.filter(h => h.status === 'match').length} of ${r.heads.length} heads held by ${new Set(r.heads.map(h => h.holder)).size} members match`
  if (r.problem == null) {
    lines.push(`audit log ok: ${r.entries} entries in ${r.files.length} files, last seq ${r.lastSeq}; ${held}`)
  } else {
    const p = r.problem
    const where = p.file != null ? `${p.file} line ${String(p.line)}${p.seq != null ? ` (seq ${p.seq})` : ''}` : 'the log'
    lines.push(`audit log NOT ok: first bad entry ${where}: ${p.kind}`)
    lines.push(`  ${p.message}`)
    if (r.problems.length > 1) lines.push(`  and ${r.problems.length - 1} more problems after it`)
    lines.push(`  ${held}`)
  }
  for (const f of r.forks) lines.push(`fork: ${f.peerId} signed ${f.hashes.length} heads at seq ${f.seq}`)
  for (const u of r.unreachable) lines.push(`not asked: ${u.peerId} (${u.error})`)
  return lines.join('\n')
}

export function describeHeads (heads: AuditHeadView[]): string {
  if (heads.length === 0) return 'no audit heads held'
  return heads.map(h => `${h.peerId}  seq ${h.seq}  ${h.hash.slice(0, 16)}…  ${h.time}${h.forks.length > 0 ? `  FORK: ${h.forks.map(f => `seq ${f.seq} ${f.hash.slice(0, 16)}…`).join(', ')}` : ''}`).join('\n')
}

export function auditCommand (globals: () => GlobalOptions): Command {
  const audit = new Command('audit').description('the agent\'s tamper-evident audit log')
  audit.addCommand(new Command('show')
    .description('print the audit log\'s entries, oldest first')
    .option('--since <time>', 'only entries at or after this ISO time, or within this span back from now (90m, 2d)', (v: string) => parseSince(v))
    .option('--limit <n>', 'at most this many entries, the newest (default 1000)', positive)
    .action(async (opts: { since?: string, limit?: number }) => {
      const g = globals()
      const entries = await (await client(g)).auditShow({ ...(opts.since != null ? { since: opts.since } : {}), ...(opts.limit != null ? { limit: opts.limit } : {}) })
      if (g.json === true) printJson(entries)
      else print(describeEntries(entries))
    }))
  audit.addCommand(new Command('verify')
    .description('check the log\'s chain and signatures, and against the heads other members hold of it; exit code 3 when it does not verify')
    .action(async () => {
      const g = globals()
      const report = await (await client(g)).auditVerify()
      if (g.json === true) printJson(report)
      else print(describeAuditVerify(report))
      if (!report.ok) process.exitCode = EXIT_INCOMPLETE
    }))
  audit.addCommand(new Command('heads')
    .description('the newest audit head this agent holds of every other member, and forks')
    .action(async () => {
      const g = globals()
      const heads = await (await client(g)).auditHeads()
      if (g.json === true) printJson(heads)
      else print(describeHeads(heads))
    }))
  return audit
}
