// The protocol core: pure functions of (marker, results, now). No I/O, no wall clock.
import { compare } from 'uint8arrays/compare'
import type { Marker } from './marker.js'
import type { SignedResult } from './result.js'

export type SnapshotStatus = 'running' | 'complete' | 'partial' | 'failed'

export interface SnapshotState {
  readonly marker: Marker
  /** at most one result per peer: the best seen. Never mutated; applyResult makes a new map. */
  readonly results: ReadonlyMap<string, SignedResult>
}

export interface StatusInfo {
  status: SnapshotStatus
  /** one line per expected participant that is missing or failed, once the status is final */
  reasons: string[]
  /** expected participants without any result (after the deadline only) */
  missing: string[]
  /** expected participants whose best result is an error (after the deadline only) */
  failed: string[]
  /** when the status became what it is: the latest ok result for 'complete', else the deadline */
  finishedAt?: number
}

export function newState (marker: Marker): SnapshotState {
  return { marker, results: new Map() }
}

/**
 * Orders two results of one peer: positive when `a` is the better. 'ok' beats 'error'; then the
 * later `time`; then the signature bytes, so that every agent keeps the same one.
 */
export function compareResults (a: SignedResult, b: SignedResult): number {
  if (a.status !== b.status) return a.status === 'ok' ? 1 : -1
  if (a.time !== b.time) return a.time - b.time
  return compare(a.sig, b.sig)
}

/**
 * Adds a (verified) result. Idempotent and order-independent: the state keeps each peer's best
 * result. Returns the same object when nothing changed. A result for another snapshot is ignored;
 * one from a peer outside `expected` is kept as an extra participant.
 */
export function applyResult (state: SnapshotState, r: SignedResult): SnapshotState {
  if (r.id !== state.marker.id) return state
  const have = state.results.get(r.peerId)
  if (have != null && compareResults(r, have) <= 0) return state
  const results = new Map(state.results)
  results.set(r.peerId, r)
  return { marker: state.marker, results }
}

/** The results sorted by peer ID: the order records store them in. */
export function sortedResults (state: SnapshotState): SignedResult[] {
  return [...state.results.values()].sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
}

/**
 * The status follows from (marker, results, now >= deadline) alone, so every agent that holds the
 * same results computes the same status: 'complete' once every expected participant reported ok
 * (whenever that was); otherwise 'running' before the deadline, then 'partial' (some ok) or
 * 'failed' (none ok). Results from peers outside `expected` never change it. A barrier snapshot
 * is all or nothing: 'complete', or 'failed' once every participant reported and one did not
 * report ok, or at the deadline.
 */
export function computeStatus (state: SnapshotState, now: number): StatusInfo {
  const { marker, results } = state
  const reasons: string[] = []
  const missing: string[] = []
  const failed: string[] = []
  let ok = 0
  let latestOk = marker.startedAt
  for (const peer of marker.expected) {
    const r = results.get(peer)
    if (r?.status === 'ok') {
      ok++
      latestOk = Math.max(latestOk, r.time)
    } else if (r != null) {
      failed.push(peer)
      reasons.push(`${r.name} (${peer}) failed: ${r.error ?? 'no reason given'}`)
    } else {
      missing.push(peer)
      reasons.push(`${peer} did not report before the deadline`)
    }
  }
  if (ok === marker.expected.length) return { status: 'complete', reasons: [], missing: [], failed: [], finishedAt: latestOk }
  if (marker.consistency === 'barrier') {
    // all or nothing: one participant that failed or aborted fails the snapshot, as soon as every
    // participant has reported or the deadline passed
    if (missing.length === 0) {
      let last = marker.startedAt
      for (const r of results.values()) if (marker.expected.includes(r.peerId)) last = Math.max(last, r.time)
      return { status: 'failed', reasons: reasons.filter(x => !x.endsWith('did not report before the deadline')), missing, failed, finishedAt: Math.min(last, marker.deadline) }
    }
    if (now < marker.deadline) return { status: 'running', reasons: [], missing: [], failed: [] }
    return { status: 'failed', reasons, missing, failed, finishedAt: marker.deadline }
  }
  if (now < marker.deadline) return { status: 'running', reasons: [], missing: [], failed: [] }
  return { status: ok > 0 ? 'partial' : 'failed', reasons, missing, failed, finishedAt: marker.deadline }
}
