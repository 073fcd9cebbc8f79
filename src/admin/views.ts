import { encodeRecord, type SnapshotRecord } from '../metadata/index.js'
import type { ParticipantView, SnapshotView } from './api.js'

/** The admin API's view of a snapshot record: every expected participant, then any extra ones. */
export async function toSnapshotView (record: SnapshotRecord, options: { copiesWanted?: number } = {}): Promise<SnapshotView> {
  const copiesWanted = options.copiesWanted ?? 1
  const byPeer = new Map(record.results.map(r => [r.peerId, r]))
  const reports = new Map((record.copies ?? []).map(r => [r.owner, r]))
  const ids = [...record.expected, ...record.results.map(r => r.peerId).filter(id => !record.expected.includes(id))]
  const participants: ParticipantView[] = ids.map(peerId => {
    const r = byPeer.get(peerId)
    if (r == null) {
      return { peerId, name: peerId.slice(-8), status: record.status === 'running' ? 'pending' : 'missing' }
    }
    const view: ParticipantView = { peerId, name: r.name, status: r.status }
    if (!record.expected.includes(peerId)) view.extra = true
    if (r.root != null) view.root = r.root.toString()
    if (r.stats != null) view.stats = { ...r.stats }
    if (r.problems != null && r.problems.length > 0) view.errors = r.problems.map(p => ({ ...p }))
    if (r.error != null) view.error = r.error
    if (r.status === 'ok') {
      const report = reports.get(peerId)
      view.copies = report?.copies ?? 1
      if (report != null) {
        view.holders = [...report.holders]
        view.copiesCountedAt = new Date(report.time).toISOString()
        view.copiesCountedBy = report.reporter
      }
    }
    return view
  })
  const view: SnapshotView = {
    id: record.id,
    status: record.status,
    initiator: record.initiator,
    lamport: record.lamport,
    startedAt: new Date(record.startedAt).toISOString(),
    deadline: new Date(record.deadline).toISOString(),
    participants,
    consistency: record.consistency ?? 'marker',
    copiesWanted,
    protected: (record.status === 'complete' || record.status === 'partial') &&
      participants.every(p => p.status !== 'ok' || (p.copies ?? 1) >= copiesWanted)
  }
  if (record.tag != null) view.tag = record.tag
  if (record.schedule != null && record.slot != null) {
    view.schedule = record.schedule
    view.slot = new Date(record.slot).toISOString()
  }
  if (record.finishedAt != null) view.finishedAt = new Date(record.finishedAt).toISOString()
  if (record.reasons != null && record.reasons.length > 0) view.reasons = [...record.reasons]
  if (record.status !== 'running') view.recordCid = (await encodeRecord(record)).cid.toString()
  return view
}
