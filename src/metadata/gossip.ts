// Gossip validation of the two metadata topics, in the manner of the snapshot topic: a message that
// can never be valid (does not decode, a bad signature, an author other than the gossip sender) is
// rejected; a fault of ours while checking is ignored.
import { COPIES_TOPIC, decodeCopyReport, type CopyReport } from './copies.js'
import { InvalidCopyReportError, InvalidForgetNoticeError } from './errors.js'
import { FORGET_TOPIC, decodeForgetNotice, type ForgetNotice } from './forget.js'
import type { GossipAction, GossipTopic, GossipVerdict } from '../node/index.js'

function actionFor (err: unknown): GossipAction {
  return err instanceof InvalidCopyReportError || err instanceof InvalidForgetNoticeError ? 'reject' : 'ignore'
}

/** A copy report must decode, carry its reporter's valid signature, and come from that reporter. */
export async function validateCopyReportGossip (msg: { from: string, data: Uint8Array }): Promise<GossipVerdict<CopyReport>> {
  try {
    const report = await decodeCopyReport(msg.data)
    if (report.reporter !== msg.from) throw new InvalidCopyReportError(`copy report names reporter ${report.reporter} but was sent by ${msg.from}`)
    return { action: 'accept', message: report }
  } catch (err: any) {
    return { action: actionFor(err), error: err instanceof Error ? err : new Error(String(err)) }
  }
}

/** A forget notice must decode, carry its author's valid signature, and come from that author. */
export async function validateForgetGossip (msg: { from: string, data: Uint8Array }): Promise<GossipVerdict<ForgetNotice>> {
  try {
    const notice = await decodeForgetNotice(msg.data)
    if (notice.by !== msg.from) throw new InvalidForgetNoticeError(`forget notice names ${notice.by} but was sent by ${msg.from}`)
    return { action: 'accept', message: notice }
  } catch (err: any) {
    return { action: actionFor(err), error: err instanceof Error ? err : new Error(String(err)) }
  }
}

export function copyReportTopic (handle: (report: CopyReport) => Promise<void>): GossipTopic<CopyReport> {
  return { topic: COPIES_TOPIC, validate: validateCopyReportGossip, decode: decodeCopyReport, handle }
}

export function forgetTopic (handle: (notice: ForgetNotice) => Promise<void>): GossipTopic<ForgetNotice> {
  return { topic: FORGET_TOPIC, validate: validateForgetGossip, decode: decodeForgetNotice, handle }
}
