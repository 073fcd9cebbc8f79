import { Command, InvalidArgumentError, Option } from 'commander'
import { EXIT_INCOMPLETE, ProgressLine, client, print, printJson, type GlobalOptions } from '../context.js'
import { describeSnapshot, reportedCount, snapshotTable } from '../format.js'
import type { AdminClient } from '../../admin/client.js'
import type { SnapshotView } from '../../admin/api.js'

/** how long `--wait` waits past the snapshot's deadline when no --timeout is given */
export const WAIT_GRACE_SECONDS = 60
/** the longest one long-poll lasts when nothing is drawn on the terminal */
const POLL_SECONDS = 60

function seconds (v: string): number {
  const n = Number(v)
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds')
  return n
}

/**
 * Waits until the snapshot is no longer running or `until` (ms since the epoch) passed, drawing
 * "participants reported / expected" on stderr when it is a terminal.
 */
async function waitForSnapshot (c: AdminClient, snap: SnapshotView, until: number): Promise<SnapshotView> {
  const progress = new ProgressLine()
  const draw = process.stderr.isTTY === true
  try {
    while (snap.status === 'running') {
      const left = (until - Date.now()) / 1000
      if (left <= 0) break
      progress.update(`snapshot ${snap.id.slice(0, 8)}: ${reportedCount(snap)} participants reported`)
      // short polls redraw the count; without a terminal, fewer and longer ones
      const timeoutSeconds = Math.round(Math.min(left, draw ? 1 : POLL_SECONDS) * 1000) / 1000
      snap = await c.getSnapshot(snap.id, { wait: true, timeoutSeconds })
    }
  } finally {
    progress.clear()
  }
  return snap
}

export function snapshotCommand (globals: () => GlobalOptions): Command {
  const cmd = new Command('snapshot').description('create, list and show snapshots')

  cmd.command('create')
    .description('start a snapshot of the whole cluster from this agent and print its ID')
    .option('--tag <tag>', 'a label for the snapshot')
    .addOption(new Option('--barrier', 'freeze every participant (pre hooks) and capture only once all are frozen').conflicts('marker'))
    .option('--marker', 'capture on each host when the marker reaches it (the default unless the config says otherwise)')
    .option('--prepare-timeout <seconds>', 'with --barrier: how long participants wait, frozen, for all to prepare', seconds)
    .option('--wait', 'wait until every participant reported or the deadline passed, then print the snapshot')
    .option('--timeout <seconds>', `how long --wait waits at most (default: until the deadline + ${WAIT_GRACE_SECONDS} s)`, seconds)
    .action(async (opts: { tag?: string, wait?: boolean, timeout?: number, barrier?: boolean, marker?: boolean, prepareTimeout?: number }) => {
      const g = globals()
      const c = await client(g)
      let snap = await c.createSnapshot({
        ...(opts.tag != null ? { tag: opts.tag } : {}),
        ...(opts.barrier === true ? { consistency: 'barrier' as const } : opts.marker === true ? { consistency: 'marker' as const } : {}),
        ...(opts.prepareTimeout != null ? { prepareTimeoutSeconds: opts.prepareTimeout } : {})
      })
      if (opts.wait === true) {
        const until = opts.timeout != null
          ? Date.now() + opts.timeout * 1000
          : Math.max(Date.now(), Date.parse(snap.deadline)) + WAIT_GRACE_SECONDS * 1000
        snap = await waitForSnapshot(c, snap, until)
      }
      if (g.json === true) printJson(snap)
      else if (opts.wait === true) print(describeSnapshot(snap))
      else print(snap.id)
      if (opts.wait === true && snap.status !== 'complete') process.exitCode = EXIT_INCOMPLETE
    })

  cmd.command('list')
    .description('list the snapshots this agent knows, newest first')
    .action(async () => {
      const g = globals()
      const list = await (await client(g)).listSnapshots()
      if (g.json === true) printJson(list)
      else print(snapshotTable(list))
    })

  cmd.command('show')
    .description('show one snapshot: participants, manifest roots, stats, problems')
    .argument('<id>', 'snapshot ID or a unique prefix of it')
    .action(async (id: string) => {
      const g = globals()
      const snap = await (await client(g)).getSnapshot(id)
      if (g.json === true) printJson(snap)
      else print(describeSnapshot(snap))
    })

  return cmd
}
