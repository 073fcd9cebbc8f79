import type { ForgetResultView, ParticipantView, PeerView, PruneResultView, SnapshotView, StatusView, VerifyResultView } from '../admin/api.js'

/** `1536` → `1.5 KiB` */
export function humanBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[i]}`
}

/** bytes over seconds as `12.3 MiB/s` */
export function humanRate (bytes: number, seconds: number): string {
  return `${humanBytes(seconds > 0 ? bytes / seconds : 0)}/s`
}

/** `83.2` → `1m23s`, `0.4` → `0.4s`, `7322` → `2h02m` */
export function humanDuration (seconds: number): string {
  if (seconds < 10) return `${seconds.toFixed(1)}s`
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

/** Left-aligned columns two spaces apart, under an upper-case header. */
export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (r: string[]): string => header.map((_, i) => (r[i] ?? '').padEnd(widths[i])).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n') + '\n'
}

/** `2026-01-01T10:00:00.123Z` → `2026-01-01 10:00:00Z` */
export function shortTime (iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}

/** participants whose part is ok, over all expected: `2/3` */
export function okCount (s: SnapshotView): string {
  return `${s.participants.filter(p => p.status === 'ok').length}/${s.participants.length}`
}

/** participants that reported (ok or error), over all expected: `2/3` */
export function reportedCount (s: SnapshotView): string {
  return `${s.participants.filter(p => p.status === 'ok' || p.status === 'error').length}/${s.participants.length}`
}

export function snapshotTable (list: SnapshotView[]): string {
  return table(
    ['ID', 'STARTED', 'TAG', 'STATUS', 'OK'],
    list.map(s => [s.id.slice(0, 8), shortTime(s.startedAt), s.tag ?? '', s.status, okCount(s)])
  )
}

export function peerTable (peers: PeerView[]): string {
  return table(
    ['NAME', 'PEER ID', 'CONNECTED', 'ADDRESSES'],
    peers.map(p => [
      p.name ?? '?',
      p.peerId,
      p.connected ? 'yes' : 'no',
      p.addresses.length === 0 ? '' : p.addresses[0] + (p.addresses.length > 1 ? ` (+${p.addresses.length - 1})` : '')
    ])
  )
}

export function describeStatus (s: StatusView): string {
  return [
    `name       ${s.name}`,
    `peer ID    ${s.peerId}`,
    `version    ${s.version}`,
    `uptime     ${humanDuration(s.uptimeSeconds)}`,
    `peers      ${s.peers.connected} connected, ${s.peers.known} known`,
    `snapshots  ${s.snapshots}`,
    `data       ${s.dataDir}`,
    ...(s.apps != null ? [`apps       ${s.apps.connected.length === 0 ? 'none connected' : s.apps.connected.join(', ')} (socket ${s.apps.socket})`] : []),
    ...(s.apps?.pendingCuts ?? []).map(c => `app cut    ${c.id.slice(0, 8)} waiting for ${c.pending.join(', ')}`),
    ...(s.quarantine != null && s.quarantine.quarantined > 0 ? [`quarantine ${s.quarantine.quarantined} corrupt blocks found, ${s.quarantine.replaced} replaced, ${s.quarantine.failed} not replaceable, ${s.quarantine.pending} waiting`] : []),
    ...(s.frozenFor != null && s.frozenFor.length > 0 ? [`frozen     for ${s.frozenFor.map(id => id.slice(0, 8)).join(', ')}`] : []),
    ...s.addresses.map(a => `listening  ${a}`)
  ].join('\n') + '\n'
}

export function describeParticipant (p: ParticipantView): string[] {
  const out = [`  ${p.name}  ${p.peerId}  ${p.status}${p.copies != null ? `  (${p.copies} ${p.copies === 1 ? 'copy' : 'copies'})` : ''}`]
  if (p.root != null) out.push(`    root     ${p.root}`)
  if (p.copiesCountedAt != null) out.push(`    copies   ${p.copies ?? 1} confirmed at ${shortTime(p.copiesCountedAt)} on ${(p.holders ?? []).map(h => h.slice(-8)).join(', ')}`)
  if (p.stats != null) {
    const s = p.stats
    out.push(`    content  ${s.files} files, ${s.dirs} dirs, ${s.symlinks} symlinks, ${humanBytes(s.bytes)}`)
    out.push(`    work     ${s.filesRead} files read, ${s.filesReused} unchanged, ${s.newChunks}/${s.chunks} chunks new (${humanBytes(s.newBytes)}) in ${humanDuration(s.durationMs / 1000)}`)
  }
  if (p.error != null) out.push(`    error    ${p.error}`)
  for (const e of p.errors ?? []) out.push(`    problem  ${e.source}/${e.path}: ${e.message}`)
  return out
}

export function describeSnapshot (s: SnapshotView): string {
  const lines = [
    `snapshot   ${s.id}`,
    `status     ${s.status}`,
    ...(s.tag != null ? [`tag        ${s.tag}`] : []),
    `initiator  ${s.initiator}`,
    `started    ${shortTime(s.startedAt)}`,
    `deadline   ${shortTime(s.deadline)}`,
    ...(s.finishedAt != null ? [`finished   ${shortTime(s.finishedAt)}`] : []),
    ...(s.recordCid != null ? [`record     ${s.recordCid}`] : []),
    `protected  ${s.protected ? 'yes' : 'no'} (${s.copiesWanted} ${s.copiesWanted === 1 ? 'copy' : 'copies'} of every participant's data wanted)`,
    `participants (${okCount(s)} ok)`
  ]
  for (const p of s.participants) lines.push(...describeParticipant(p))
  for (const r of s.reasons ?? []) lines.push(`reason: ${r}`)
  return lines.join('\n') + '\n'
}

