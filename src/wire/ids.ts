import { createHash } from 'node:crypto'

export { peerIdProblem } from '../envelope/index.js'

export function isSnapshotId (v: unknown): v is string {
  return typeof v === 'string' && /^[0-9a-f]{64}$/.test(v)
}

/** A fresh snapshot ID: 64 hex digits of sha256(initiator, lamport, time, random bytes). */
export function newSnapshotId (initiator: string, lamport: number, now: number, randomBytes: Uint8Array): string {
  return createHash('sha256').update(`${initiator}\n${lamport}\n${now}\n`).update(randomBytes).digest('hex')
}

/** The ID of the snapshot a schedule fires for a slot: the same on every agent. */
export function scheduledSnapshotId (schedule: string, slot: number): string {
  return createHash('sha256').update(`snapmesh schedule\n${schedule}\n${slot}`).digest('hex')
}
