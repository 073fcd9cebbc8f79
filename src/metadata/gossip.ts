// Gossip validation of the two metadata topics, in the manner of the snapshot topic: a message that
// can never be valid (does not decode, a bad signature, an author other than the gossip sender) is
// rejected; a fault of ours while checking is ignored.
import { COPIES_TOPIC, decodeCopyReport, type CopyReport } from './copies.js'
import { InvalidCopyReportError, InvalidForgetNoticeError } from './errors.js'
import { FORGET_TOPIC, decodeForgetNotice, type ForgetNotice } from './forget.js'
import { DEFAULT_MAX_CLOCK_SKEW_MS, FutureDatedError, checkNotFuture } from '../wire/index.js'
import type { GossipAction, GossipTopic, GossipVerdict } from '../node/index.js'

function actionFor (err: unknown): GossipAction {
  return err instanceof InvalidCopyReportError || err instanceof InvalidForgetNoticeError || err instanceof FutureDatedError ? 'reject' : 'ignore'
}

/** the receiver's clock, against which the times a message states are bounded */
export interface ClockBound {
  now: () => number
  /** default 5 minutes (network.maxClockSkewSeconds) */
  maxSkewMs?: number
}

const systemClock: ClockBound = { now: Date.now }

/** A copy report must decode, carry its reporter's valid signature, and come from that reporter. */
export async function validateCopyReportGossip (msg: { from: string, data: Uint8Array }, clock: ClockBound = systemClock): Promise<GossipVerdict<CopyReport>> {
  try {
    const report = await decodeCopyReport(msg.data)
    if (report.reporter !== msg.from) throw new InvalidCopyReportError(`copy report names reporter ${report.reporter} but was sent by ${msg.from}`)
    checkNotFuture(report.time, clock.now(), clock.maxSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS, `copy report by ${report.reporter} for ${report.id.slice(0, 8)}`, 'time')
    return { action: 'accept', message: report }
  } catch (err: any) {
    return { action: actionFor(err), error: err instanceof Error ? err : new Error(String(err)) }
  }
}

/** A forget notice must decode, carry its author's valid signature, and come from that author. */
export async function validateForgetGossip (msg: { from: string, data: Uint8Array }, clock: ClockBound = systemClock): Promise<GossipVerdict<ForgetNotice>> {
  try {
    const notice = await decodeForgetNotice(msg.data)
    if (notice.by !== msg.from) throw new InvalidForgetNoticeError(`forget notice names ${notice.by} but was sent by ${msg.from}`)
    checkNotFuture(notice.time, clock.now(), clock.maxSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS, `forget notice by ${notice.by} for ${notice.id.slice(0, 8)}`, 'time')
    return { action: 'accept', message: notice }
  } catch (err: any) {
    return { action: actionFor(err), error: err instanceof Error ? err : new Error(String(err)) }
  }
}

export function copyReportTopic (handle: (report: CopyReport) => Promise<void>, clock: ClockBound = systemClock): GossipTopic<CopyReport> {
  return { topic: COPIES_TOPIC, validate: async (msg) => validateCopyReportGossip(msg, clock), decode: decodeCopyReport, handle }
}

export function forgetTopic (handle: (notice: ForgetNotice) => Promise<void>, clock: ClockBound = systemClock): GossipTopic<ForgetNotice> {
  return { topic: FORGET_TOPIC, validate: async (msg) => validateForgetGossip(msg, clock), decode: decodeForgetNotice, handle }
}

/**
 * Why a record from another agent cannot be taken, or undefined: a result or a copy report in it
 * dated further ahead of `now` than the skew allows.
 */
export function futureDatedIn (record: { id: string, results: Array<{ peerId: string, time: number }>, copies?: Array<{ reporter: string, time: number }> }, now: number, maxSkewMs = DEFAULT_MAX_CLOCK_SKEW_MS): string | undefined {
  try {
    for (const r of record.results) checkNotFuture(r.time, now, maxSkewMs, `record ${record.id.slice(0, 8)}: result of ${r.peerId}`, 'time')
    for (const c of record.copies ?? []) checkNotFuture(c.time, now, maxSkewMs, `record ${record.id.slice(0, 8)}: copy report by ${c.reporter}`, 'time')
  } catch (err: any) {
    return String(err.message)
  }
  return undefined
}