export function describeVerify (report: VerifyResultView): string {
  const lines: string[] = []
  for (const p of report.participants) {
    lines.push(`${p.name} (${p.peerId}): ${p.blocks} blocks, ${p.copies} copies checked, ${p.problems.length === 0 ? 'all intact' : `${p.problems.length} problems`}`)
    for (const x of p.problems) {
      lines.push(`  ${x.state.padEnd(11)} ${x.path}  block ${x.cid}  at ${x.holder}${x.repaired === true ? '  (repaired)' : ''}${x.message != null ? `: ${x.message}` : ''}`)
    }
  }
  lines.push(report.ok ? 'no problems left' : 'problems found')
  return lines.join('\n') + '\n'
}

export function describePrune (p: PruneResultView): string {
  const verb = p.dryRun ? 'would delete' : 'deleted'
  const young = p.young > 0 ? `; ${p.young} unreferenced blocks kept as younger than the prune grace period` : ''
  return `prune: ${p.stored} blocks stored, ${p.referenced} referenced by ${p.roots} manifest roots; ${verb} ${p.deleted} blocks (${humanBytes(p.bytesFreed)})${young}\n`
}

export function describeForget (r: ForgetResultView): string {
  const out: string[] = []
  if (r.kept.length > 0) {
    out.push(`keep ${r.kept.length} snapshots:`)
    out.push(table(['ID', 'STARTED', 'TAG', 'STATUS', 'REASONS'], r.kept.map(k => [k.id.slice(0, 8), shortTime(k.startedAt), k.tag ?? '', k.status, k.reasons.join(', ')])).trimEnd())
  }
  const verb = r.dryRun ? 'would forget' : 'forgot'
  if (r.forgotten.length === 0) out.push(`${r.dryRun ? 'would forget' : 'forgot'} no snapshots`)
  else {
    out.push(`${verb} ${r.forgotten.length} snapshots:`)
    out.push(table(['ID', 'STARTED', 'TAG', 'STATUS'], r.forgotten.map(k => [k.id.slice(0, 8), shortTime(k.startedAt), k.tag ?? '', k.status])).trimEnd())
  }
  let text = out.join('\n') + '\n'
  if (r.prune != null) text += describePrune(r.prune)
  return text
}

/** `[#########-----------]` of `width` cells for a fraction from 0 to 1 */
export function bar (fraction: number, width = 20): string {
  const f = Math.min(1, Math.max(0, fraction))
  const full = Math.round(f * width)
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`
}

/** One line of restore progress: bar and percentage when the total is known, then bytes, files, rate. */
export function restoreProgressLine (ev: { files: number, bytes: number, totalBytes?: number }, elapsedSeconds: number): string {
  const rate = humanRate(ev.bytes, elapsedSeconds)
  if (ev.totalBytes != null && ev.totalBytes > 0) {
    const f = ev.bytes / ev.totalBytes
    return `${bar(f)} ${Math.floor(f * 100)}%  ${humanBytes(ev.bytes)} of ${humanBytes(ev.totalBytes)}, ${ev.files} files, ${rate}`
  }
  return `restoring: ${humanBytes(ev.bytes)}, ${ev.files} files, ${rate}`
}
