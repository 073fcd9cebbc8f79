import type { ParticipantView, SnapshotView } from '../admin/api.js'

export function humanBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`
}

/** Left-aligned columns with two spaces between them. */
export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (r: string[]): string => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n') + '\n'
}

export function shortTime (iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}

export function okCount (s: SnapshotView): string {
  return `${s.participants.filter(p => p.status === 'ok').length}/${s.participants.length}`
}

export function describeParticipant (p: ParticipantView): string[] {
  const out = [`  ${p.name}  ${p.peerId}  ${p.status}`]
  if (p.root != null) out.push(`    root   ${p.root}`)
  if (p.stats != null) {
    const s = p.stats
    out.push(`    files  ${s.files} files, ${s.dirs} dirs, ${s.symlinks} symlinks, ${humanBytes(s.bytes)}`)
    out.push(`    work   ${s.filesRead} read, ${s.filesReused} unchanged, ${s.newChunks}/${s.chunks} new chunks (${humanBytes(s.newBytes)}), ${(s.durationMs / 1000).toFixed(1)} s`)
  }
  if (p.error != null) out.push(`    error  ${p.error}`)
  for (const e of p.errors ?? []) out.push(`    problem ${e.source}/${e.path}: ${e.message}`)
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
    `participants (${okCount(s)} ok)`
  ]
  for (const p of s.participants) lines.push(...describeParticipant(p))
  for (const r of s.reasons ?? []) lines.push(`reason: ${r}`)
  return lines.join('\n') + '\n'
}
